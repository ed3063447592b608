package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/testsupport/dovecot"
)

var _ = Describe("a HIGHESTMODSEQ that went back (Dovecot, CONDSTORE)", func() {
	// RFC 7162 §3.1.1: HIGHESTMODSEQ never goes down under one UIDVALIDITY. A server that
	// once said a higher value than it had (a corrupted answer, a server restored from a
	// backup) would have a CHANGEDSINCE from the recorded value miss every change made up
	// to it, for good.
	It("scans the mailbox in full and misses no flag another client changed", func() {
		ctx := context.Background()
		u := dovecot.User{Name: "alice", Password: "secret"}
		srv, err := dovecot.Start(ctx, dovecot.Options{Users: []dovecot.User{u}})
		if dovecot.Unavailable(err) {
			Skip("Dovecot cannot run here: " + err.Error())
		}
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(srv.Stop)
		admin, err := imapclient.DialInsecure(srv.Addr(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(admin.Close)
		Expect(admin.Login(u.Name, u.Password).Wait()).To(Succeed())
		for _, l := range []string{"m1", "m2", "m3"} {
			appendTo(admin, "INBOX", l)
		}
		rw := newRewriter(srv.Addr())
		tablet, err := engine.NewDevice("tablet", engine.Options{Dial: rw.dial, Username: u.Name, Password: u.Password,
			Store: engine.NewMemoryStore(), CommandTimeout: 20 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(tablet.Close)
		syncOK(tablet)

		// Another client sets a flag; the answers of the tablet's next round say the
		// mailbox's HIGHESTMODSEQ is 5 above what it is, wherever they say it.
		_, err = admin.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()).To(Succeed())
		modseq := regexp.MustCompile(`HIGHESTMODSEQ (\d+)`)
		lied := 0
		rw.set(func(cmd string, resp []byte) io.Reader {
			return bytes.NewReader(modseq.ReplaceAllFunc(resp, func(m []byte) []byte {
				n, _ := strconv.ParseUint(string(modseq.FindSubmatch(m)[1]), 10, 64)
				lied++
				return fmt.Appendf(nil, "HIGHESTMODSEQ %d", n+5)
			}))
		})
		syncOK(tablet)
		Expect(lied).To(BeNumerically(">", 0), "answers carrying HIGHESTMODSEQ")
		Expect(replica(tablet)).To(ContainElement(`INBOX: m1[\Seen] m2 m3`))

		// Now the server tells the truth, and the other client changes two more flags:
		// their MODSEQs are at or below the value the tablet was told.
		rw.set(nil)
		Expect(admin.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()).To(Succeed())
		Expect(admin.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagAnswered}}, nil).Close()).To(Succeed())
		syncOK(tablet)
		want := imapView(admin)
		Expect(want).To(ContainElement(`INBOX: m1[\Seen] m2[\Flagged] m3[\Answered]`))
		Expect(replica(tablet)).To(Equal(want))
		st := syncOK(tablet)
		Expect(st.Changed()).To(BeFalse())
		Expect(replica(tablet)).To(Equal(want))
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Seen`})
		syncOK(tablet)
		Expect(imapView(admin)).To(ContainElement(`INBOX: m1[\Seen] m2[\Flagged,\Seen] m3[\Answered]`))
	})
})

var flagsRE = regexp.MustCompile(`\[[^]]*\]`)

// withoutFlags renders a view (replica, imapView) with the flags left out.
func withoutFlags(view []string) []string {
	out := make([]string, len(view))
	for i, line := range view {
		out[i] = flagsRE.ReplaceAllString(line, "")
	}
	return out
}

var _ = Describe("one corrupted Dovecot answer in a round (CONDSTORE, LIST-STATUS, ESEARCH)", func() {
	// As "one corrupted server answer in a round", on a server whose answers take the
	// engine's other ways: LIST-STATUS that lets it skip mailboxes, CHANGEDSINCE that reads
	// only what changed, ESEARCH, COPYUID from a MOVE. Every case gets an account of its own.
	//
	// One thing differs: with CONDSTORE the engine asks a message's flags again only when
	// its MODSEQ moves, so flags a corrupted answer stated (a flag left out or added, a UID
	// misread, a CHANGEDSINCE line lost) stay in the tablet's replica until the message
	// changes again, as in every CONDSTORE client: no answer can tell them from true ones.
	// What holds all the same: the tablet keeps every message, in the right mailbox, and
	// downloads nothing again; the lie goes no further (the server and the phone end in
	// the users' state exactly, so nothing the tablet pushed came from it).
	for _, sc := range []corruptionScene{corruptionScenes[0], corruptionScenes[2]} {
		It(sc.name+": converges with nothing lost, doubled or resurrected", func() {
			sweepOnDovecot(sc)
		})
	}
})

// sweepOnDovecot sweeps the corruptions of sc's round on a private Dovecot, an account per
// case.
func sweepOnDovecot(sc corruptionScene) {
	Expect(sc.reset).To(BeEmpty(), "a UIDVALIDITY reset is the fake server's")
	ctx := context.Background()
	const accounts = 1500
	users := make([]dovecot.User, accounts)
	for i := range users {
		users[i] = dovecot.User{Name: fmt.Sprintf("c%04d", i), Password: "secret"}
	}
	srv, err := dovecot.Start(ctx, dovecot.Options{Users: users})
	if dovecot.Unavailable(err) {
		Skip("Dovecot cannot run here: " + err.Error())
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(srv.Stop)
	next := 0
	sweepCorruptions(func(cr *corruptingRewriter) corruptedRound {
		Expect(next).To(BeNumerically("<", accounts), "accounts for the cases")
		u := users[next]
		next++
		admin, err := imapclient.DialInsecure(srv.Addr(), nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.Login(u.Name, u.Password).Wait()).To(Succeed())
		for _, mb := range slices.Sorted(maps.Keys(sc.start)) {
			if mb != "INBOX" {
				Expect(admin.Create(mb, nil).Wait()).To(Succeed())
			}
			for _, l := range sc.start[mb] {
				appendBody(admin, mb, sc.body(l), sweepDate)
			}
		}
		rw := newRewriter(srv.Addr())
		device := func(name string, dial func(context.Context) (net.Conn, error)) *engine.Device {
			d, err := engine.NewDevice(name, engine.Options{Dial: dial, Username: u.Name, Password: u.Password,
				Store: engine.NewMemoryStore(), CommandTimeout: 5 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			return d
		}
		tablet := device("tablet", rw.dial)
		phone := device("phone", func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", srv.Addr())
		})
		settle(tablet, phone)
		sc.work(tablet, phone, func(mailbox, label string) { appendBody(admin, mailbox, sc.body(label), sweepDate) })
		rw.close() // a new connection for the round under test, as on the fake server
		rw.set(cr.answer)
		run, check := corruptedRounds(sc, tablet, rw, func() {
			settle(tablet, phone)
			Expect(imapView(admin)).To(Equal(sc.final), "server")
			Expect(replica(phone)).To(Equal(sc.final), "device phone")
			Expect(withoutFlags(replica(tablet))).To(Equal(withoutFlags(sc.final)), "device tablet, flags aside")
			for _, d := range []*engine.Device{tablet, phone} {
				st := syncOK(d)
				Expect(st.Mutations).To(BeZero(), "device %s: mutations after convergence", d.Name())
				Expect(st.LocalChanges).To(BeZero(), "device %s: local changes after convergence", d.Name())
			}
		})
		return corruptedRound{run: run, check: check, stop: func() {
			_ = tablet.Close()
			_ = phone.Close()
			rw.close()
			_ = admin.Close()
		}}
	}, false)
}
