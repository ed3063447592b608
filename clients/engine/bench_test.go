package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/testsupport/dovecot"
)

// benchServer starts a fake server holding n messages of about size bytes in INBOX.
func benchServer(b *testing.B, n, size int) string {
	b.Helper()
	srv := fakeserver.New(fakeserver.Options{Seed: 1})
	b.Cleanup(func() { _ = srv.Close() })
	if err := srv.AddUser(user, password); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		body := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprintf("b%06d", i), Run: run, Size: size, Seed: int64(i)})
		if err := srv.Apply(fakeserver.Deliver{User: user, Mailbox: "INBOX", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return addr.String()
}

// benchEngine opens an engine on store (a new memory store if nil) for the server at addr.
func benchEngine(b *testing.B, addr string, store engine.Store) *engine.Engine {
	b.Helper()
	if store == nil {
		store = engine.NewMemoryStore()
	}
	e, err := engine.Open(context.Background(), engine.Options{
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		Username: user, Password: password, Store: store,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e
}

// BenchmarkInitialSync10k: a new device syncs 10,000 messages of about 10 KB.
// Target: at least 5,000 messages/s.
func BenchmarkInitialSync10k(b *testing.B) {
	const n = 10000
	addr := benchServer(b, n, 10<<10)
	b.ResetTimer()
	var total time.Duration
	for b.Loop() {
		e := benchEngine(b, addr, nil)
		start := time.Now()
		st, err := e.Sync(context.Background())
		total += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if st.Downloaded != n {
			b.Fatalf("downloaded %d of %d", st.Downloaded, n)
		}
		_ = e.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "msgs/s")
}

// BenchmarkNoChangeRound50k: a round that finds nothing to do on 50,000 messages.
// Target: under 150 ms.
func BenchmarkNoChangeRound50k(b *testing.B) {
	const n = 50000
	addr := benchServer(b, n, 300)
	e := benchEngine(b, addr, nil)
	if _, err := e.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		st, err := e.Sync(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Changed() {
			b.Fatalf("a no-change round changed something: %+v", st)
		}
	}
}

// BenchmarkReplicaBytesPerMessage: heap bytes per message of replica metadata (records
// and indexes, without bodies) in the memory store. Target: under 400.
func BenchmarkReplicaBytesPerMessage(b *testing.B) {
	const n = 50000
	for b.Loop() {
		s := engine.NewMemoryStore()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := s.Update(func(tx engine.Tx) error {
			if err := tx.PutMailbox(engine.MailboxRecord{Name: "INBOX"}); err != nil {
				return err
			}
			for i := range n {
				id, err := tx.NextID()
				if err != nil {
					return err
				}
				flags := engine.ParseFlags([]string{`\Seen`})
				if i%10 == 0 {
					flags = engine.ParseFlags([]string{`\Seen`, "$Work"})
				}
				m := engine.MessageRecord{ID: id, Mailbox: "INBOX", UID: uint32(i + 1), Size: 10240,
					InternalDate: int64(1700000000 + i), MessageID: fmt.Sprintf("b%06d.%s@%s", i, run, clients.LabelDomain),
					Label: fmt.Sprintf("b%06d", i), Flags: flags, Base: flags, EverUID: true}
				m.Hash[0], m.Hash[1] = byte(i), byte(i>>8)
				if err := tx.PutMessage(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/msg")
		runtime.KeepAlive(s)
	}
}

// BenchmarkVsMbsync runs the engine (its disk store, one process per round, as
// clients/engine/cmd/engine-sync) and mbsync side by side against one private Dovecot
// (Maildir, or sdbox with SYNCHARNESS_BENCH_MAIL_FORMAT=sdbox; loopback), on the same accounts: a first sync of 10,000 messages of 10 KB and
// of 50,000 of 2 KB, a round that finds nothing changed on the 50,000, and a round after
// another client changed the flags of 1,000 of them. Each iteration is one process; its
// wall time is the ns/op and its maximum resident set size the maxrss-MB metric. Both
// fsync every message. It needs Dovecot (run as root) and mbsync (Debian's isync);
// without either it is skipped; it runs only with SYNCHARNESS_BENCH_MBSYNC=1 (it fills
// the server for minutes), as make bench-mbsync sets. SYNCHARNESS_BENCH_DIVIDE=N divides
// the message counts by N, for a quick try. With SYNCHARNESS_BENCH_STRACE=1 every round
// runs under strace and the fsyncs/op metric counts its fsync and fdatasync calls (the
// times are then strace's, not comparable). SYNCHARNESS_BENCH_VERBOSE=1 logs each round's
// output (the engine's statistics, memory use and the time of each IMAP command, -timing);
// SYNCHARNESS_BENCH_PROFILE=DIR writes a CPU profile of each engine round into DIR
// (USER-N.prof, numbered in the order the rounds ran). The engine is built without cgo
// (SYNCHARNESS_BENCH_CGO=1: with it, and with libc).
func BenchmarkVsMbsync(b *testing.B) {
	if os.Getenv("SYNCHARNESS_BENCH_MBSYNC") != "1" {
		b.Skip("the side-by-side run against mbsync starts a private Dovecot and takes minutes: set SYNCHARNESS_BENCH_MBSYNC=1 (make bench-mbsync)")
	}
	nSmall, nLarge := 10000, 50000
	if v := os.Getenv("SYNCHARNESS_BENCH_DIVIDE"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || d < 1 {
			b.Fatalf("SYNCHARNESS_BENCH_DIVIDE=%q: want a positive integer", v)
		}
		nSmall, nLarge = nSmall/d, nLarge/d
	}
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		b.Skip("mbsync is not installed (Debian: isync; .ci/run installs it)")
	}
	ctx := context.Background()
	pass := "bench-secret"
	// Dovecot keeps each mailbox's counters in its mailbox list index; trusted (all mail
	// goes through Dovecot, as here), it answers LIST-STATUS without opening a mailbox,
	// where a first look into a Maildir of 50,000 messages costs 140-150 ms on this kind of
	// machine (whoever looks: mbsync's SELECT pays it too). SYNCHARNESS_BENCH_DOVECOT_DEFAULTS=1
	// measures with Dovecot's defaults instead.
	settings := []string{"mailbox_list_index_include_inbox = yes", "mailbox_list_index_very_dirty_syncs = yes", "maildir_very_dirty_syncs = yes"}
	if os.Getenv("SYNCHARNESS_BENCH_DOVECOT_DEFAULTS") == "1" {
		settings = nil
	}
	// SYNCHARNESS_BENCH_MAIL_FORMAT=sdbox stores the server's mail in Dovecot's own format,
	// flags in its index, instead of Maildir, where a first look at a mailbox whose file
	// names changed (another client's flags) re-reads the whole directory: 440-490 ms of
	// the round after 1,000 flag changes on 50,000 messages, whichever client looks.
	format := os.Getenv("SYNCHARNESS_BENCH_MAIL_FORMAT")
	switch format {
	case "", "maildir":
		format = "maildir"
	case "sdbox":
		settings = append(settings, "mail_location = sdbox:~/sdbox")
	default:
		b.Fatalf("SYNCHARNESS_BENCH_MAIL_FORMAT=%q: want maildir or sdbox", format)
	}
	srv, err := dovecot.Start(ctx, dovecot.Options{Settings: settings,
		Users: []dovecot.User{{Name: "small", Password: pass}, {Name: "large", Password: pass}}})
	if dovecot.Unavailable(err) {
		b.Skip("Dovecot cannot run here: " + err.Error())
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	benchFill(b, srv, "small", pass, nSmall, 10<<10, format)
	benchFill(b, srv, "large", pass, nLarge, 2<<10, format)

	work := b.TempDir()
	bin := filepath.Join(work, "engine-sync")
	// Built without cgo, a static binary, as Go commands are usually shipped: linked
	// against libc (for the system's name resolver), each round maps it too, 1.6 MB more
	// of its peak memory. SYNCHARNESS_BENCH_CGO=1 builds it that way instead.
	build := exec.Command("go", "build", "-o", bin, "./cmd/engine-sync")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if os.Getenv("SYNCHARNESS_BENCH_CGO") == "1" {
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build engine-sync: %v\n%s", err, out)
	}
	profiles := 0 // the engine's CPU profiles written, with SYNCHARNESS_BENCH_PROFILE
	// A client runs one round for user into dir as a process.
	type client struct {
		name string
		cmd  func(user, dir string) *exec.Cmd
	}
	clientsUnderTest := []client{
		{"engine", func(user, dir string) *exec.Cmd {
			args := []string{"-memstats", "-server", "imap://" + user + "@" + srv.Addr(), "-dir", dir}
			if os.Getenv("SYNCHARNESS_BENCH_VERBOSE") == "1" {
				args = append(args, "-timing")
			}
			if d := os.Getenv("SYNCHARNESS_BENCH_PROFILE"); d != "" {
				profiles++
				args = append(args, "-cpuprofile", filepath.Join(d, fmt.Sprintf("%s-%d.prof", user, profiles)))
			}
			c := exec.Command(bin, args...)
			c.Env = append(os.Environ(), "SYNC_PASSWORD="+pass)
			return c
		}},
		{"mbsync", func(user, dir string) *exec.Cmd {
			conf := filepath.Join(dir + ".mbsyncrc")
			host, port, _ := net.SplitHostPort(srv.Addr())
			rc := fmt.Sprintf("IMAPAccount acc\nHost %s\nPort %s\nUser %s\nPass %s\nSSLType None\nAuthMechs LOGIN\n\n"+
				"IMAPStore remote\nAccount acc\n\nMaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"+
				"Channel ch\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSync All\nSyncState *\n",
				host, port, user, pass, dir, dir)
			if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
				b.Fatal(err)
			}
			return exec.Command(mbsync, "-q", "-c", conf, "-a")
		}},
	}
	// round runs one round and returns its wall time and maximum RSS in bytes. The RSS
	// comes from /usr/bin/time: the rusage of a child this process starts itself counts
	// this process's own pages (the child shares them until its exec).
	timeBin, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		b.Skip("/usr/bin/time (GNU time) is not installed (Debian: time): it measures each round's peak memory")
	}
	rssFile := filepath.Join(work, "maxrss")
	straceFile := filepath.Join(work, "strace")
	var straceBin string
	if os.Getenv("SYNCHARNESS_BENCH_STRACE") == "1" {
		if straceBin, err = exec.LookPath("strace"); err != nil {
			b.Fatal("SYNCHARNESS_BENCH_STRACE=1: strace is not installed")
		}
	}
	fsyncs := 0 // of the last round, with strace
	round := func(b *testing.B, c client, user, dir string) (time.Duration, int64) {
		dateBack(b, dir)
		// What the fill and the rounds before wrote is written back first: otherwise the
		// fsyncs of a round wait for the writeback of the last one's 100 MB (or the
		// fill's), and whichever client comes next pays for the other.
		syscall.Sync()
		cmd := c.cmd(user, dir)
		args := []string{timeBin, "-f", "%M", "-o", rssFile}
		if straceBin != "" {
			args = append(args, straceBin, "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", straceFile)
		}
		cmd.Args = append(args, cmd.Args...)
		cmd.Path = timeBin
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if err != nil {
			b.Fatalf("%s round for %s: %v\n%s", c.name, user, err, out.String())
		}
		raw, err := os.ReadFile(rssFile)
		if err != nil {
			b.Fatal(err)
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			b.Fatalf("/usr/bin/time wrote %q: %v", raw, err)
		}
		if straceBin != "" {
			fsyncs = straceCalls(b, straceFile, "fsync", "fdatasync")
		}
		if os.Getenv("SYNCHARNESS_BENCH_VERBOSE") == "1" {
			// On stderr: go test keeps only the first lines of a benchmark's log.
			fmt.Fprintf(os.Stderr, "%s: %s round for %s:\n%s", b.Name(), c.name, user, out.String())
		}
		return wall, kb << 10
	}
	replicas := map[string]string{} // client → its replica of "large"
	// timed runs b.N rounds, each in the replica prepare returns; a round of a first sync
	// (want > 0) must leave want messages there.
	timed := func(b *testing.B, c client, user string, want int, prepare func(i int) string) {
		var total time.Duration
		var rss int64
		syncs := 0
		for i := range b.N {
			dir := prepare(i)
			wall, r := round(b, c, user, dir)
			if want > 0 {
				if n := replicaMessages(b, dir); n != want {
					b.Fatalf("%s's first sync of %s left %d messages in %s, want %d", c.name, user, n, dir, want)
				}
			}
			total += wall
			rss = max(rss, r)
			syncs += fsyncs
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
		b.ReportMetric(float64(rss)/(1<<20), "maxrss-MB")
		if straceBin != "" {
			b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/op")
		}
	}
	// A first sync needs a replica no round has used: the benchmark runs b.N=1 before
	// b.N=3, so a directory named after the iteration would be synced already.
	made := 0
	fresh := func(c client, tag string) func(int) string {
		return func(int) string {
			made++
			dir := filepath.Join(work, fmt.Sprintf("%s-%s-%d", c.name, tag, made))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				b.Fatal(err)
			}
			return dir
		}
	}
	for _, c := range clientsUnderTest {
		b.Run("first-10k/"+c.name, func(b *testing.B) { timed(b, c, "small", nSmall, fresh(c, "small")) })
	}
	for _, c := range clientsUnderTest {
		b.Run("first-50k/"+c.name, func(b *testing.B) {
			prep := fresh(c, "large")
			timed(b, c, "large", nLarge, func(i int) string {
				replicas[c.name] = prep(i)
				return replicas[c.name]
			})
		})
	}
	for _, c := range clientsUnderTest {
		b.Run("nochange-50k/"+c.name, func(b *testing.B) {
			timed(b, c, "large", 0, func(int) string { return replicas[c.name] })
		})
	}
	admin, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Login("large", pass).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	flagged := false
	for _, c := range clientsUnderTest {
		b.Run("flags-1000/"+c.name, func(b *testing.B) {
			round(b, c, "large", replicas[c.name]) // catch up with the other client's changes
			timed(b, c, "large", 0, func(int) string {
				// Another client sets (or clears) \Flagged on every 50th message.
				op := imap.StoreFlagsAdd
				if flagged {
					op = imap.StoreFlagsDel
				}
				flagged = !flagged
				var uids imap.UIDSet
				for u := imap.UID(1); u <= imap.UID(nLarge); u += 50 {
					uids.AddNum(u)
				}
				if err := admin.Store(uids, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
					b.Fatal(err)
				}
				return replicas[c.name]
			})
		})
	}
}

// dateBack dates every directory under dir two seconds back, as if the replica's last round
// had ended then, as scheduled rounds (minutes apart) find it: mbsync sleeps one second
// when its Maildir changed within the current second (a later change in that second
// would keep its mtime), so back-to-back rounds would measure its sleep, not its work.
func dateBack(b *testing.B, dir string) {
	then := time.Now().Add(-2 * time.Second)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(path, then, then)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// replicaMessages counts the message files of the Maildirs under dir (files in a cur or
// new directory), as the engine's disk store and mbsync both keep them.
func replicaMessages(b *testing.B, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if parent := filepath.Base(filepath.Dir(path)); d.Type().IsRegular() && (parent == "cur" || parent == "new") {
			n++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// straceCalls returns the number of calls of the named system calls in a strace -c summary.
func straceCalls(b *testing.B, file string, names ...string) int {
	raw, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !slices.Contains(names, f[len(f)-1]) {
			continue
		}
		// % time, seconds, usecs/call, calls, [errors,] syscall
		calls, err := strconv.Atoi(f[3])
		if err != nil {
			b.Fatalf("strace summary line %q: %v", line, err)
		}
		n += calls
	}
	return n
}

// benchFill delivers n messages of about size bytes into user's INBOX: written straight
// into a Maildir (APPEND of 50,000 messages takes minutes on a loaded machine), imported
// from there into sdbox with doveadm when that is the format, then indexed by a SELECT, so
// that no timed round pays for the server's first scan.
func benchFill(b *testing.B, srv *dovecot.Server, user, pass string, n, size int, format string) {
	b.Helper()
	md := srv.MaildirPath(user)
	home, err := os.Stat(filepath.Dir(md))
	if err != nil {
		b.Fatal(err)
	}
	st := home.Sys().(*syscall.Stat_t)
	uid, gid := int(st.Uid), int(st.Gid)
	for _, d := range []string{md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		raw := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprintf("%s%06d", user, i), Run: run, Size: size, Seed: int64(i)})
		name := filepath.Join(md, "new", fmt.Sprintf("%d.B%dM0.bench", 1700000000+i, i))
		if err := os.WriteFile(name, raw, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Chown(name, uid, gid); err != nil {
			b.Fatal(err)
		}
	}
	if format == "sdbox" {
		if out, err := srv.Doveadm(context.Background(), "import", "-u", user, "maildir:"+md, "", "all"); err != nil {
			b.Fatalf("doveadm import: %v\n%s", err, out)
		}
	}
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		b.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	if int(sel.NumMessages) != n {
		b.Fatalf("%s's INBOX holds %d messages, not %d", user, sel.NumMessages, n)
	}
}

// BenchmarkNewMailMemory: a device that has synced before finds 2,000 new messages of
// 30 KB (60 MB) in one round, on its disk store. The bodies go to the store as they come
// (BodyStager) instead of being held until the mailbox's commit: the maxheap-MB metric is
// how far the live heap grew during the round (as the collections, made frequent here,
// find it; above what it held before, the in-process server's messages included), which
// stays near one FETCH batch (8 MB) however many messages come.
func BenchmarkNewMailMemory(b *testing.B) {
	const n, size = 2000, 30 << 10
	var peak float64
	// The live heap is known at the end of each collection: collect often, to see it often.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	for b.Loop() {
		srv := fakeserver.New(fakeserver.Options{Seed: 1})
		if err := srv.AddUser(user, password); err != nil {
			b.Fatal(err)
		}
		addr, err := srv.Listen("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		store, err := engine.OpenDiskStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		e := benchEngine(b, addr.String(), store)
		if _, err := e.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			body := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprintf("n%06d", i), Run: run, Size: size, Seed: int64(i)})
			if err := srv.Apply(fakeserver.Deliver{User: user, Mailbox: "INBOX", Body: body}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		base := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(base) // the server's messages are in this process's heap too
		stop := make(chan struct{})
		sampled := make(chan float64)
		go func() {
			sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			most := 0.0
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				metrics.Read(sample)
				most = max(most, float64(sample[0].Value.Uint64()))
				select {
				case <-stop:
					sampled <- most
					return
				case <-t.C:
				}
			}
		}()
		st, err := e.Sync(context.Background())
		close(stop)
		peak = max(peak, <-sampled-float64(base[0].Value.Uint64()))
		if err != nil {
			b.Fatal(err)
		}
		if st.Downloaded != n {
			b.Fatalf("downloaded %d of %d", st.Downloaded, n)
		}
		_ = e.Close()
		_ = store.Close()
		_ = srv.Close()
	}
	b.ReportMetric(peak/(1<<20), "maxheap-MB")
}
