// Command engine-sync runs one sync round of the engine on a disk store, as a mail client
// run from cron would, and prints the round's statistics:
//
//	SYNC_PASSWORD=secret engine-sync -server imap://alice@127.0.0.1:1143 -dir ~/mail/alice
//
// The store in -dir is created on the first run. The connection is plain IMAP (no TLS): it
// is meant for a server on loopback, such as the private Dovecot of the benchmarks
// (make bench-mbsync). The exit status is 0 after a complete round, 1 when the round
// failed, 2 for bad arguments. Unless GOGC or GOMEMLIMIT is set, the Go runtime collects
// garbage when the heap has grown by a quarter (GOGC=25) rather than doubled.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/syncharness/syncharness/clients/engine"
)

func main() { os.Exit(run()) }

// defaultGCPercent is the Go runtime's GOGC unless GOGC or GOMEMLIMIT is set. A round
// holds one message body at a time, and while it commits, the store's pages. Measured on
// Dovecot 2.3 (Maildir, 2 cores): a first sync of 10,000 messages of 10 KB peaks at
// 13.6-13.9 MB resident with 25 or 50, 16 with Go's 100; a round that merges 1,000 flag
// changes into 50,000 records at 35-36 MB with 25 or 50, and takes a median 64 ms with
// 25, 58 with 50, 54 with 100 (sdbox, 16 rounds each: the commit's pages are collected
// over and over). (A soft memory limit of 8 MiB, tried first, kept the first sync at 13
// MB but collected without end while a commit's pages were live: such a round took twice
// as long.)
const defaultGCPercent = 50

func run() int {
	fs := flag.NewFlagSet("engine-sync", flag.ContinueOnError)
	server := fs.String("server", "", "the account, imap://USER@HOST:PORT (required)")
	dir := fs.String("dir", "", "the store's directory, created if missing (required)")
	passEnv := fs.String("password-env", "SYNC_PASSWORD", "the environment variable holding the password")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up the round after this long")
	memstats := fs.Bool("memstats", false, "print the process's memory use at the end, on stderr")
	timing := fs.Bool("timing", false, "print, on stderr, how long opening the store took and each IMAP command from its sending to its tagged answer")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a profile of the memory allocated during the run to this file (go tool pprof -sample_index=alloc_space)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	u, err := url.Parse(*server)
	if *server == "" || *dir == "" || fs.NArg() > 0 || err != nil || u.Scheme != "imap" || u.User == nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "engine-sync: usage: engine-sync -server imap://USER@HOST:PORT -dir DIR (password in $"+*passEnv+")")
		return 2
	}
	password, ok := os.LookupEnv(*passEnv)
	if !ok {
		fmt.Fprintf(os.Stderr, "engine-sync: $%s is not set\n", *passEnv)
		return 2
	}
	_, gogc := os.LookupEnv("GOGC")
	if _, limit := os.LookupEnv("GOMEMLIMIT"); !gogc && !limit {
		debug.SetGCPercent(defaultGCPercent)
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "engine-sync:", err)
			return 2
		}
		defer stop()
	}
	if *memProfile != "" {
		defer writeMemProfile(*memProfile)
	}
	start := time.Now()
	store, err := engine.OpenDiskStore(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine-sync:", err)
		return 1
	}
	if *timing {
		fmt.Fprintf(os.Stderr, "timing: open store %v\n", time.Since(start).Round(time.Microsecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	e, err := engine.Open(ctx, engine.Options{
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", u.Host)
			if err != nil || !*timing {
				return c, err
			}
			return &timedConn{Conn: c, sent: map[string]sent{}}, nil
		},
		Username: u.User.Username(), Password: password, Store: store,
	})
	if err != nil {
		_ = store.Close()
		fmt.Fprintln(os.Stderr, "engine-sync:", err)
		return 1
	}
	st, serr := e.Sync(ctx)
	cerr := e.Close()
	if err := store.Close(); err != nil && cerr == nil {
		cerr = err
	}
	if *timing {
		fmt.Fprintf(os.Stderr, "timing: whole run %v\n", time.Since(start).Round(time.Microsecond))
	}
	fmt.Printf("%+v\n", st)
	if *memstats {
		printMemStats()
	}
	if serr != nil || cerr != nil {
		fmt.Fprintln(os.Stderr, "engine-sync:", serr, cerr)
		return 1
	}
	return 0
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeMemProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine-sync: memory profile:", err)
	}
}

// printMemStats prints the Go heap's figures and the kernel's view of the process's
// resident memory (peak, anonymous, file-backed such as the database's map).
func printMemStats() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "memstats: heap in use %d KB, heap from the OS %d KB, all from the OS %d KB, %d GCs\n",
		ms.HeapInuse>>10, ms.HeapSys>>10, ms.Sys>>10, ms.NumGC)
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM") || strings.HasPrefix(line, "Rss") {
			fmt.Fprintln(os.Stderr, "memstats:", strings.Join(strings.Fields(line), " "))
		}
	}
}

// timedConn prints each command's time from its sending to its tagged answer.
type timedConn struct {
	net.Conn
	mu   sync.Mutex
	sent map[string]sent // by tag
	in   []byte          // the server's current line, so far
}

type sent struct {
	cmd string
	at  time.Time
}

func (c *timedConn) Write(p []byte) (int, error) {
	if f := strings.Fields(string(p[:min(len(p), 120)])); len(f) >= 2 {
		cmd := f[1]
		if strings.EqualFold(cmd, "UID") && len(f) >= 3 {
			cmd += " " + f[2]
		}
		c.mu.Lock()
		c.sent[f[0]] = sent{cmd: cmd, at: time.Now()}
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

func (c *timedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p[:n] {
		if b != '\n' {
			if len(c.in) < 64 {
				c.in = append(c.in, b)
			}
			continue
		}
		if tag, _, ok := strings.Cut(string(c.in), " "); ok {
			if s, ok := c.sent[tag]; ok {
				fmt.Fprintf(os.Stderr, "timing: %-12s %v\n", s.cmd, time.Since(s.at).Round(time.Microsecond))
				delete(c.sent, tag)
			}
		}
		c.in = c.in[:0]
	}
	return n, err
}
