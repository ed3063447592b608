package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness"
	testproc "github.com/syncharness/syncharness/testsupport/proc"
)

const remotePassword = "Tr0ub4dor&3-not-in-any-output"

// remoteServer starts a fake IMAP server to play a third-party server, with user alice.
func remoteServer() string {
	GinkgoHelper()
	fs := fakeserver.New(fakeserver.Options{Seed: 1})
	DeferCleanup(fs.Close)
	Expect(fs.AddUser("alice", remotePassword)).To(Succeed())
	addr, err := fs.Listen("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	return addr.String()
}

// folders lists alice's mailboxes on addr.
func folders(addr string) []string {
	GinkgoHelper()
	c, err := imapclient.DialInsecure(addr, nil)
	Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	Expect(c.Login("alice", remotePassword).Wait()).To(Succeed())
	list, err := c.List("", "*", nil).Collect()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, l := range list {
		out = append(out, l.Mailbox)
	}
	return out
}

// service accepts connections, writes banner and closes them.
func service(banner string) string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(ln.Close)
	go func() {
		defer GinkgoRecover()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, banner)
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

func passwordFile(pass string) string {
	GinkgoHelper()
	return writeFile(tempDir(), "password", pass+"\n")
}

var _ = Describe("run --server", func() {
	var addr string
	BeforeEach(func() { addr = remoteServer() })

	DescribeTable("gives one clear line and exit code 2 for bad input, leaving nothing behind",
		func(url func() string, password, want string) {
			args := []string{"run", "--server", url(), "--connect-timeout", "2s", "--filter", "^delete_keeps_others_deleted$"}
			if password != "" {
				args = append(args, "--password-file", passwordFile(password))
			}
			res := runCLI(args...)
			Expect(res.Code).To(Equal(exitUsage))
			Expect(strings.Split(strings.TrimSpace(res.Stderr), "\n")).To(HaveLen(1), res.Stderr)
			Expect(res.Stderr).To(ContainSubstring(want))
			if password != "" {
				Expect(res.Stderr + res.Stdout).NotTo(ContainSubstring(password))
			}
			Expect(folders(addr)).To(ConsistOf("INBOX"))
		},
		Entry("a wrong password", func() string { return "imap://alice@" + addr }, "wrong-"+remotePassword, "login as alice"),
		Entry("nobody listening", func() string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			Expect(ln.Close()).To(Succeed())
			return "imap://alice@" + ln.Addr().String()
		}, remotePassword, "cannot connect"),
		Entry("a port that speaks something else", func() string { return "imap://alice@" + service("SSH-2.0-OpenSSH_9.2\r\n") }, remotePassword, "IMAP"),
		Entry("a server that drops the connection at greeting", func() string { return "imap://alice@" + service("") }, remotePassword, "IMAP"),
		Entry("no password", func() string { return "imap://alice@" + addr }, "", "SYNCHARNESS_PASSWORD"),
		Entry("a password in the URL", func() string { return "imap://alice:" + remotePassword + "@" + addr }, remotePassword, "not accepted"),
		Entry("an unknown scheme", func() string { return "http://alice@" + addr }, remotePassword, "imap://"),
	)

	DescribeTable("refuses a wrong admin profile with exit code 2",
		func(want string, flags ...string) {
			args := append([]string{"run", "--server", "imap://alice@" + addr, "--password-file", passwordFile(remotePassword)}, flags...)
			res := runCLI(args...)
			Expect(res.Code).To(Equal(exitUsage))
			Expect(res.Stderr).To(ContainSubstring(want))
			Expect(folders(addr)).To(ConsistOf("INBOX"))
		},
		Entry("an unknown profile", `want dovecot or generic`, "--admin", "cpanel"),
		Entry("generic without commands", "at least one --admin-cmd", "--admin", "generic"),
		Entry("a command for an unknown fault", `unknown fault "reboot"`, "--admin", "generic", "--admin-cmd", "reboot=shutdown -r now"),
		Entry("a command without a profile", "needs --admin generic", "--admin-cmd", "uidvalidity-bump=true"),
	)

	It("never shows the password: not in output, reports or transcripts", func() {
		dir := tempDir()
		GinkgoT().Setenv("SYNCHARNESS_PASSWORD", remotePassword)
		res := runCLI("run", "--server", "imap://alice@"+addr, "-v", "--broken-engine", "plain-expunge",
			"--filter", "^delete_keeps_others_deleted$", "--report-dir", filepath.Join(dir, "report"),
			"--json", filepath.Join(dir, "run.json"), "--html", filepath.Join(dir, "run.html"))
		Expect(res.Code).To(Equal(exitFailed), res.Stderr)
		Expect(res.Stdout + res.Stderr).NotTo(ContainSubstring(remotePassword))
		var files, logins int
		Expect(filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			files++
			b, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).NotTo(ContainSubstring(remotePassword), path)
			if strings.Contains(string(b), "LOGIN") {
				logins++
			}
			return nil
		})).To(Succeed())
		Expect(files).To(BeNumerically(">", 4))
		Expect(logins).To(BeNumerically(">", 0), "no transcript with the LOGIN in the reports")
		Expect(folders(addr)).To(ConsistOf("INBOX"))
	})

	// An interrupt (SIGINT, SIGTERM) cancels the run's context; here the context is
	// cancelled directly, as the test runner keeps SIGINT for itself.
	It("removes its folder when interrupted", func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan cliResult, 1)
		go func() {
			defer GinkgoRecover()
			done <- runCLIContext(ctx, "run", "--server", "imap://alice@"+addr, "--password-file", passwordFile(remotePassword), "--parallel", "1")
		}()
		Eventually(func() []string { return folders(addr) }).Should(ContainElement(HavePrefix("syncharness-")))
		cancel()
		var res cliResult
		Eventually(done, "60s").Should(Receive(&res))
		Expect(res.Code).To(Equal(exitUsage))
		Expect(res.Stderr).To(ContainSubstring("interrupted"))
		Expect(folders(addr)).To(ConsistOf("INBOX"))
	})
})

var _ = Describe("the syncharness binary", func() {
	It("removes its folder on SIGINT and exits 2", func(ctx SpecContext) {
		bin := filepath.Join(tempDir(), "syncharness")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		addr := remoteServer()
		cmd := exec.CommandContext(ctx, bin, "run", "--server", "imap://alice@"+addr, "--parallel", "1")
		cmd.Env = append(os.Environ(), "SYNCHARNESS_PASSWORD="+remotePassword)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		Expect(testproc.Start(cmd)).To(Succeed()) // it dies with the test process
		exited := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			exited <- cmd.Wait()
		}()
		Eventually(func() []string { return folders(addr) }, "20s").Should(ContainElement(HavePrefix("syncharness-")))
		Expect(cmd.Process.Signal(os.Interrupt)).To(Succeed())
		var werr error
		Eventually(exited, "60s").Should(Receive(&werr))
		var ee *exec.ExitError
		Expect(errors.As(werr, &ee)).To(BeTrue(), "exit: %v", werr)
		Expect(ee.ExitCode()).To(Equal(exitUsage))
		Expect(stderr.String()).To(ContainSubstring("interrupted"))
		Expect(stderr.String()).NotTo(ContainSubstring(remotePassword))
		Expect(folders(addr)).To(ConsistOf("INBOX"))
	})
})

var _ = Describe("clean", func() {
	It("removes only run folders it can prove are its own and not in progress, and says why it keeps the others", func(ctx SpecContext) {
		addr := remoteServer()
		c, err := imapclient.DialInsecure(addr, nil)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		Expect(c.Login("alice", remotePassword).Wait()).To(Succeed())
		put := func(mb string, raw []byte) {
			cmd := c.Append(mb, int64(len(raw)), nil)
			_, err := cmd.Write(raw)
			Expect(err).NotTo(HaveOccurred())
			Expect(cmd.Close()).To(Succeed())
			_, err = cmd.Wait()
			Expect(err).NotTo(HaveOccurred())
		}
		long := time.Now().Add(-48 * time.Hour)
		// The user's own folder, named like a run's, with a message of theirs.
		for _, mb := range []string{"Private", "syncharness-old"} {
			Expect(c.Create(mb, nil).Wait()).To(Succeed())
		}
		put("syncharness-old", []byte("Message-ID: <mine@example.org>\r\nSubject: mine\r\n\r\nmine\r\n"))
		// Runs killed two days ago: one holds only the harness's mail, the other also the
		// user's (moved there by hand).
		for _, id := range []string{"20200101T000000-dead", "20200101T000000-mixed"} {
			root := "syncharness-" + id
			for _, mb := range []string{root, root + "/syncharness-run", root + "/scn", root + "/scn/INBOX"} {
				Expect(c.Create(mb, nil).Wait()).To(Succeed())
			}
			put(root+"/syncharness-run", harness.RunMarker(id, long, long))
			put(root+"/scn/INBOX", clients.MakeMessage(clients.MessageSpec{Label: "m1", Run: "1"}))
			put(root+"/scn/INBOX", clients.MakeMessage(clients.MessageSpec{Label: "m2", Run: "1", NoMessageID: true}))
		}
		put("syncharness-20200101T000000-mixed/scn/INBOX", []byte("Message-ID: <x@example.org>\r\nSubject: x\r\n\r\nx\r\n"))
		// A run in progress.
		live, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: remotePassword, RunID: "live"})
		Expect(err).NotTo(HaveOccurred())
		_, err = live.Open(ctx, harness.ServerConfig{Scenario: "scn"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(live.Close, context.Background())
		before := folders(addr)

		args := []string{"clean", "--server", "imap://alice@" + addr, "--password-file", passwordFile(remotePassword)}
		res := runCLI(append(args, "--dry-run")...)
		Expect(res.Code).To(Equal(exitOK), res.Stderr)
		Expect(strings.Split(strings.TrimSpace(res.Stdout), "\n")).To(HaveExactElements(
			MatchRegexp(`^would remove syncharness-20200101T000000-dead: run marker for 20200101T000000-dead, heartbeat 4[78]h\d+m\d+s old; 4 folders, 3 messages, all made by syncharness$`),
			Equal(`kept syncharness-20200101T000000-mixed: holds mail syncharness did not make (message <x@example.org> in syncharness-20200101T000000-mixed/scn/INBOX)`),
			MatchRegexp(`^kept syncharness-live: may be in progress: its heartbeat is \d+s old, younger than 10m0s \(--older-than; --force removes it anyway\)$`),
			Equal(`kept syncharness-old: no run marker (syncharness-old/syncharness-run with a marker message for run old): not made by this version of syncharness, or not by syncharness`),
		))
		Expect(folders(addr)).To(ConsistOf(before))

		res = runCLI(args...)
		Expect(res.Code).To(Equal(exitOK), res.Stderr)
		Expect(res.Stdout).To(HavePrefix("removed syncharness-20200101T000000-dead: "))
		var want []string
		for _, f := range before {
			if !strings.HasPrefix(f, "syncharness-20200101T000000-dead") {
				want = append(want, f)
			}
		}
		Expect(folders(addr)).To(ConsistOf(want))

		res = runCLI(append(args, "--force")...)
		Expect(res.Code).To(Equal(exitOK), res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("removed syncharness-live: "))
		Expect(folders(addr)).To(ConsistOf("INBOX", "Private", "syncharness-old",
			"syncharness-20200101T000000-mixed", "syncharness-20200101T000000-mixed/syncharness-run",
			"syncharness-20200101T000000-mixed/scn", "syncharness-20200101T000000-mixed/scn/INBOX"))
	})
})

// runCLIContext is runCLI with a context that ends the run as an interrupt does.
func runCLIContext(ctx context.Context, args ...string) cliResult {
	GinkgoHelper()
	var out, errOut bytes.Buffer
	rootCmd.SetArgs(args)
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	// A subcommand keeps the context of its first execution: give it this one.
	sub, _, err := rootCmd.Find(args)
	Expect(err).NotTo(HaveOccurred())
	sub.SetContext(ctx)
	DeferCleanup(sub.SetContext, context.Background())
	DeferCleanup(rootCmd.SetContext, context.Background())
	err = rootCmd.ExecuteContext(ctx)
	rootCmd.SetArgs(nil)
	rootCmd.SetOut(nil)
	rootCmd.SetErr(nil)
	resetFlags(rootCmd)
	code := exitOK
	if err != nil {
		var f failedError
		if errors.As(err, &f) {
			code = exitFailed
		} else {
			code = exitUsage
			fmt.Fprintln(&errOut, "syncharness:", err)
		}
	}
	return cliResult{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

var _ = Describe("matrix", func() {
	It("writes one row per scenario and one column per target, with skip reasons", func() {
		addr := remoteServer()
		out := filepath.Join(tempDir(), "docs", "conformance.md")
		res := runCLI("matrix", "--server", "imap://alice@"+addr, "--password-file", passwordFile(remotePassword),
			"--label", "Other server", "--filter", "^(move_copy_and_move|uidvalidity_renumbered_silently)$", "--out", out)
		Expect(res.Code).To(Equal(exitOK), res.Stderr)
		b, err := os.ReadFile(out)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring("| scenario | fake server | Other server |\n"))
		Expect(string(b)).To(ContainSubstring("| `move_copy_and_move` | pass | pass |\n"))
		Expect(string(b)).To(MatchRegexp("\\| `uidvalidity_renumbered_silently` \\| pass \\| skipped: .*only the fake server.* \\|\n"))
		Expect(string(b)).To(ContainSubstring("| Other server | 1 | 0 | 0 | 0 | 1 | none |\n"))
		Expect(string(b)).NotTo(ContainSubstring(remotePassword))
		Expect(folders(addr)).To(ConsistOf("INBOX"))
	})
})
