package harness_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
	"github.com/syncharness/syncharness/testsupport/dovecot"
)

// scenario parses a scenario from text.
func scenario(name, src string) *scenarios.Scenario {
	GinkgoHelper()
	s, err := scenarios.Parse(name+".scn", []byte(src))
	Expect(err).NotTo(HaveOccurred())
	return s
}

const readArchive = `# A message read on the phone while the laptop archives it ends up archived and read.
devices phone laptop
mailbox Archive
deliver INBOX m1 m2 m3
sync
phone read INBOX m1
laptop move INBOX m1 Archive
sync
expect converged
expect server Archive m1 flags \Seen
expect server INBOX m2 m3
`

// remoteTarget builds a target for opts and removes its run folder after the spec.
func remoteTarget(opts harness.RemoteOptions) *harness.RemoteTarget {
	GinkgoHelper()
	t, err := harness.NewRemoteTarget(opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) { Expect(t.Close(ctx)).To(Succeed()) })
	return t
}

// accountFolders lists every mailbox of the account, read directly.
func accountFolders(addr string, u dovecot.User) []string {
	GinkgoHelper()
	c, err := imapclient.DialInsecure(addr, nil)
	Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	Expect(c.Login(u.Name, u.Password).Wait()).To(Succeed())
	list, err := c.List("", "*", nil).Collect()
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	return names
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as PEM.
func selfSigned(dir string) (tls.Certificate, string) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syncharness test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, "ca.pem")
	Expect(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)).To(Succeed())
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// tlsFront listens on loopback and relays to upstream behind TLS: implicit TLS, or the
// STARTTLS dance of an IMAP server (its own greeting, then upstream's session).
func tlsFront(upstream string, cert tls.Certificate, starttls bool) string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(ln.Close)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	go func() {
		defer GinkgoRecover()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer GinkgoRecover()
				defer c.Close()
				if starttls {
					if _, err := io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 STARTTLS] front\r\n"); err != nil {
						return
					}
					line, err := bufio.NewReader(c).ReadString('\n')
					tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
					if err != nil || !strings.EqualFold(cmd, "STARTTLS") {
						return
					}
					if _, err := io.WriteString(c, tag+" OK begin TLS\r\n"); err != nil {
						return
					}
				}
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					return
				}
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				br := bufio.NewReader(up)
				if starttls { // the client already had a greeting
					if _, err := br.ReadString('\n'); err != nil {
						return
					}
				}
				done := make(chan struct{})
				go func() {
					defer GinkgoRecover()
					_, _ = io.Copy(up, tc)
					_ = up.Close()
					close(done)
				}()
				_, _ = io.Copy(tc, br)
				_ = tc.Close()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

var _ = Describe("The remote target", Label("dovecot"), func() {
	var srv *dovecot.Server
	var alice dovecot.User

	BeforeEach(func(ctx SpecContext) {
		srv = startDovecot(ctx)
		alice = srv.Users[0]
	})

	Describe("connecting", func() {
		DescribeTable("runs a scenario over",
			func(ctx SpecContext, scheme string, starttls, useCA, insecure bool) {
				addr := srv.Addr()
				opts := harness.RemoteOptions{Password: alice.Password, RunID: "connect"}
				if scheme == "imaps" || starttls {
					cert, ca := selfSigned(GinkgoT().TempDir())
					addr = tlsFront(srv.Addr(), cert, starttls)
					if useCA {
						opts.CAFile = ca
					}
					opts.InsecureSkipVerify = insecure
				}
				opts.URL = scheme + "://" + alice.Name + "@" + addr
				if starttls {
					opts.URL += "?starttls"
				}
				t := remoteTarget(opts)
				Expect(t.Check(ctx)).To(Succeed())
				res := harness.RunScenario(ctx, scenario("read_archive", readArchive), harness.Options{Seed: 1, Target: t})
				Expect(res.Report.Status).To(Equal(reports.Passed), res.Report.Error)
				Expect(t.Close(ctx)).To(Succeed())
				Expect(accountFolders(srv.Addr(), alice)).To(ConsistOf("INBOX"))
			},
			Entry("plain IMAP", "imap", false, false, false),
			Entry("implicit TLS with the certificate given by --ca", "imaps", false, true, false),
			Entry("implicit TLS with verification off", "imaps", false, false, true),
			Entry("STARTTLS with the certificate given by --ca", "imap", true, true, false),
		)

		It("refuses a certificate it cannot verify", func(ctx SpecContext) {
			cert, _ := selfSigned(GinkgoT().TempDir())
			addr := tlsFront(srv.Addr(), cert, false)
			t := remoteTarget(harness.RemoteOptions{URL: "imaps://alice@" + addr, Password: alice.Password})
			Expect(t.Check(ctx)).To(MatchError(ContainSubstring("certificate")))
		})

		DescribeTable("says in one line what is wrong, and leaves nothing behind",
			func(ctx SpecContext, addr func() string, password, want string) {
				t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr(), Password: password,
					DialTimeout: 2 * time.Second})
				err := t.Check(ctx)
				Expect(err).To(MatchError(ContainSubstring(want)))
				Expect(err.Error()).NotTo(ContainSubstring("\n"))
				Expect(err.Error()).NotTo(ContainSubstring(alice.Password))
				Expect(accountFolders(srv.Addr(), alice)).To(ConsistOf("INBOX"))
			},
			Entry("a wrong password", func() string { return srv.Addr() }, "wrong-password", "login as alice"),
			Entry("nobody listening", func() string { return closedPort() }, "x", "cannot connect"),
			Entry("a port that speaks something else", func() string { return fakeService("SSH-2.0-OpenSSH_9.2\r\n") }, "x", "IMAP"),
			Entry("a server that drops the connection at once", func() string { return fakeService("") }, "x", "IMAP"),
		)
	})

	It("takes --dedicated-account only for an account that holds nothing", func(ctx SpecContext) {
		opts := harness.RemoteOptions{URL: "imap://alice@" + srv.Addr(), Password: alice.Password, DedicatedAccount: true}
		Expect(remoteTarget(opts).Check(ctx)).To(Succeed())
		seedAccount(srv, alice)
		Expect(remoteTarget(opts).Check(ctx)).To(MatchError(ContainSubstring("use an account that holds nothing")))
	})

	Describe("administrator faults", func() {
		status := func(ctx context.Context, s harness.Server) (uint32, []imap.UID) {
			st, err := s.State(ctx)
			Expect(err).NotTo(HaveOccurred())
			mb := st.Find("INBOX")
			Expect(mb).NotTo(BeNil())
			var uids []imap.UID
			for _, m := range mb.Messages {
				uids = append(uids, imap.UID(m.UID))
			}
			return mb.UIDValidity, uids
		}
		open := func(ctx context.Context, admin harness.Admin) harness.Server {
			t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + srv.Addr(), Password: alice.Password, Admin: admin})
			s, err := t.Open(ctx, harness.ServerConfig{Scenario: "admin"})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			var msgs []harness.ServerMessage
			for _, l := range []string{"m1", "m2", "m3"} {
				msgs = append(msgs, harness.ServerMessage{Label: l, Body: []byte("Message-ID: <" + l + "@x>\r\nSubject: " + l + "\r\n\r\n" + l + "\r\n"), Flags: []string{`\Flagged`}})
			}
			Expect(s.Do(ctx, harness.ServerOp{Kind: "deliver", Mailbox: "INBOX", Messages: msgs})).To(Succeed())
			return s
		}
		doveadm := func() []string { return []string{"doveadm", "-c", srv.ConfigPath()} }

		It("bumps UIDVALIDITY with doveadm and keeps every UID", func(ctx SpecContext) {
			s := open(ctx, harness.DovecotAdmin{Doveadm: doveadm()})
			v, uids := status(ctx, s)
			Expect(s.Do(ctx, harness.ServerOp{Kind: "uidvalidity-bump", Mailbox: "INBOX"})).To(Succeed())
			v2, uids2 := status(ctx, s)
			Expect(v2).To(Equal(v + 1))
			Expect(uids2).To(Equal(uids))
		})

		It("runs the user's command template for a fault (generic profile)", func(ctx SpecContext) {
			tmpl := strings.Join(doveadm(), " ") + " mailbox update -u {user} --uid-validity 4242 {mailbox}"
			s := open(ctx, harness.GenericAdmin{Commands: map[string]string{"uidvalidity-bump": tmpl}})
			Expect(s.Do(ctx, harness.ServerOp{Kind: "uidvalidity-bump", Mailbox: "INBOX"})).To(Succeed())
			v, _ := status(ctx, s)
			Expect(v).To(Equal(uint32(4242)))
		})

		It("resets UIDVALIDITY and renumbers in another order, content and flags kept", func(ctx SpecContext) {
			s := open(ctx, nil)
			before, err := s.State(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Do(ctx, harness.ServerOp{Kind: "uidvalidity-reset", Mailbox: "INBOX"})).To(Succeed())
			after, err := s.State(ctx)
			Expect(err).NotTo(HaveOccurred())
			b, a := before.Find("INBOX"), after.Find("INBOX")
			Expect(a.UIDValidity).NotTo(Equal(b.UIDValidity))
			Expect(a.Messages).To(HaveLen(3))
			for _, m := range a.Messages {
				Expect(m.Flags).To(Equal([]string{`\Flagged`}))
			}
			Expect(a.Messages[0].Label).To(Equal("m3")) // the highest old UID comes first
			Expect(accountFolders(srv.Addr(), alice)).NotTo(ContainElement(ContainSubstring("reset")))
		})

		It("makes a scenario that needs an admin fault skip with the reason when there is no profile", func(ctx SpecContext) {
			t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + srv.Addr(), Password: alice.Password})
			res := harness.RunScenario(ctx, scenario("bump", "# A bump.\ndevices phone\ndeliver INBOX m1\nsync\nserver uidvalidity-bump INBOX\nsync\nexpect converged\n"),
				harness.Options{Seed: 1, Target: t})
			Expect(res.Report.Status).To(Equal(reports.Skipped))
			Expect(res.Report.SkipReason).To(ContainSubstring("needs an admin profile"))
			Expect(t.Close(ctx)).To(Succeed())
			Expect(accountFolders(srv.Addr(), alice)).To(ConsistOf("INBOX"))
		})
	})
})

var _ = Describe("Server findings through the remote target", func() {
	It("reports a server that reuses expunged UIDs as a server finding", func(ctx SpecContext) {
		fs := fakeserver.New(fakeserver.Options{Seed: 1})
		DeferCleanup(fs.Close)
		Expect(fs.AddUser("alice", "pw-for-alice")).To(Succeed())
		Expect(fs.Apply(fakeserver.ReuseExpungedUIDs{User: "alice", On: true})).To(Succeed())
		addr, err := fs.Listen("127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr.String(), Password: "pw-for-alice"})
		Expect(t.Check(ctx)).To(Succeed())
		res := harness.RunScenario(ctx, scenario("reuse", `# UIDs reused.
devices phone tablet
deliver INBOX m1 m2
phone sync
server expunge INBOX m2
server deliver INBOX m3 size=4000
tablet sync
`), harness.Options{Seed: 1, Target: t})
		var server []string
		for _, f := range res.Report.Failures {
			if f.Server {
				server = append(server, f.Invariant)
			}
		}
		Expect(server).To(ContainElement(HavePrefix("S3")), "failures: %+v", res.Report.Failures)
	})
})

// closedPort returns a loopback address nobody listens on.
func closedPort() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := ln.Addr().String()
	Expect(ln.Close()).To(Succeed())
	return addr
}

// fakeService accepts connections, writes banner and closes them.
func fakeService(banner string) string {
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

// recorder is a TCP listener that greets each connection with greeting, answers a
// CAPABILITY with caps (if set) and records every byte it receives.
type recorder struct {
	ln   net.Listener
	mu   chan struct{}
	seen strings.Builder
}

func (r *recorder) received() string {
	<-r.mu
	defer func() { r.mu <- struct{}{} }()
	return r.seen.String()
}

func listenRecorder(host, greeting, caps string) *recorder {
	GinkgoHelper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(ln.Close)
	r := &recorder{ln: ln, mu: make(chan struct{}, 1)}
	r.mu <- struct{}{}
	go func() {
		defer GinkgoRecover()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			DeferCleanup(c.Close)
			go func() {
				defer GinkgoRecover()
				if greeting != "" {
					_, _ = io.WriteString(c, greeting)
				}
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					<-r.mu
					r.seen.WriteString(line)
					r.mu <- struct{}{}
					if err != nil {
						return
					}
					tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
					if strings.EqualFold(cmd, "CAPABILITY") && caps != "" {
						_, _ = io.WriteString(c, "* CAPABILITY "+caps+"\r\n"+tag+" OK done\r\n")
					}
				}
			}()
		}
	}()
	return r
}

// outsideAddress returns an address of this machine that is not loopback.
func outsideAddress() string {
	GinkgoHelper()
	addrs, err := net.InterfaceAddrs()
	Expect(err).NotTo(HaveOccurred())
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	Skip("this machine has no address besides loopback")
	return ""
}

var _ = Describe("Connecting to a remote server safely", func() {
	const password = "pw-never-on-the-wire"

	check := func(ctx context.Context, opts harness.RemoteOptions) error {
		GinkgoHelper()
		opts.Password = password
		t := remoteTarget(opts)
		errs := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			errs <- t.Check(ctx)
		}()
		var err error
		Eventually(errs).WithTimeout(10 * time.Second).Should(Receive(&err))
		return err
	}

	DescribeTable("sends no password to a server that advertises LOGINDISABLED, and says how to use TLS",
		func(ctx SpecContext, greeting, caps string) {
			r := listenRecorder("127.0.0.1", greeting, caps)
			err := check(ctx, harness.RemoteOptions{URL: "imap://alice@" + r.ln.Addr().String()})
			Expect(err).To(MatchError(ContainSubstring("imap://" + r.ln.Addr().String() + " advertises LOGINDISABLED")))
			Expect(err).To(MatchError(ContainSubstring("imaps://")))
			Expect(err).To(MatchError(ContainSubstring("?starttls")))
			Consistently(r.received).WithTimeout(200 * time.Millisecond).ShouldNot(ContainSubstring(password))
			Expect(r.received()).NotTo(ContainSubstring("LOGIN "))
		},
		Entry("in its greeting", "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n", ""),
		Entry("when asked", "* OK ready\r\n", "IMAP4rev1 STARTTLS LOGINDISABLED"),
	)

	It("sends no password in clear to a server that is not on this machine, unless allowed", func(ctx SpecContext) {
		r := listenRecorder(outsideAddress(), "* OK [CAPABILITY IMAP4rev1] ready\r\n", "")
		err := check(ctx, harness.RemoteOptions{URL: "imap://alice@" + r.ln.Addr().String()})
		Expect(err).To(MatchError(ContainSubstring("the password would cross the network in clear")))
		Expect(err).To(MatchError(ContainSubstring("?starttls")))
		Expect(err).To(MatchError(ContainSubstring("--allow-plaintext")))
		Consistently(r.received).WithTimeout(200 * time.Millisecond).Should(BeEmpty())

		fs := fakeserver.New(fakeserver.Options{Seed: 1})
		DeferCleanup(fs.Close)
		Expect(fs.AddUser("alice", password)).To(Succeed())
		addr, err := fs.Listen(net.JoinHostPort(outsideAddress(), "0"))
		Expect(err).NotTo(HaveOccurred())
		Expect(check(ctx, harness.RemoteOptions{URL: "imap://alice@" + addr.String()})).To(MatchError(ContainSubstring("--allow-plaintext")))
		Expect(check(ctx, harness.RemoteOptions{URL: "imap://alice@" + addr.String(), AllowPlaintext: true})).To(Succeed())
	})

	DescribeTable("bounds the connect, the TLS handshake and the greeting by the connect timeout, and names the step",
		func(ctx SpecContext, scheme, step string) {
			r := listenRecorder("127.0.0.1", "", "")
			url := scheme + "://alice@" + r.ln.Addr().String()
			err := check(ctx, harness.RemoteOptions{URL: url, DialTimeout: 300 * time.Millisecond, InsecureSkipVerify: scheme == "imaps"})
			Expect(err).To(MatchError(ContainSubstring(r.ln.Addr().String() + ": " + step)))
			Expect(err).To(MatchError(ContainSubstring("no answer within 300ms (--connect-timeout)")))

			errs := make(chan error, 1)
			go func() {
				defer GinkgoRecover()
				_, err := harness.CleanRemote(ctx, harness.CleanOptions{Remote: harness.RemoteOptions{URL: url, Password: password,
					DialTimeout: 300 * time.Millisecond, InsecureSkipVerify: scheme == "imaps"}})
				errs <- err
			}()
			Eventually(errs).WithTimeout(10 * time.Second).Should(Receive(MatchError(ContainSubstring(step))))
		},
		Entry("a silent server", "imap", "waiting for the IMAP greeting"),
		Entry("a silent server with implicit TLS", "imaps", "TLS handshake failed"),
	)
})

var _ = Describe("Server steps on a server without UIDPLUS", func() {
	DescribeTable("remove only the messages they name, never mail another client marked \\Deleted",
		func(ctx SpecContext, disable []string, op harness.ServerOp, inbox []string) {
			fs := fakeserver.New(fakeserver.Options{Seed: 1})
			DeferCleanup(fs.Close)
			Expect(fs.AddUser("alice", "pw-for-alice")).To(Succeed())
			Expect(fs.Apply(fakeserver.SetCaps{Disable: disable})).To(Succeed())
			addr, err := fs.Listen("127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr.String(), Password: "pw-for-alice"})
			s, err := t.Open(ctx, harness.ServerConfig{Scenario: "no_uidplus"})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			var msgs []harness.ServerMessage
			for _, l := range []string{"m1", "m2", "m3"} {
				msgs = append(msgs, harness.ServerMessage{Label: l, Body: []byte("Message-ID: <" + l + ".r@syncharness.invalid>\r\nSubject: " + l + "\r\n\r\n" + l + "\r\n")})
			}
			Expect(s.Do(ctx, harness.ServerOp{Kind: "deliver", Mailbox: "INBOX", Messages: msgs})).To(Succeed())
			Expect(s.Do(ctx, harness.ServerOp{Kind: "create", Mailbox: "Archive"})).To(Succeed())
			// A device marked m2 \Deleted and has not expunged it.
			Expect(s.Do(ctx, harness.ServerOp{Kind: "flag", Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Deleted`})).To(Succeed())

			Expect(s.Do(ctx, op)).To(Succeed())
			st, err := s.State(ctx)
			Expect(err).NotTo(HaveOccurred())
			got := map[string][]string{}
			for _, m := range st.Find("INBOX").Messages {
				got[m.Label] = m.Flags
			}
			Expect(got).To(HaveLen(len(inbox)))
			for _, l := range inbox {
				Expect(got).To(HaveKey(l))
			}
			Expect(got["m2"]).To(Equal([]string{`\Deleted`}), "the device's \\Deleted mail stays, marked")
		},
		Entry("server expunge", []string{"UIDPLUS"}, harness.ServerOp{Kind: "expunge", Mailbox: "INBOX", Labels: []string{"m1"}}, []string{"m2", "m3"}),
		Entry("server move without MOVE", []string{"UIDPLUS", "MOVE"}, harness.ServerOp{Kind: "move", Mailbox: "INBOX", Labels: []string{"m3"}, Dest: "Archive"}, []string{"m1", "m2"}),
	)
})

var _ = Describe("The run marker", func() {
	It("is written when the run folder is made and refreshed while the run lasts, one message at a time", func(ctx SpecContext) {
		fs := fakeserver.New(fakeserver.Options{Seed: 1})
		DeferCleanup(fs.Close)
		Expect(fs.AddUser("alice", "pw-for-alice")).To(Succeed())
		addr, err := fs.Listen("127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr.String(), Password: "pw-for-alice",
			RunID: "beat", HeartbeatInterval: 50 * time.Millisecond})
		_, err = t.Open(ctx, harness.ServerConfig{Scenario: "scn"})
		Expect(err).NotTo(HaveOccurred())

		c, err := imapclient.DialInsecure(addr.String(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		Expect(c.Login("alice", "pw-for-alice").Wait()).To(Succeed())
		markers := func() []string {
			sel, err := c.Select("syncharness-beat/"+harness.MarkerFolder, &imap.SelectOptions{ReadOnly: true}).Wait()
			Expect(err).NotTo(HaveOccurred())
			defer func() { Expect(c.Unselect().Wait()).To(Succeed()) }()
			if sel.NumMessages == 0 {
				return nil
			}
			var all imap.SeqSet
			all.AddRange(1, sel.NumMessages)
			sect := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"X-Syncharness-Heartbeat", "Message-ID"}, Peek: true}
			msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sect}}).Collect()
			Expect(err).NotTo(HaveOccurred())
			var out []string
			for _, m := range msgs {
				out = append(out, strings.TrimSpace(string(m.FindBodySection(sect))))
			}
			return out
		}
		first := markers()
		Expect(first).To(HaveExactElements(ContainSubstring("Message-ID: <run-marker.beat@syncharness.invalid>")))
		Eventually(markers).WithTimeout(10 * time.Second).Should(HaveExactElements(
			SatisfyAll(ContainSubstring("X-Syncharness-Heartbeat: "), Not(Equal(first[0])))))
	})
})
