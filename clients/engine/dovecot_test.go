package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/testsupport/dovecot"
)

// imapView renders an account read over IMAP like world.server.
func imapView(c *imapclient.Client) []string {
	GinkgoHelper()
	list, err := c.List("", "*", nil).Collect()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, l := range list {
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		Expect(err).NotTo(HaveOccurred())
		var ms []string
		if sel.NumMessages > 0 {
			msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true,
				BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			Expect(err).NotTo(HaveOccurred())
			for _, m := range msgs {
				var fl []string
				for _, f := range m.Flags {
					fl = append(fl, string(f))
				}
				ms = append(ms, render(clients.Label(m.BodySection[0].Bytes), fl))
			}
		}
		sort.Strings(ms)
		out = append(out, strings.TrimSpace(l.Mailbox+": "+strings.Join(ms, " ")))
	}
	sort.Strings(out)
	return out
}

// appendTo appends the message labelled label to mailbox.
func appendTo(c *imapclient.Client, mailbox, label string) {
	GinkgoHelper()
	appendBody(c, mailbox, msg(label), time.Time{})
}

// appendBody appends raw to mailbox, dated date (the server's clock when zero).
func appendBody(c *imapclient.Client, mailbox string, raw []byte, date time.Time) {
	GinkgoHelper()
	var opts *imap.AppendOptions
	if !date.IsZero() {
		opts = &imap.AppendOptions{Time: date}
	}
	cmd := c.Append(mailbox, int64(len(raw)), opts)
	_, err := cmd.Write(raw)
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Close()).To(Succeed())
	_, err = cmd.Wait()
	Expect(err).NotTo(HaveOccurred())
}

// sentLog records the commands a client writes on its connections ("SELECT INBOX", "UID
// FETCH …"), tags and literals left out: what a round asked of the server.
type sentLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *sentLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.cmds
	l.cmds = nil
	return out
}

type loggedConn struct {
	net.Conn
	log *sentLog
}

func (c loggedConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\r\n"), "\r\n") {
		// A command line starts with its tag; a literal's bytes or DONE do not look like one.
		if tag, cmd, ok := strings.Cut(line, " "); ok && strings.HasPrefix(tag, "T") && cmd != "" && cmd[0] >= 'A' && cmd[0] <= 'Z' {
			c.log.cmds = append(c.log.cmds, cmd)
		}
	}
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

var _ = Describe("against Dovecot (CONDSTORE)", Ordered, func() {
	var srv *dovecot.Server
	var admin *imapclient.Client
	var phone, laptop *engine.Device
	phoneSent := &sentLog{}
	u := dovecot.User{Name: "alice", Password: "secret"}
	ctx := context.Background()

	BeforeAll(func() {
		var err error
		srv, err = dovecot.Start(ctx, dovecot.Options{Users: []dovecot.User{u}})
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
		admin, err = imapclient.DialInsecure(srv.Addr(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(admin.Close)
		Expect(admin.Login(u.Name, u.Password).Wait()).To(Succeed())
		Expect(admin.Caps().Has(imap.CapCondStore)).To(BeTrue())
		Expect(admin.Create("Archive", nil).Wait()).To(Succeed())
		for i := 1; i <= 20; i++ {
			appendTo(admin, "INBOX", fmt.Sprintf("m%02d", i))
		}
		dev := func(name string, log *sentLog) *engine.Device {
			d, err := engine.NewDevice(name, engine.Options{
				Dial: func(ctx context.Context) (net.Conn, error) {
					var d net.Dialer
					c, err := d.DialContext(ctx, "tcp", srv.Addr())
					if err != nil || log == nil {
						return c, err
					}
					return loggedConn{c, log}, nil
				},
				Username: u.Name, Password: u.Password, Store: engine.NewMemoryStore(),
				CommandTimeout: 20 * time.Second,
			})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			return d
		}
		phone, laptop = dev("phone", phoneSent), dev("laptop", nil)
	})

	It("brings both devices all mail and records HIGHESTMODSEQ", func() {
		settle(phone, laptop)
		want := imapView(admin)
		Expect(want).To(HaveLen(2))
		Expect(replica(phone)).To(Equal(want))
		Expect(replica(laptop)).To(Equal(want))
		st, err := phone.SyncState(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, mb := range st.Mailboxes {
			Expect(mb.HighestModSeq).NotTo(BeZero(), "mailbox %s", mb.Name)
		}
	})

	It("selects no mailbox but the one its connection has open in a round where nothing changed", func() {
		Expect(admin.Caps().Has(imap.CapListStatus)).To(BeTrue())
		phoneSent.take()
		st := syncOK(phone)
		// LIST-STATUS shows both mailboxes as they were: the one the kept connection has
		// selected is selected again (its STATUS may lag), the other one not at all, and no
		// flag scan thanks to HIGHESTMODSEQ.
		sent := phoneSent.take()
		Expect(sent).To(HaveExactElements("NOOP", HavePrefix(`LIST "" "*" RETURN (STATUS (`), "SELECT INBOX (CONDSTORE)"))
		for _, item := range []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"} {
			Expect(sent[1]).To(ContainSubstring(item)) // in the order of a map in go-imap
		}
		Expect(st.Changed()).To(BeFalse())
	})

	It("still finds what another client did in a mailbox it did not select", func() {
		appendTo(admin, "Archive", "a01")
		syncOK(phone)
		Expect(replica(phone)).To(ContainElement("Archive: a01"))
		_, err := admin.Select("Archive", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		for _, step := range []struct {
			op   imap.StoreFlagsOp
			want string
		}{{imap.StoreFlagsAdd, `Archive: a01[\Flagged]`}, {imap.StoreFlagsDel, "Archive: a01"}} {
			Expect(admin.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: step.op, Silent: true,
				Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()).To(Succeed())
			phoneSent.take()
			st := syncOK(phone)
			Expect(phoneSent.take()).To(ContainElement(`SELECT "Archive" (CONDSTORE)`))
			Expect(st.LocalChanges).To(Equal(1))
			Expect(replica(phone)).To(ContainElement(step.want))
		}
		Expect(admin.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()).To(Succeed())
		Expect(admin.Expunge().Close()).To(Succeed())
		Expect(admin.Unselect().Wait()).To(Succeed())
		syncOK(phone)
		Expect(replica(phone)).To(ContainElement("Archive:"))
		Expect(replica(phone)).To(Equal(imapView(admin)))
		settle(phone, laptop)
	})

	It("picks up a flag changed by another client with CHANGEDSINCE", func() {
		_, err := admin.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()).To(Succeed())
		Expect(admin.Unselect().Wait()).To(Succeed())
		st := syncOK(phone)
		Expect(st.LocalChanges).To(Equal(1))
		Expect(replica(phone)).To(ContainElement(ContainSubstring(`m03[\Flagged]`)))
	})

	It("selects INBOX before the LIST on a new connection, and scans with that selection unless it changed the mailbox since", func() {
		// As engine-sync runs: one engine, and one connection, per round, on one store.
		store, sent := engine.NewMemoryStore(), &sentLog{}
		round := func() (clients.SyncStats, []string) {
			e, err := engine.Open(ctx, engine.Options{
				Dial: func(ctx context.Context) (net.Conn, error) {
					var d net.Dialer
					c, err := d.DialContext(ctx, "tcp", srv.Addr())
					return loggedConn{c, sent}, err
				},
				Username: u.Name, Password: u.Password, Store: store, CommandTimeout: 20 * time.Second,
			})
			Expect(err).NotTo(HaveOccurred())
			defer func() { Expect(e.Close()).To(Succeed()) }()
			sent.take()
			st, err := e.Sync(ctx)
			Expect(err).NotTo(HaveOccurred())
			return st, sent.take()
		}
		// index returns the position of the first command with prefix, and how many have it.
		index := func(cmds []string, prefix string) (first, n int) {
			first = -1
			for i, c := range cmds {
				if strings.HasPrefix(c, prefix) {
					if n++; first < 0 {
						first = i
					}
				}
			}
			return first, n
		}
		selects := func(cmds []string) (n, first, list int) {
			first, n = index(cmds, "SELECT INBOX (CONDSTORE)")
			list, _ = index(cmds, "LIST ")
			return n, first, list
		}
		round()
		_, err := admin.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.Store(imap.SeqSetNum(7), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagAnswered}}, nil).Close()).To(Succeed())
		Expect(admin.Unselect().Wait()).To(Succeed())

		// Another client's change: asked for right after the early selection, before the
		// LIST, and the round's only SELECT and FETCH.
		st, cmds := round()
		n, first, list := selects(cmds)
		Expect(n).To(Equal(1), "SELECTs of INBOX in %q", cmds)
		Expect(first).To(BeNumerically("<", list), "the SELECT comes before the LIST in %q", cmds)
		fetch, fetches := index(cmds, "UID FETCH")
		Expect(fetches).To(Equal(1), "FETCHes in %q", cmds)
		Expect(cmds[fetch]).To(ContainSubstring("(CHANGEDSINCE "))
		Expect(fetch).To(BeNumerically("<", list), "the FETCH comes before the LIST in %q", cmds)
		Expect(st.LocalChanges).To(Equal(1))

		// The round's own change to INBOX: the scan selects INBOX again, to see the
		// counters after it.
		e, err := engine.Open(ctx, engine.Options{Username: u.Name, Password: u.Password, Store: store,
			Dial: func(ctx context.Context) (net.Conn, error) { return nil, errors.New("offline") }})
		Expect(err).NotTo(HaveOccurred())
		Expect(replica(e)).To(ContainElement(ContainSubstring(`m07[\Answered]`)))
		recs, err := e.Messages(ctx, "INBOX")
		Expect(err).NotTo(HaveOccurred())
		var m08 []engine.LocalID
		for _, m := range recs {
			if m.Label == "m08" {
				m08 = append(m08, m.ID)
			}
		}
		Expect(m08).To(HaveLen(1))
		Expect(e.SetFlags(ctx, m08, []string{"$Todo"})).To(Succeed())
		Expect(e.Close()).To(Succeed())
		_, err = admin.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.Store(imap.SeqSetNum(9), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagAnswered}}, nil).Close()).To(Succeed())
		Expect(admin.Unselect().Wait()).To(Succeed())
		st, cmds = round()
		n, first, list = selects(cmds)
		Expect(n).To(Equal(2), "SELECTs of INBOX in %q", cmds)
		Expect(first).To(BeNumerically("<", list))
		fetch, fetches = index(cmds, "UID FETCH")
		Expect(fetch).To(BeNumerically(">", list), "nothing fetched early with a change to push: %q", cmds)
		Expect(fetches).To(Equal(1), "FETCHes in %q", cmds)
		Expect(st.Mutations).To(Equal(1))
		Expect(imapView(admin)).To(ContainElement(ContainSubstring(`m07[\Answered] m08[$Todo] m09[\Answered]`)))
		Expect(replica(e)).To(ContainElement(ContainSubstring(`m07[\Answered] m08[$Todo] m09[\Answered]`)))
	})

	It("converges two devices' offline changes", func() {
		do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m01", "m02"}})
		do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m04"}, Dest: "Archive"})
		do(laptop, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m05"}})
		do(laptop, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m01"}, Flag: "$Work"})
		settle(phone, laptop)
		want := imapView(admin)
		Expect(want[0]).To(Equal("Archive: m04"))
		Expect(want[1]).To(ContainSubstring(`m01[$Work,\Seen] m02[\Seen] m03[\Flagged] m06`))
		Expect(want[1]).NotTo(ContainSubstring("m05"))
		Expect(replica(phone)).To(Equal(want))
		Expect(replica(laptop)).To(Equal(want))
		for _, d := range []*engine.Device{phone, laptop} {
			st := syncOK(d)
			Expect(st.Mutations).To(BeZero())
		}
	})

	It("downloads nothing after a UIDVALIDITY bump", func() {
		_, err := srv.UIDValidityBump(ctx, u.Name, "INBOX")
		Expect(err).NotTo(HaveOccurred())
		st := syncOK(phone)
		Expect(st.Downloaded).To(BeZero())
		Expect(st.Quarantined).To(BeZero())
		Expect(replica(phone)).To(Equal(imapView(admin)))
	})
})
