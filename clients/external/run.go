package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/syncharness/syncharness/clients"
)

// ErrCut is wrapped by Sync when the connection was cut under the engine: the engine is
// stopped where the cut fell. Crash kills it there (SIGKILL); any other call lets it go
// on, and it sees its connection closed.
var ErrCut = errors.New("connection cut during the engine's run")

// engineRun is one run of the engine's command.
type engineRun struct {
	cmd     *exec.Cmd
	done    chan error // receives cmd.Wait's result once
	result  error
	exited  bool
	log     *os.File
	stopped atomic.Bool
}

// Sync runs the engine's command once. Stats count the commands and mutating commands the
// engine sent and the files and mailboxes the run changed in the tree.
func (d *Device) Sync(ctx context.Context) (clients.SyncStats, error) {
	if err := d.resume(); err != nil {
		return clients.SyncStats{}, err
	}
	before := d.snapshot()
	cmds, muts := d.fwd.counts()
	err := d.run(ctx)
	after := d.snapshot()
	c2, m2 := d.fwd.counts()
	st := clients.SyncStats{Commands: c2 - cmds, Mutations: m2 - muts, LocalChanges: changes(before, after)}
	st.MailboxesSeen = 0
	for k := range after {
		if strings.HasPrefix(k, "mailbox ") {
			st.MailboxesSeen++
		}
	}
	return st, err
}

func (d *Device) run(ctx context.Context) error {
	d.mu.Lock()
	d.runs++
	n := d.runs
	logPath := filepath.Join(d.cfg.Dir, "log", fmt.Sprintf("%s-run%03d.log", d.prof.Name, n))
	d.logs = append(d.logs, logPath)
	d.mu.Unlock()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "$ %s\n", strings.Join(d.args, " "))
	cmd := exec.Command(d.args[0], d.args[1:]...)
	cmd.Dir = d.cfg.Dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + d.cfg.Dir, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC",
	}, d.env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	cut := d.fwd.arm()
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(log, "start: %v\n", err)
		log.Close()
		return fmt.Errorf("engine %s: start: %w", d.prof.Name, err)
	}
	r := &engineRun{cmd: cmd, done: make(chan error, 1), log: log}
	go func() { r.done <- cmd.Wait() }()
	d.fwd.setRun(r)
	timer := time.NewTimer(d.prof.timeout)
	defer timer.Stop()
	select {
	case err := <-r.done:
		d.fwd.setRun(nil)
		return r.finish(err, begin, d.prof.Name)
	case <-cut:
		// The forwarder stopped the engine the moment the connection was cut.
		d.fwd.setRun(nil)
		d.mu.Lock()
		d.stopped = r
		d.mu.Unlock()
		fmt.Fprintf(log, "-- connection cut after %s: engine stopped there\n", time.Since(begin).Round(time.Millisecond))
		return fmt.Errorf("engine %s: %w", d.prof.Name, ErrCut)
	case <-timer.C:
		d.fwd.setRun(nil)
		r.kill()
		fmt.Fprintf(log, "-- killed after the timeout of %s\n", d.prof.timeout)
		r.finish(<-r.done, begin, d.prof.Name)
		return fmt.Errorf("engine %s: no result within %s (killed; output in %s)", d.prof.Name, d.prof.timeout, logPath)
	case <-ctx.Done():
		d.fwd.setRun(nil)
		r.kill()
		r.finish(<-r.done, begin, d.prof.Name)
		return ctx.Err()
	}
}

// finish records the run's end in its log and returns its error.
func (r *engineRun) finish(err error, begin time.Time, name string) error {
	r.exited, r.result = true, err
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	fmt.Fprintf(r.log, "-- %s after %s\n", status, time.Since(begin).Round(time.Millisecond))
	r.log.Close()
	if err != nil {
		return fmt.Errorf("engine %s: %v", name, err)
	}
	return nil
}

func (r *engineRun) signal(sig syscall.Signal) {
	if r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, sig) // the whole process group; ESRCH once it is gone
}

func (r *engineRun) kill() { r.signal(syscall.SIGKILL) }

// stop freezes the engine where it is (SIGSTOP), once.
func (r *engineRun) stop() {
	if r.stopped.CompareAndSwap(false, true) {
		r.signal(syscall.SIGSTOP)
	}
}

// resume lets an engine stopped at a cut go on and waits until it exits: it sees its
// connection closed, as after a network failure.
func (d *Device) resume() error {
	d.mu.Lock()
	r := d.stopped
	d.stopped = nil
	d.mu.Unlock()
	if r == nil {
		return nil
	}
	r.signal(syscall.SIGCONT)
	timer := time.NewTimer(d.prof.timeout)
	defer timer.Stop()
	select {
	case err := <-r.done:
		fmt.Fprintf(r.log, "-- resumed after the cut\n")
		_ = r.finish(err, time.Now(), d.prof.Name)
	case <-timer.C:
		r.kill()
		fmt.Fprintf(r.log, "-- resumed after the cut, killed after the timeout of %s\n", d.prof.timeout)
		_ = r.finish(<-r.done, time.Now(), d.prof.Name)
	}
	return nil
}

// Crash kills an engine stopped where its connection was cut (SIGKILL): whatever it had not
// written to disk is lost. With no engine running there is nothing to lose: an external
// engine keeps all its state in files.
func (d *Device) Crash() error {
	d.mu.Lock()
	r := d.stopped
	d.stopped = nil
	d.mu.Unlock()
	if r == nil {
		return nil
	}
	r.kill()
	err := <-r.done
	fmt.Fprintf(r.log, "-- killed (SIGKILL) where the connection was cut\n")
	_ = r.finish(err, time.Now(), d.prof.Name)
	return nil
}

// Close lets a stopped engine finish and stops the local listener.
func (d *Device) Close() error {
	err := d.resume()
	d.fwd.close()
	return err
}

// Artifacts returns the engine's output of every run and the configuration it was given,
// for the report directory. The password file is never among them.
func (d *Device) Artifacts() map[string][]byte {
	d.mu.Lock()
	logs := append([]string{}, d.logs...)
	d.mu.Unlock()
	out := map[string][]byte{}
	var all strings.Builder
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		fmt.Fprintf(&all, "==> %s <==\n", filepath.Base(p))
		all.Write(b)
	}
	out["engine-"+d.cfg.Name+".log"] = []byte(d.redact(all.String()))
	if d.data.Config != "" {
		if b, err := os.ReadFile(d.data.Config); err == nil {
			out["engine-"+d.cfg.Name+"-"+d.prof.ConfigFile] = []byte(d.redact(string(b)))
		}
	}
	return out
}

func (d *Device) redact(s string) string {
	if d.cfg.Password == "" {
		return s
	}
	return strings.ReplaceAll(s, d.cfg.Password, "<password>")
}

// forwarder is the local address the engine connects to. Each connection is carried over
// the harness's Dial (the device's proxy). When the far side closes a connection before the
// engine logged out (the proxy cut it, or the server dropped it), the forwarder stops the
// engine (SIGSTOP) before the engine can see the close, so that a crash happens exactly
// where the connection was cut.
type forwarder struct {
	ln    net.Listener
	dial  func(ctx context.Context) (net.Conn, error)
	onCut func()

	mu    sync.Mutex
	run   *engineRun
	cutCh chan struct{}
	cut   bool
	conns map[net.Conn]struct{}

	commands, mutations atomic.Int64
	wg                  sync.WaitGroup
}

func newForwarder(dial func(ctx context.Context) (net.Conn, error), onCut func()) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, dial: dial, onCut: onCut, cutCh: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *forwarder) hostPort() (string, int) {
	host, port, _ := net.SplitHostPort(f.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	return host, p
}

func (f *forwarder) counts() (int, int) { return int(f.commands.Load()), int(f.mutations.Load()) }

// arm returns a channel closed when a connection is cut during the next run.
func (f *forwarder) arm() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutCh, f.cut = make(chan struct{}), false
	return f.cutCh
}

func (f *forwarder) setRun(r *engineRun) {
	f.mu.Lock()
	f.run = r
	f.mu.Unlock()
}

// cutNow stops the running engine and reports the cut.
func (f *forwarder) cutNow() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.run == nil || f.cut {
		return
	}
	f.run.stop()
	f.cut = true
	close(f.cutCh)
	if f.onCut != nil {
		f.onCut()
	}
}

func (f *forwarder) close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(c)
		}()
	}
}

func (f *forwarder) track(c net.Conn, on bool) {
	f.mu.Lock()
	if on {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
	f.mu.Unlock()
}

func (f *forwarder) serve(engine net.Conn) {
	defer engine.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	up, err := f.dial(ctx)
	cancel()
	if err != nil {
		return // the engine sees the connection refused (closed): the device is offline
	}
	defer up.Close()
	f.track(engine, true)
	f.track(up, true)
	defer f.track(engine, false)
	defer f.track(up, false)
	var loggedOut, engineDone atomic.Bool
	go func() {
		s := &commandScanner{onCommand: func(verb string) {
			f.commands.Add(1)
			if mutating[verb] {
				f.mutations.Add(1)
			}
			if verb == "LOGOUT" {
				loggedOut.Store(true)
			}
		}}
		// The scanner sees a line before the server does: LOGOUT is known before its answer.
		_, _ = io.Copy(io.MultiWriter(s, up), engine)
		engineDone.Store(true)
		if tc, ok := up.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		} else {
			up.Close()
		}
	}()
	_, _ = io.Copy(engine, up)
	if !loggedOut.Load() && !engineDone.Load() {
		f.cutNow()
	}
}

var mutating = map[string]bool{"APPEND": true, "STORE": true, "COPY": true, "MOVE": true, "EXPUNGE": true,
	"CREATE": true, "DELETE": true, "RENAME": true}

// commandScanner reads the client side of an IMAP stream and reports the verb of every
// command line, skipping literal data.
type commandScanner struct {
	onCommand func(verb string)
	line      []byte
	literal   int64 // bytes of literal data still to skip
	cont      bool  // the current line continues a command after a literal
}

func (s *commandScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.literal > 0 {
			k := min(int64(len(p)), s.literal)
			s.literal -= k
			p = p[k:]
			continue
		}
		i := indexByte(p, '\n')
		if i < 0 {
			if len(s.line) < 512 {
				s.line = append(s.line, p[:min(len(p), 512-len(s.line))]...)
			}
			return n, nil
		}
		if len(s.line) < 512 {
			s.line = append(s.line, p[:min(i, 512-len(s.line))]...)
		}
		p = p[i+1:]
		s.endLine()
	}
	return n, nil
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

func (s *commandScanner) endLine() {
	line := strings.TrimRight(string(s.line), "\r")
	s.line = s.line[:0]
	if !s.cont {
		fields := strings.Fields(line)
		if len(fields) >= 2 {
			verb := strings.ToUpper(fields[1])
			if verb == "UID" && len(fields) >= 3 {
				verb = strings.ToUpper(fields[2])
			}
			if s.onCommand != nil && verb != "DONE" {
				s.onCommand(verb)
			}
		}
	}
	s.cont = false
	// A line ending in {N} or {N+} announces N bytes of literal data; the command goes on
	// after them.
	if strings.HasSuffix(line, "}") {
		if j := strings.LastIndexByte(line, '{'); j >= 0 {
			num := strings.TrimSuffix(line[j+1:len(line)-1], "+")
			if v, err := strconv.ParseInt(num, 10, 64); err == nil {
				s.literal, s.cont = v, true
			}
		}
	}
}
