package dovecot_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/testsupport/dovecot"
)

// start starts a server for the current spec, skips where Dovecot cannot run and stops it
// when the spec ends.
func start(ctx context.Context, opts dovecot.Options) *dovecot.Server {
	srv, err := dovecot.Start(ctx, opts)
	if dovecot.Unavailable(err) {
		Skip("Dovecot cannot run here: " + err.Error())
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			GinkgoWriter.Println("dovecot log:\n" + srv.LogTail())
		}
		Expect(srv.Stop()).To(Succeed())
	})
	return srv
}

// login connects to srv as user and logs in.
func login(srv *dovecot.Server, user dovecot.User) *imapclient.Client {
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	Expect(c.Login(user.Name, user.Password).Wait()).To(Succeed())
	return c
}

// appendMessage appends a harness message with the given label and flags to mailbox.
func appendMessage(c *imapclient.Client, mailbox, label string, flags ...imap.Flag) imap.UID {
	raw := clients.MakeMessage(clients.MessageSpec{Label: label, Run: "t"})
	cmd := c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	_, err := cmd.Write(raw)
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Close()).To(Succeed())
	data, err := cmd.Wait()
	Expect(err).NotTo(HaveOccurred())
	return data.UID
}

// snapshot is what a client sees of a mailbox: UIDVALIDITY and label → UID and flags.
type snapshot struct {
	uidValidity uint32
	uids        map[string]imap.UID
	flags       map[string][]string
}

func look(c *imapclient.Client, mailbox string) snapshot {
	sel, err := c.Select(mailbox, nil).Wait()
	Expect(err).NotTo(HaveOccurred())
	s := snapshot{uidValidity: sel.UIDValidity, uids: map[string]imap.UID{}, flags: map[string][]string{}}
	if sel.NumMessages > 0 {
		var all imap.SeqSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
		Expect(err).NotTo(HaveOccurred())
		for _, m := range msgs {
			label, _, _ := strings.Cut(m.Envelope.MessageID, ".")
			s.uids[label] = m.UID
			var fl []string
			for _, f := range m.Flags {
				if f != `\Recent` {
					fl = append(fl, string(f))
				}
			}
			sort.Strings(fl)
			s.flags[label] = fl
		}
	}
	Expect(c.Unselect().Wait()).To(Succeed())
	return s
}

var _ = Describe("A private Dovecot server", func() {
	var (
		ctx   context.Context
		srv   *dovecot.Server
		alice = dovecot.User{Name: "alice", Password: "alice-secret"}
		bob   = dovecot.User{Name: "bob", Password: "bob-secret"}
	)

	BeforeEach(func() {
		ctx = context.Background()
		srv = start(ctx, dovecot.Options{Users: []dovecot.User{alice, bob}})
	})

	It("listens on the loopback and lets every user log in with the static password", func() {
		host, _, err := net.SplitHostPort(srv.Addr())
		Expect(err).NotTo(HaveOccurred())
		Expect(host).To(Equal("127.0.0.1"))
		login(srv, alice)
		login(srv, bob)
		Expect(srv.Users).To(ConsistOf(alice, bob))
	})

	It("refuses a wrong password", func() {
		c, err := imapclient.DialInsecure(srv.Addr(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		Expect(c.Login("alice", "wrong").Wait()).NotTo(Succeed())
	})

	It("offers CONDSTORE", func() {
		c := login(srv, alice)
		caps, err := c.Capability().Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(caps.Has(imap.CapCondStore)).To(BeTrue(), "capabilities: %v", caps)
	})

	It("reports HIGHESTMODSEQ on SELECT (CONDSTORE) and raises it with a flag change", func() {
		c := login(srv, alice)
		uid := appendMessage(c, "INBOX", "m1")
		sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(sel.HighestModSeq).NotTo(BeZero())
		_, err = c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Unselect().Wait()).To(Succeed())
		again, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(again.HighestModSeq).To(BeNumerically(">", sel.HighestModSeq))
	})

	It("stores an appended message in the user's Maildir, owned by the dovecot user, and fetches it back", func() {
		c := login(srv, alice)
		uid := appendMessage(c, "INBOX", "m1", imap.FlagSeen)
		Expect(uid).To(Equal(imap.UID(1)))
		s := look(c, "INBOX")
		Expect(s.uids).To(Equal(map[string]imap.UID{"m1": 1}))
		Expect(s.flags["m1"]).To(Equal([]string{`\Seen`}))

		files, err := filepath.Glob(filepath.Join(srv.MaildirPath("alice"), "cur", "*"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(1))
		Expect(files[0]).To(HaveSuffix(":2,S"))
		fi, err := os.Stat(files[0])
		Expect(err).NotTo(HaveOccurred())
		dovecotUser, err := user.Lookup("dovecot")
		Expect(err).NotTo(HaveOccurred())
		Expect(fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid)).To(Equal(dovecotUser.Uid), "mail processes run as the dovecot user, not root")
		body, err := os.ReadFile(files[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(clients.Label(body)).To(Equal("m1"))
		Expect(look(login(srv, bob), "INBOX").uids).To(BeEmpty(), "bob has his own Maildir")
	})

	It("runs doveadm against the server", func() {
		c := login(srv, alice)
		appendMessage(c, "INBOX", "m1")
		out, err := srv.Doveadm(ctx, "-f", "flow", "mailbox", "status", "-u", "alice", "messages", "INBOX")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("INBOX messages=1"))
		_, err = srv.Doveadm(ctx, "no-such-command")
		Expect(err).To(MatchError(ContainSubstring("doveadm no-such-command")))
	})

	It("bumps UIDVALIDITY while every message keeps its UID and flags", func() {
		c := login(srv, alice)
		Expect(c.Create("Work", nil).Wait()).To(Succeed())
		for _, l := range []string{"m1", "m2", "m3"} {
			appendMessage(c, "Work", l)
		}
		before := look(c, "Work")
		uv, err := srv.UIDValidityBump(ctx, "alice", "Work")
		Expect(err).NotTo(HaveOccurred())
		Expect(uv).NotTo(Equal(before.uidValidity))

		after := look(c, "Work")
		Expect(after.uidValidity).To(Equal(uv))
		Expect(after.uids).To(Equal(before.uids))
		Expect(after.flags).To(Equal(before.flags))
	})

	It("resets UIDVALIDITY and renumbers the messages in reverse order, keeping flags and keywords", func() {
		c := login(srv, alice)
		appendMessage(c, "INBOX", "m1", imap.FlagSeen)
		appendMessage(c, "INBOX", "m2", imap.FlagFlagged, "$Label1")
		appendMessage(c, "INBOX", "m3")
		before := look(c, "INBOX")
		Expect(before.uids).To(Equal(map[string]imap.UID{"m1": 1, "m2": 2, "m3": 3}))

		uv, err := srv.UIDValidityReset(ctx, "alice", "INBOX")
		Expect(err).NotTo(HaveOccurred())
		Expect(uv).NotTo(Equal(before.uidValidity))
		Eventually(c.Closed()).Should(BeClosed(), "the reset disconnects the user's sessions")

		after := look(login(srv, alice), "INBOX")
		Expect(after.uidValidity).To(Equal(uv))
		Expect(after.uids).To(Equal(map[string]imap.UID{"m3": 1, "m2": 2, "m1": 3}))
		Expect(after.flags).To(Equal(before.flags))
	})

	It("resets a mailbox below another one", func() {
		c := login(srv, alice)
		Expect(c.Create("Archive/2026", nil).Wait()).To(Succeed())
		appendMessage(c, "Archive/2026", "m1")
		appendMessage(c, "Archive/2026", "m2")
		before := look(c, "Archive/2026")
		uv, err := srv.UIDValidityReset(ctx, "alice", "Archive/2026")
		Expect(err).NotTo(HaveOccurred())
		after := look(login(srv, alice), "Archive/2026")
		Expect(after.uidValidity).To(Equal(uv))
		Expect(after.uidValidity).NotTo(Equal(before.uidValidity))
		Expect(after.uids).To(Equal(map[string]imap.UID{"m2": 1, "m1": 2}))
	})

	It("runs beside a second server without either noticing the other", func() {
		other := start(ctx, dovecot.Options{Users: []dovecot.User{alice}})
		Expect(other.Addr()).NotTo(Equal(srv.Addr()))
		Expect(other.Dir()).NotTo(Equal(srv.Dir()))
		appendMessage(login(srv, alice), "INBOX", "here")
		appendMessage(login(other, alice), "INBOX", "there")
		Expect(look(login(srv, alice), "INBOX").uids).To(HaveKey("here"))
		Expect(look(login(other, alice), "INBOX").uids).To(Equal(map[string]imap.UID{"there": 1}))

		Expect(other.Stop()).To(Succeed())
		Expect(look(login(srv, alice), "INBOX").uids).To(Equal(map[string]imap.UID{"here": 1}))
	})

	It("stops: the port closes and the directory is removed", func() {
		dir := srv.Dir()
		Expect(srv.Stop()).To(Succeed())
		Expect(dir).NotTo(BeADirectory())
		_, err := net.Dial("tcp", srv.Addr())
		Expect(err).To(HaveOccurred())
		Expect(srv.Stop()).To(Succeed(), "a second Stop is harmless")
	})

	It("writes its log where LogTail reads it", func() {
		c, err := imapclient.DialInsecure(srv.Addr(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		Expect(c.Login("alice", "wrong").Wait()).NotTo(Succeed())
		Eventually(func() string { return srv.LogTail() }).Should(ContainSubstring("alice"))
	})
})

var _ = Describe("Starting Dovecot", func() {
	It("reports a missing binary as unavailable, for the caller to skip", func() {
		GinkgoT().Setenv(dovecot.RequireEnv, "")
		_, err := dovecot.Start(context.Background(), dovecot.Options{Binary: filepath.Join(GinkgoT().TempDir(), "dovecot")})
		Expect(err).To(MatchError(dovecot.ErrNotInstalled))
		Expect(dovecot.Unavailable(err)).To(BeTrue())
	})

	It("reports it as a failure, not a reason to skip, where Dovecot is required (CI)", func() {
		GinkgoT().Setenv(dovecot.RequireEnv, "1")
		_, err := dovecot.Start(context.Background(), dovecot.Options{Binary: filepath.Join(GinkgoT().TempDir(), "dovecot")})
		Expect(err).To(MatchError(dovecot.ErrNotInstalled))
		Expect(dovecot.Unavailable(err)).To(BeFalse())
	})
})

var _ = Describe("A private Dovecot server with extra settings", func() {
	It("runs with them in effect", func() {
		ctx := context.Background()
		srv := start(ctx, dovecot.Options{Settings: []string{"mailbox_list_index_very_dirty_syncs = yes"}})
		out, err := srv.Doveadm(ctx, "config", "-h", "mailbox_list_index_very_dirty_syncs")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("yes"))
		out, err = srv.Doveadm(ctx, "config", "-h", "mail_location")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("maildir:~/Maildir"), "the generated settings stay")
	})
})
