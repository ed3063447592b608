package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	testproc "github.com/syncharness/syncharness/testsupport/proc"
)

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

// startServe runs "syncharness serve" in the background and returns its address.
func startServe(ctx context.Context, f serveFlags) (addr string, done chan error, out *gbytes.Buffer) {
	GinkgoHelper()
	out, errOut := gbytes.NewBuffer(), gbytes.NewBuffer()
	done = make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		done <- runServe(ctx, out, errOut, f)
	}()
	Eventually(out).Should(gbytes.Say(`listening on \S+\n`))
	return listeningRE.FindStringSubmatch(string(out.Contents()))[1], done, out
}

var _ = Describe("syncharness serve", func() {
	It("prints its address, serves IMAP and stops when its context ends", func() {
		ctx, cancel := context.WithCancel(context.Background())
		DeferCleanup(cancel)
		addr, done, _ := startServe(ctx, serveFlags{listen: "127.0.0.1:0", users: []string{"alice:secret", "bob:pw"}, maxLiteral: 1 << 20})
		c, err := imapclient.DialInsecure(addr, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		Expect(c.Login("bob", "pw").Wait()).To(Succeed())
		cancel()
		Eventually(done).Should(Receive(BeNil()))
		Eventually(c.Closed()).Should(BeClosed())
	})

	DescribeTable("refuses bad flags with a usage error",
		func(f serveFlags, want string) {
			err := runServe(context.Background(), gbytes.NewBuffer(), gbytes.NewBuffer(), f)
			Expect(err).To(MatchError(ContainSubstring(want)))
			Expect(err).To(BeAssignableToTypeOf(usageError{}))
		},
		Entry("no user", serveFlags{listen: "127.0.0.1:0", maxLiteral: 1}, "at least one --user"),
		Entry("a user without password", serveFlags{listen: "127.0.0.1:0", users: []string{"alice"}, maxLiteral: 1}, `--user "alice": want NAME:PASSWORD`),
		Entry("an unknown capability", serveFlags{listen: "127.0.0.1:0", users: []string{"a:b"}, disable: []string{"FROB"}, maxLiteral: 1}, `unknown capability "FROB"`),
		Entry("a bad address", serveFlags{listen: "127.0.0.1:notaport", users: []string{"a:b"}, maxLiteral: 1}, "listen"),
	)

	Describe("--listen", func() {
		// serve starts runServe on listen and returns its port, what it printed on stderr
		// once listening, and a function that stops it.
		serve := func(listen string) (port string, errOut *gbytes.Buffer) {
			GinkgoHelper()
			ctx, cancel := context.WithCancel(context.Background())
			out, errOut := gbytes.NewBuffer(), gbytes.NewBuffer()
			done := make(chan error, 1)
			go func() {
				defer GinkgoRecover()
				done <- runServe(ctx, out, errOut, serveFlags{listen: listen, users: []string{"alice:secret"}, maxLiteral: 1 << 20})
			}()
			DeferCleanup(func() {
				cancel()
				Eventually(done).Should(Receive(BeNil()))
			})
			Eventually(out).Should(gbytes.Say(`listening on \S+\n`))
			addr := listeningRE.FindStringSubmatch(string(out.Contents()))[1]
			_, port, err := net.SplitHostPort(addr)
			Expect(err).NotTo(HaveOccurred())
			return port, errOut
		}

		DescribeTable("on every interface warns on stderr and still serves",
			func(listen string) {
				port, errOut := serve(listen)
				Expect(string(errOut.Contents())).To(MatchRegexp(`^serve: warning: \S+:%s is not a loopback address: any client on the network can connect\. .*no TLS.*--listen 127\.0\.0\.1:PORT.*\n$`, port))
				c, err := imapclient.DialInsecure(net.JoinHostPort("127.0.0.1", port), nil)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(c.Close)
				Expect(c.Login("alice", "secret").Wait()).To(Succeed())
			},
			Entry("only a port", ":0"),
			Entry("0.0.0.0", "0.0.0.0:0"),
		)

		DescribeTable("on loopback says nothing on stderr",
			func(listen string) {
				_, errOut := serve(listen)
				// The warning comes before "listening on", which serve waited for.
				Expect(errOut.Contents()).To(BeEmpty())
			},
			Entry("127.0.0.1", "127.0.0.1:0"),
			Entry("localhost", "localhost:0"),
		)
	})

	Describe("as a process", Ordered, func() {
		var (
			bin  string
			addr string
			proc *gexec.Session
		)
		BeforeAll(func() {
			bin = filepath.Join(GinkgoT().TempDir(), "syncharness")
			out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "go build: %s", out)
		})
		BeforeEach(func() {
			// Started as testproc starts it, the server dies with the test process.
			cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--user", "alice:secret", "--seed", "3")
			Expect(testproc.Launch(cmd, func() (err error) {
				proc, err = gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
				return err
			})).To(Succeed())
			DeferCleanup(func() { proc.Kill().Wait() })
			Eventually(proc.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`listening on \S+\n`))
			addr = listeningRE.FindStringSubmatch(string(proc.Out.Contents()))[1]
		})

		DescribeTable("stops cleanly on a signal",
			func(sig syscall.Signal) {
				c, err := imapclient.DialInsecure(addr, nil)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(c.Close)
				Expect(c.Login("alice", "secret").Wait()).To(Succeed())
				proc.Signal(sig)
				Eventually(proc).WithTimeout(10 * time.Second).Should(gexec.Exit(0))
				Eventually(c.Closed()).Should(BeClosed())
			},
			Entry("SIGINT", syscall.SIGINT),
			Entry("SIGTERM", syscall.SIGTERM),
		)

		Describe("with curl, an IMAP client written elsewhere", func() {
			BeforeEach(func() {
				if _, err := exec.LookPath("curl"); err != nil {
					Skip("curl is not installed (.ci/run installs it): the curl interoperability check did not run")
				}
				c, err := imapclient.DialInsecure(addr, nil)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(c.Close)
				Expect(c.Login("alice", "secret").Wait()).To(Succeed())
				Expect(c.Create("Archive", nil).Wait()).To(Succeed())
				body := "From: a@example.org\r\nSubject: hello curl\r\n\r\nfirst line\r\n"
				app := c.Append("INBOX", int64(len(body)), nil)
				_, err = app.Write([]byte(body))
				Expect(err).NotTo(HaveOccurred())
				Expect(app.Close()).To(Succeed())
				_, err = app.Wait()
				Expect(err).NotTo(HaveOccurred())
			})

			curl := func(args ...string) (string, error) {
				GinkgoHelper()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, "curl", append([]string{"--silent", "--show-error"}, args...)...).CombinedOutput()
				return string(out), err
			}

			It("lists the mailboxes", func() {
				out, err := curl("imap://"+addr+"/", "-u", "alice:secret")
				Expect(err).NotTo(HaveOccurred(), out)
				Expect(out).To(ContainSubstring("INBOX"))
				Expect(out).To(ContainSubstring("Archive"))
			})

			It("fetches a message by UID", func() {
				out, err := curl("imap://"+addr+"/INBOX;UID=1", "-u", "alice:secret")
				Expect(err).NotTo(HaveOccurred(), out)
				Expect(strings.ReplaceAll(out, "\r\n", "\n")).To(ContainSubstring("Subject: hello curl\n\nfirst line"))
			})

			It("is refused with a wrong password", func() {
				out, err := curl("imap://"+addr+"/", "-u", "alice:wrong")
				Expect(err).To(HaveOccurred(), out)
			})
		})
	})
})
