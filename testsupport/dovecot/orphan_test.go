package dovecot_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/testsupport/dovecot"
	"github.com/syncharness/syncharness/testsupport/proc"
)

// childEnv, when set, makes TestDovecotChild start a server below the directory it names
// and wait to be killed: the test process the spec below kills.
const childEnv = "SYNCHARNESS_DOVECOT_CHILD"

var _ = Describe("A test process that dies without cleaning up", func() {
	DescribeTable("leaves no Dovecot process running",
		func(sig syscall.Signal) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestDovecotChild$", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), childEnv+"="+GinkgoT().TempDir())
			cmd.Stderr = GinkgoWriter
			out, err := cmd.StdoutPipe()
			Expect(err).NotTo(HaveOccurred())
			Expect(proc.Start(cmd)).To(Succeed())
			DeferCleanup(func() {
				_ = proc.KillGroup(cmd)
				_ = cmd.Wait()
			})

			// The child prints one line: ready PGID ADDR, unavailable REASON or error MESSAGE.
			line, err := bufio.NewReader(out).ReadString('\n')
			Expect(err).NotTo(HaveOccurred(), "the child test process said nothing")
			word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			if word == "unavailable" {
				Skip("Dovecot cannot run here: " + rest)
			}
			Expect(word).To(Equal("ready"), rest)
			f := strings.Fields(rest)
			Expect(f).To(HaveLen(2))
			pgid, err := strconv.Atoi(f[0])
			Expect(err).NotTo(HaveOccurred())
			addr := f[1]
			DeferCleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }) // if the spec fails

			group, err := proc.Group(pgid)
			Expect(err).NotTo(HaveOccurred())
			Expect(commands(group)).To(ContainElements(
				ContainSubstring("dovecot -F"), HaveSuffix("/imap"), HaveSuffix("/auth"), HaveSuffix("/log")),
				"the master, the child's IMAP session and the helpers run before the child dies")

			Expect(cmd.Process.Signal(sig)).To(Succeed())
			Expect(cmd.Wait()).To(HaveOccurred())

			Eventually(func() ([]string, error) {
				g, err := proc.Group(pgid)
				return commands(g), err
			}).WithTimeout(15*time.Second).Should(BeEmpty(), "Dovecot processes left after the test process died")
			Expect(greets(addr)).To(BeFalse())
		},
		Entry("killed with SIGKILL", syscall.SIGKILL),
		Entry("stopped with SIGQUIT, as go test's timeout does", syscall.SIGQUIT),
	)
})

// commands returns the command lines of pids, for failure messages.
func commands(pids []int) []string {
	var out []string
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return out
}

func greets(addr string) bool {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return false
	}
	defer c.Close()
	return c.Noop().Wait() == nil
}

// TestDovecotChild is the test process the spec above kills; it does nothing unless
// childEnv is set. It starts the server from a goroutine whose thread then ends, checks
// that the server outlived that thread (the parent-death signal is tied to the thread
// that starts a child), opens an IMAP session and waits to be killed.
func TestDovecotChild(t *testing.T) {
	parent := os.Getenv(childEnv)
	if parent == "" {
		return
	}
	type started struct {
		srv *dovecot.Server
		tid int
		err error
	}
	// A goroutine that ends locked to its thread ends the thread, except the process's
	// main thread, which Go keeps: hold this goroutine on its thread, and start again from
	// another goroutine if the first landed on the main thread all the same.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var s started
	for {
		ch := make(chan started, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			if syscall.Gettid() == os.Getpid() {
				runtime.UnlockOSThread()
				ch <- started{tid: os.Getpid()}
				return
			}
			srv, err := dovecot.Start(context.Background(), dovecot.Options{ParentDir: parent,
				Users: []dovecot.User{{Name: "alice", Password: "alice-secret"}}})
			ch <- started{srv, syscall.Gettid(), err}
		}()
		if s = <-ch; s.tid != os.Getpid() {
			break
		}
	}
	if dovecot.Unavailable(s.err) {
		fmt.Println("unavailable", s.err)
		return
	}
	if s.err != nil {
		fmt.Println("error", strings.ReplaceAll(s.err.Error(), "\n", " "))
		return
	}
	// This child reports to the parent on stdout, so a failed wait is a line, not a panic.
	g := NewGomega(func(string, ...int) {})
	threadGone := func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", s.tid))
		return os.IsNotExist(err)
	}
	if !g.Eventually(threadGone).WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(BeTrue()) {
		fmt.Println("error the starting thread did not end")
		return
	}
	c, err := imapclient.DialInsecure(s.srv.Addr(), nil)
	if err == nil {
		err = c.Login("alice", "alice-secret").Wait()
	}
	if err == nil {
		_, err = c.Select("INBOX", nil).Wait()
	}
	if err != nil {
		fmt.Println("error the server did not outlive the thread that started it:", err)
		return
	}
	fmt.Println("ready", s.srv.ProcessGroup(), s.srv.Addr())
	select {}
}
