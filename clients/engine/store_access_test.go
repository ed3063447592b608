package engine_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
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

// readCounter is a Store that records which mailboxes' records were read.
type readCounter struct {
	engine.Store
	mu    sync.Mutex
	boxes []string // one entry per Messages call
	all   int      // AllMessages calls
	uids  []string // one entry ("mailbox uid") per MessagesByUID call
}

func (s *readCounter) View(fn func(engine.Tx) error) error {
	return s.Store.View(func(tx engine.Tx) error { return fn(readCountingTx{tx, s}) })
}

func (s *readCounter) Update(fn func(engine.Tx) error) error {
	return s.Store.Update(func(tx engine.Tx) error { return fn(readCountingTx{tx, s}) })
}

func (s *readCounter) reads() ([]string, int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.boxes), s.all, slices.Clone(s.uids)
}

type readCountingTx struct {
	engine.Tx
	s *readCounter
}

func (t readCountingTx) Messages(mailbox string) ([]engine.MessageRecord, error) {
	t.s.mu.Lock()
	t.s.boxes = append(t.s.boxes, mailbox)
	t.s.mu.Unlock()
	return t.Tx.Messages(mailbox)
}

func (t readCountingTx) MessagesByUID(mailbox string, uid uint32) ([]engine.MessageRecord, error) {
	t.s.mu.Lock()
	t.s.uids = append(t.s.uids, fmt.Sprintf("%s %d", mailbox, uid))
	t.s.mu.Unlock()
	return t.Tx.MessagesByUID(mailbox, uid)
}

// sentRecorder is a connection that keeps what the client sent.
type sentRecorder struct {
	net.Conn
	mu   sync.Mutex
	sent strings.Builder
}

func (c *sentRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.sent.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *sentRecorder) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent.String()
}

func (t readCountingTx) AllMessages() ([]engine.MessageRecord, error) {
	t.s.mu.Lock()
	t.s.all++
	t.s.mu.Unlock()
	return t.Tx.AllMessages()
}

var _ = Describe("The engine's store access against Dovecot (CONDSTORE)", Ordered, func() {
	var srv *dovecot.Server
	var admin *imapclient.Client
	var dir string
	u := dovecot.User{Name: "carol", Password: "secret"}
	ctx := context.Background()

	BeforeAll(func() {
		var err error
		srv, err = dovecot.Start(ctx, dovecot.Options{Users: []dovecot.User{u}})
		if dovecot.Unavailable(err) {
			Skip("Dovecot cannot run here: " + err.Error())
		}
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(srv.Stop)
		admin, err = imapclient.DialInsecure(srv.Addr(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(admin.Close)
		Expect(admin.Login(u.Name, u.Password).Wait()).To(Succeed())
		Expect(admin.Create("Archive", nil).Wait()).To(Succeed())
		for i := 1; i <= 30; i++ {
			box := "INBOX"
			if i > 25 {
				box = "Archive"
			}
			raw := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprintf("s%02d", i), Run: run, Size: 400})
			cmd := admin.Append(box, int64(len(raw)), nil)
			_, err := cmd.Write(raw)
			Expect(err).NotTo(HaveOccurred())
			Expect(cmd.Close()).To(Succeed())
			_, err = cmd.Wait()
			Expect(err).NotTo(HaveOccurred())
		}
		dir = filepath.Join(GinkgoT().TempDir(), "store")
	})

	change := func(mailbox string, f func()) {
		GinkgoHelper()
		_, err := admin.Select(mailbox, nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		f()
		Expect(admin.Unselect().Wait()).To(Succeed())
	}
	// lastUIDs are the records looked up by UID, and lastSent what the engine sent, in the
	// last round.
	var lastUIDs []string
	var lastSent string
	// round opens the disk store, syncs once as a process run from cron would, closes it,
	// and returns the mailboxes whose records were read, the AllMessages calls and the
	// replica.
	round := func() (clients.SyncStats, []string, int, []string) {
		GinkgoHelper()
		ds, err := engine.OpenDiskStore(dir)
		Expect(err).NotTo(HaveOccurred())
		store := &readCounter{Store: ds}
		var conns []*sentRecorder
		d, err := engine.NewDevice("phone", engine.Options{
			Dial: func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, "tcp", srv.Addr())
				if err != nil {
					return nil, err
				}
				rec := &sentRecorder{Conn: c}
				conns = append(conns, rec)
				return rec, nil
			},
			Username: u.Name, Password: u.Password, Store: store, CommandTimeout: 20 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		st := syncOK(d)
		boxes, all, uids := store.reads()
		view := replica(d)
		Expect(d.Close()).To(Succeed())
		Expect(ds.Close()).To(Succeed())
		lastUIDs, lastSent = uids, ""
		for _, c := range conns {
			lastSent += c.String()
		}
		return st, boxes, all, view
	}
	uidOf := func(mailbox string, seq uint32) string {
		GinkgoHelper()
		var uid imap.UID
		change(mailbox, func() {
			msgs, err := admin.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{UID: true}).Collect()
			Expect(err).NotTo(HaveOccurred())
			Expect(msgs).To(HaveLen(1))
			uid = msgs[0].UID
		})
		return fmt.Sprintf("%s %d", mailbox, uid)
	}

	It("reads no message record and writes nothing in a round where nothing changed", func() {
		st, _, _, view := round()
		Expect(st.Downloaded).To(Equal(30))
		db := filepath.Join(dir, "state.db")
		before, err := os.ReadFile(db)
		Expect(err).NotTo(HaveOccurred())

		st, boxes, all, again := round()
		Expect(st.Changed()).To(BeFalse())
		Expect(boxes).To(BeEmpty())
		Expect(all).To(BeZero())
		Expect(again).To(Equal(view))
		after, err := os.ReadFile(db)
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(Equal(before), "a round that changed nothing wrote to the database")
	})

	It("reads only the records whose flags changed, found by UID, and sends no SEARCH, when UIDNEXT and the count are as committed", func() {
		change("INBOX", func() {
			Expect(admin.Store(imap.SeqSetNum(3, 5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
				Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()).To(Succeed())
		})
		st, boxes, all, view := round()
		Expect(st.LocalChanges).To(Equal(2))
		Expect(boxes).To(BeEmpty(), "a mailbox read record by record")
		Expect(all).To(BeZero())
		Expect(lastUIDs).To(ConsistOf(uidOf("INBOX", 3), uidOf("INBOX", 5)))
		Expect(lastSent).To(ContainSubstring("CHANGEDSINCE"))
		Expect(lastSent).NotTo(ContainSubstring("SEARCH"))
		Expect(view).To(ContainElement(ContainSubstring(`s03[\Flagged] s04 s05[\Flagged]`)))
	})

	It("reads the records of a mailbox that lost a message", func() {
		change("Archive", func() {
			Expect(admin.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
				Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()).To(Succeed())
			Expect(admin.Expunge().Close()).To(Succeed())
		})
		_, boxes, _, view := round()
		Expect(boxes).To(ContainElement("Archive"))
		Expect(boxes).NotTo(ContainElement("INBOX"))
		Expect(view).To(ContainElement("Archive: s27 s28 s29 s30"))
	})
})
