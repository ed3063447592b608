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

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
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
	It("removes the syncharness-* folders of killed runs and nothing else", func() {
		addr := remoteServer()
		c, err := imapclient.DialInsecure(addr, nil)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		Expect(c.Login("alice", remotePassword).Wait()).To(Succeed())
		for _, mb := range []string{"Private", "syncharness-old", "syncharness-old/scn", "syncharness-old/scn/INBOX"} {
			Expect(c.Create(mb, nil).Wait()).To(Succeed())
		}
		res := runCLI("clean", "--server", "imap://alice@"+addr, "--password-file", passwordFile(remotePassword))
		Expect(res.Code).To(Equal(exitOK), res.Stderr)
		Expect(res.Stdout).To(Equal("removed syncharness-old\n"))
		Expect(folders(addr)).To(ConsistOf("INBOX", "Private"))
		res = runCLI("clean", "--server", "imap://alice@"+addr, "--password-file", passwordFile(remotePassword))
		Expect(res.Stdout).To(Equal("nothing to remove\n"))
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
		Expect(string(b)).To(ContainSubstring("| Other server | 1 | 0 | 0 | 1 |\n"))
		Expect(string(b)).NotTo(ContainSubstring(remotePassword))
		Expect(folders(addr)).To(ConsistOf("INBOX"))
	})
})
