package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	bolt "go.etcd.io/bbolt"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// openDisk opens a disk store in dir and closes it when the spec ends.
func openDisk(dir string) *engine.DiskStore {
	s, err := engine.OpenDiskStore(dir)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(s.Close)
	return s
}

var _ = DescribeStoreConformance("disk", StoreHarness{
	Open: func() engine.Store { return openDisk(GinkgoT().TempDir()) },
	Crash: func(s engine.Store) engine.Store {
		ns, err := s.(*engine.DiskStore).Reopen()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(ns.Close)
		return ns
	},
})

// bodyFiles returns the names of the files in one subdirectory of the store's Maildir.
func bodyFiles(dir, sub string) []string {
	entries, err := os.ReadDir(filepath.Join(dir, "Maildir", sub))
	Expect(err).NotTo(HaveOccurred())
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// mappedResident returns how much of the files this process maps whose names end with
// suffix is resident, from /proc/self/smaps.
func mappedResident(suffix string) int64 {
	raw, err := os.ReadFile("/proc/self/smaps")
	Expect(err).NotTo(HaveOccurred())
	var total int64
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			in = strings.HasSuffix(fields[len(fields)-1], suffix) // a mapping's header line
		case in && len(fields) == 3 && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			Expect(err).NotTo(HaveOccurred())
			total += kb << 10
		}
	}
	return total
}

// flagSuffixes returns the ":2,…" suffix of every body file in cur.
func flagSuffixes(dir string) []string {
	var out []string
	for _, n := range bodyFiles(dir, "cur") {
		_, info, _ := strings.Cut(n, ":")
		out = append(out, info)
	}
	return out
}

var _ = Describe("The disk store", func() {
	var (
		dir string
		s   *engine.DiskStore
	)

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		s = openDisk(dir)
	})

	// addMessage commits one message with a body and flags and returns its id.
	addMessage := func(st engine.Store, mailbox, body string, flags ...string) engine.LocalID {
		var id engine.LocalID
		Expect(st.Update(func(tx engine.Tx) error {
			var err error
			id, err = tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: mailbox, UID: uint32(id), Flags: engine.ParseFlags(flags)}); err != nil {
				return err
			}
			return tx.PutBody(id, []byte(body))
		})).To(Succeed())
		return id
	}

	setFlags := func(st engine.Store, id engine.LocalID, flags ...string) {
		Expect(st.Update(func(tx engine.Tx) error {
			m, ok, err := tx.Message(id)
			if err != nil || !ok {
				return fmt.Errorf("message %d: found %v: %w", id, ok, err)
			}
			m.Flags = engine.ParseFlags(flags)
			return tx.PutMessage(m)
		})).To(Succeed())
	}

	It("keeps its state, journal and bodies across a close and an open", func() {
		id := addMessage(s, "INBOX", "hello", `\Seen`)
		Expect(s.Update(func(tx engine.Tx) error {
			if err := tx.PutMailbox(engine.MailboxRecord{Name: "INBOX", UIDValidity: 9, UIDNext: 2, HighestModSeq: 77}); err != nil {
				return err
			}
			_, err := tx.AddJournal(engine.JournalEntry{Op: engine.OpMove, Message: id, Dest: "Archive", UIDNext: 5, UIDValidity: 3})
			return err
		})).To(Succeed())
		Expect(s.Close()).To(Succeed())

		s2 := openDisk(dir)
		Expect(s2.View(func(tx engine.Tx) error {
			mb, ok, err := tx.Mailbox("INBOX")
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(BeTrue())
			Expect(mb).To(Equal(engine.MailboxRecord{Name: "INBOX", UIDValidity: 9, UIDNext: 2, HighestModSeq: 77}))
			m, ok, err := tx.Message(id)
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(BeTrue())
			Expect(m.Flags.Names()).To(Equal([]string{`\Seen`}))
			Expect(tx.Body(id)).To(Equal([]byte("hello")))
			j, err := tx.Journal()
			Expect(err).NotTo(HaveOccurred())
			Expect(j).To(Equal([]engine.JournalEntry{{Seq: 1, Op: engine.OpMove, Message: id, Dest: "Archive", UIDNext: 5, UIDValidity: 3}}))
			return nil
		})).To(Succeed())
	})

	It("keeps every field of a message record", func() {
		var want engine.MessageRecord
		Expect(s.Update(func(tx engine.Tx) error {
			id, err := tx.NextID()
			if err != nil {
				return err
			}
			want = engine.MessageRecord{ID: id, Mailbox: "INBOX", MoveTo: "Archive", UID: 42,
				State: engine.MsgQuarantined, Size: 1234, InternalDate: 1700000000,
				Hash: [32]byte{1, 2, 3, 31: 9}, MessageID: "m1.run@x", Label: "m1",
				Flags: engine.ParseFlags([]string{`\Seen`, "$Work"}), Base: engine.ParseFlags([]string{`\Draft`}), EverUID: true}
			return tx.PutMessage(want)
		})).To(Succeed())
		Expect(s.Close()).To(Succeed())
		Expect(openDisk(dir).View(func(tx engine.Tx) error {
			got, ok, err := tx.Message(want.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(BeTrue())
			Expect(got).To(Equal(want))
			return nil
		})).To(Succeed())
	})

	It("knows every field of a message record (a new field needs a line in its encoding)", func() {
		Expect(reflect.TypeOf(engine.MessageRecord{}).NumField()).To(Equal(13))
		Expect(reflect.TypeOf(engine.Flags{}).NumField()).To(Equal(2))
	})

	It("keeps each body in a Maildir file in cur whose :2, suffix follows the message's flags", func() {
		id := addMessage(s, "INBOX", "body", `\Seen`, `\Flagged`, "$Work")
		Expect(flagSuffixes(dir)).To(Equal([]string{"2,FS"}), "keywords stay out of the name")
		Expect(bodyFiles(dir, "new")).To(BeEmpty())
		Expect(bodyFiles(dir, "tmp")).To(BeEmpty())

		setFlags(s, id, `\Answered`, `\Deleted`, `\Draft`, "$Forwarded")
		Expect(flagSuffixes(dir)).To(Equal([]string{"2,DPRT"}))
		setFlags(s, id)
		Expect(flagSuffixes(dir)).To(Equal([]string{"2,"}))

		files := bodyFiles(dir, "cur")
		content, err := os.ReadFile(filepath.Join(dir, "Maildir", "cur", files[0]))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(content)).To(Equal("body"))
	})

	It("writes a body file before the transaction that references it commits", func() {
		Expect(s.Update(func(tx engine.Tx) error {
			id, err := tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: "INBOX"}); err != nil {
				return err
			}
			if err := tx.PutBody(id, []byte("early")); err != nil {
				return err
			}
			Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
			Expect(bodyFiles(dir, "tmp")).To(BeEmpty())
			return nil
		})).To(Succeed())
	})

	It("removes the body files of an update that fails", func() {
		boom := errors.New("boom")
		Expect(s.Update(func(tx engine.Tx) error {
			id, err := tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutBody(id, []byte("never committed")); err != nil {
				return err
			}
			return boom
		})).To(MatchError(boom))
		Expect(bodyFiles(dir, "cur")).To(BeEmpty())
	})

	It("removes a deleted message's body file only once the deletion committed", func() {
		id := addMessage(s, "INBOX", "keep me until committed")
		boom := errors.New("boom")
		Expect(s.Update(func(tx engine.Tx) error {
			Expect(tx.DeleteMessage(id)).To(Succeed())
			return boom
		})).To(MatchError(boom))
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
		Expect(s.View(func(tx engine.Tx) error {
			Expect(tx.Body(id)).To(Equal([]byte("keep me until committed")))
			return nil
		})).To(Succeed())

		Expect(s.Update(func(tx engine.Tx) error { return tx.DeleteMessage(id) })).To(Succeed())
		Expect(bodyFiles(dir, "cur")).To(BeEmpty())
	})

	It("replaces a body and removes the old file after the commit", func() {
		id := addMessage(s, "INBOX", "first")
		Expect(s.Update(func(tx engine.Tx) error { return tx.PutBody(id, []byte("second")) })).To(Succeed())
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
		Expect(s.View(func(tx engine.Tx) error {
			Expect(tx.Body(id)).To(Equal([]byte("second")))
			return nil
		})).To(Succeed())
	})

	It("removes, on open, the body files that a crash left without a committed record", func() {
		kept := addMessage(s, "INBOX", "committed", `\Seen`)
		var after engine.Store
		err := s.Update(func(tx engine.Tx) error {
			id, err := tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: "INBOX"}); err != nil {
				return err
			}
			if err := tx.PutBody(id, []byte("lost in the crash")); err != nil {
				return err
			}
			Expect(bodyFiles(dir, "cur")).To(HaveLen(2))
			after, err = s.Reopen()
			return err
		})
		Expect(err).To(MatchError(engine.ErrCrashed))
		DeferCleanup(after.Close)
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
		Expect(after.View(func(tx engine.Tx) error {
			all, err := tx.AllMessages()
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(HaveLen(1))
			Expect(tx.Body(kept)).To(Equal([]byte("committed")))
			return nil
		})).To(Succeed())
	})

	It("takes a body before the transaction that gives it to a message, and names it with the message's flags", func() {
		staged, err := s.StageBody([]byte("staged"))
		Expect(err).NotTo(HaveOccurred())
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1), "written at once, outside any transaction")
		dropped, err := s.StageBody([]byte("dropped"))
		Expect(err).NotTo(HaveOccurred())
		var id engine.LocalID
		Expect(s.Update(func(tx engine.Tx) error {
			id, err = tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: "INBOX", Flags: engine.ParseFlags([]string{`\Seen`})}); err != nil {
				return err
			}
			return tx.(engine.StagedPutter).PutStagedBody(id, staged)
		})).To(Succeed())
		s.DropStaged(dropped)
		Expect(flagSuffixes(dir)).To(Equal([]string{"2,S"}))
		Expect(s.View(func(tx engine.Tx) error {
			Expect(tx.Body(id)).To(Equal([]byte("staged")))
			return nil
		})).To(Succeed())

		// A staged body whose transaction fails is removed with it; one a crash leaves
		// behind, given to no message, is removed on the next open.
		lost, err := s.StageBody([]byte("lost"))
		Expect(err).NotTo(HaveOccurred())
		boom := errors.New("boom")
		Expect(s.Update(func(tx engine.Tx) error {
			nid, err := tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.(engine.StagedPutter).PutStagedBody(nid, lost); err != nil {
				return err
			}
			return boom
		})).To(MatchError(boom))
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
		_, err = s.StageBody([]byte("orphan"))
		Expect(err).NotTo(HaveOccurred())
		Expect(bodyFiles(dir, "cur")).To(HaveLen(2))
		Expect(s.Crash()).To(Succeed())
		after, err := s.Reopen()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(after.Close)
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
	})

	It("removes, on open, half-written files in tmp and stray files in cur", func() {
		addMessage(s, "INBOX", "committed")
		Expect(s.Crash()).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "Maildir", "tmp", "1.half.written"), []byte("Subj"), 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "Maildir", "cur", "2.deleted.before.crash:2,S"), []byte("x"), 0o600)).To(Succeed())
		openDisk(dir)
		Expect(bodyFiles(dir, "tmp")).To(BeEmpty())
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1))
	})

	It("repairs, on open, a file name a crash left with old flags", func() {
		id := addMessage(s, "INBOX", "x", `\Seen`)
		Expect(s.Crash()).To(Succeed())
		files := bodyFiles(dir, "cur")
		Expect(files).To(HaveLen(1))
		key, _, _ := strings.Cut(files[0], ":")
		Expect(os.Rename(filepath.Join(dir, "Maildir", "cur", files[0]), filepath.Join(dir, "Maildir", "new", key))).To(Succeed())

		s2 := openDisk(dir)
		Expect(bodyFiles(dir, "new")).To(BeEmpty())
		Expect(flagSuffixes(dir)).To(Equal([]string{"2,S"}))
		Expect(s2.View(func(tx engine.Tx) error {
			Expect(tx.Body(id)).To(Equal([]byte("x")))
			return nil
		})).To(Succeed())
	})

	It("opens after a clean close without the recovery pass, and writes nothing for an update that changes nothing", func() {
		addMessage(s, "INBOX", "committed")
		Expect(s.Close()).To(Succeed())
		Expect(filepath.Join(dir, "clean")).To(BeAnExistingFile())
		// A stray file after a clean close is not the store's: an open that trusts the
		// marker does not list the Maildir, so the file stays.
		stray := filepath.Join(dir, "Maildir", "cur", "2.not.ours:2,S")
		Expect(os.WriteFile(stray, []byte("x"), 0o600)).To(Succeed())
		db := filepath.Join(dir, "state.db")
		before, err := os.ReadFile(db)
		Expect(err).NotTo(HaveOccurred())

		s2 := openDisk(dir)
		Expect(stray).To(BeAnExistingFile())
		Expect(s2.Update(func(tx engine.Tx) error {
			_, err := tx.Messages("INBOX")
			return err
		})).To(Succeed())
		Expect(s2.Close()).To(Succeed())
		after, err := os.ReadFile(db)
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(Equal(before), "an open, a view and an empty update wrote to the database")
		Expect(filepath.Join(dir, "clean")).To(BeAnExistingFile())

		// A change takes the marker away before it commits: a crash then leaves no marker,
		// and the next open tidies up.
		s3 := openDisk(dir)
		addMessage(s3, "INBOX", "second")
		Expect(filepath.Join(dir, "clean")).NotTo(BeAnExistingFile())
		Expect(s3.Crash()).To(Succeed())
		openDisk(dir)
		Expect(stray).NotTo(BeAnExistingFile())
		Expect(bodyFiles(dir, "cur")).To(HaveLen(2))
	})

	It("upgrades a store of format 2 (no UID index) on open, indexing every record with a UID", func() {
		a := addMessage(s, "INBOX", "a")
		b := addMessage(s, "Archive", "b")
		Expect(s.Close()).To(Succeed())
		db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(db.Update(func(btx *bolt.Tx) error {
			if err := btx.DeleteBucket([]byte("byuid")); err != nil {
				return err
			}
			return btx.Bucket([]byte("meta")).Put([]byte("format"), binary.BigEndian.AppendUint64(nil, 2))
		})).To(Succeed())
		Expect(db.Close()).To(Succeed())

		s2 := openDisk(dir)
		Expect(s2.View(func(tx engine.Tx) error {
			for mailbox, id := range map[string]engine.LocalID{"INBOX": a, "Archive": b} {
				got, err := tx.MessagesByUID(mailbox, uint32(id))
				Expect(err).NotTo(HaveOccurred())
				Expect(got).To(HaveLen(1), mailbox)
				Expect(got[0].ID).To(Equal(id))
			}
			return nil
		})).To(Succeed())
		Expect(s2.Close()).To(Succeed())
		db, err = bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
		Expect(err).NotTo(HaveOccurred())
		defer db.Close()
		Expect(db.View(func(btx *bolt.Tx) error {
			Expect(btx.Bucket([]byte("meta")).Get([]byte("format"))).To(Equal(binary.BigEndian.AppendUint64(nil, 3)))
			return nil
		})).To(Succeed())
	})

	It("reports a body whose file is gone as missing", func() {
		id := addMessage(s, "INBOX", "x")
		files := bodyFiles(dir, "cur")
		Expect(os.Remove(filepath.Join(dir, "Maildir", "cur", files[0]))).To(Succeed())
		Expect(s.View(func(tx engine.Tx) error {
			_, err := tx.Body(id)
			return err
		})).To(MatchError(engine.ErrNoBody))
	})

	It("lists a mailbox's messages by local id after moves between mailboxes", func() {
		a := addMessage(s, "INBOX", "a")
		b := addMessage(s, "Archive", "b")
		c := addMessage(s, "INBOX", "c")
		Expect(s.Update(func(tx engine.Tx) error {
			m, _, err := tx.Message(b)
			if err != nil {
				return err
			}
			m.Mailbox = "INBOX"
			return tx.PutMessage(m)
		})).To(Succeed())
		Expect(s.View(func(tx engine.Tx) error {
			in, err := tx.Messages("INBOX")
			Expect(err).NotTo(HaveOccurred())
			var ids []engine.LocalID
			for _, m := range in {
				ids = append(ids, m.ID)
			}
			Expect(ids).To(Equal([]engine.LocalID{a, b, c}))
			arch, err := tx.Messages("Archive")
			Expect(err).NotTo(HaveOccurred())
			Expect(arch).To(BeEmpty())
			Expect(tx.Messages("INBOX/Sub")).To(BeEmpty(), "a mailbox whose name extends another's is a different mailbox")
			return nil
		})).To(Succeed())
	})

	It("refuses a message id it did not hand out", func() {
		Expect(s.Update(func(tx engine.Tx) error {
			return tx.PutMessage(engine.MessageRecord{ID: 99, Mailbox: "INBOX"})
		})).To(MatchError(ContainSubstring("unallocated id 99")))
	})

	It("fails every transaction after it is closed or crashed", func() {
		Expect(s.Close()).To(Succeed())
		Expect(s.View(func(engine.Tx) error { return nil })).To(MatchError(engine.ErrClosed))
		Expect(s.Update(func(engine.Tx) error { return nil })).To(MatchError(engine.ErrClosed))

		s2 := openDisk(dir)
		Expect(s2.Crash()).To(Succeed())
		Expect(s2.View(func(engine.Tx) error { return nil })).To(MatchError(engine.ErrCrashed))
	})

	It("ends a view that a crash interrupts", func() {
		err := s.View(func(tx engine.Tx) error {
			Expect(s.Crash()).To(Succeed())
			_, err := tx.Mailboxes()
			return err
		})
		Expect(err).To(MatchError(engine.ErrCrashed))
	})

	It("stays usable after an update's function panics, and keeps nothing of it", func() {
		Expect(func() {
			_ = s.Update(func(tx engine.Tx) error {
				id, err := tx.NextID()
				Expect(err).NotTo(HaveOccurred())
				Expect(tx.PutBody(id, []byte("x"))).To(Succeed())
				panic("engine bug")
			})
		}).To(PanicWith("engine bug"))
		Expect(bodyFiles(dir, "cur")).To(BeEmpty())
		id := addMessage(s, "INBOX", "after")
		Expect(id).To(Equal(engine.LocalID(1)), "the panicked transaction's id was not committed")
	})

	It("refuses a second opener of the same directory instead of waiting for ever", func() {
		_, err := engine.OpenDiskStore(dir)
		Expect(err).To(MatchError(ContainSubstring("state.db")))
	})

	It("keeps no more of its database mapped in memory as it grows by appends", func() {
		if runtime.GOOS != "linux" {
			Skip("reads the mapping's resident size from /proc/self/smaps, which only Linux has")
		}
		// Appends as a first sync makes them: 30,000 records of about 300 bytes, 100 a commit.
		id := engine.LocalID(0)
		for range 300 {
			Expect(s.Update(func(tx engine.Tx) error {
				for range 100 {
					var err error
					if id, err = tx.NextID(); err != nil {
						return err
					}
					m := engine.MessageRecord{ID: id, Mailbox: "INBOX", UID: uint32(id),
						MessageID: fmt.Sprintf("<%0250d@example.org>", id)}
					if err := tx.PutMessage(m); err != nil {
						return err
					}
				}
				return nil
			})).To(Succeed())
		}
		st, err := os.Stat(filepath.Join(dir, "state.db"))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Size()).To(BeNumerically(">", 12<<20))
		// Each commit writes its pages at new places, and the next one reads the last
		// pages through the map: kept, they would add up to most of the file.
		Expect(mappedResident("state.db")).To(BeNumerically("<", 3<<20))
	})

	It("survives a crash from another goroutine while an update runs", func() {
		addMessage(s, "INBOX", "committed")
		started := make(chan struct{})
		release := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			done <- s.Update(func(tx engine.Tx) error {
				if err := tx.PutMailbox(engine.MailboxRecord{Name: "Lost"}); err != nil {
					return err
				}
				close(started)
				<-release
				return tx.PutMailbox(engine.MailboxRecord{Name: "Lost2"})
			})
		}()
		Eventually(started).Should(BeClosed())
		Expect(s.Crash()).To(Succeed())
		close(release)
		Eventually(done).Should(Receive(MatchError(engine.ErrCrashed)))

		s2 := openDisk(dir)
		Expect(s2.View(func(tx engine.Tx) error {
			mbs, err := tx.Mailboxes()
			Expect(err).NotTo(HaveOccurred())
			Expect(mbs).To(BeEmpty())
			all, err := tx.AllMessages()
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(HaveLen(1))
			return nil
		})).To(Succeed())
	})
})

// commitFailer is a disk store whose commits fail once INBOX would hold more than max
// records.
type commitFailer struct {
	*engine.DiskStore
	max int
}

var errInjected = errors.New("injected commit failure")

func (s *commitFailer) Update(fn func(engine.Tx) error) error {
	return s.DiskStore.Update(func(tx engine.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		c, err := tx.Counts("INBOX")
		if err == nil && c.Records > s.max {
			err = errInjected
		}
		return err
	})
}

var _ = Describe("An engine on the disk store", func() {
	// newDiskPhone returns a world with a phone on a disk store (behind a cutter) and a
	// laptop on a memory store, synced, and an offline journal on the phone that mixes
	// appends, a move, flag changes, a delete, a copy and a mailbox creation.
	newDiskPhone := func() (*world, *cutter, *engine.Device, *engine.Device, string) {
		w := newWorld(fakeserver.Options{Seed: 1})
		w.create("Archive")
		w.deliver("INBOX", "m1", "m2", "m3", "m4")
		cut := newCutter(w.addr)
		dir := GinkgoT().TempDir()
		store, err := engine.OpenDiskStore(dir)
		Expect(err).NotTo(HaveOccurred())
		opts := w.options(store, 0)
		opts.Dial = cut.dial
		phone, err := engine.NewDevice("phone", opts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(phone.Close)
		laptop := w.device("laptop")
		settle(phone, laptop)

		do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1"), Flags: []string{`\Seen`}})
		do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Flagged`})
		do(phone, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m3"}})
		do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "Archive", Labels: []string{"m1"}})
		do(phone, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Projects"})
		do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "Projects", Message: msg("d2")})
		do(phone, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m4"}, Dest: "Projects"})
		w.deliver("INBOX", "n1", "n2")
		return w, cut, phone, laptop, dir
	}
	want := []string{
		`Archive: m1[\Seen]`,
		`INBOX: d1[\Seen] m2[\Flagged] m4 n1 n2`,
		"Projects: d2 m4",
	}

	It("stops a first sync at a failed commit, keeping the batches committed before it and no other file", func() {
		w := newWorld(fakeserver.Options{Seed: 1})
		labels := make([]string, 1000)
		for i := range labels {
			labels[i] = fmt.Sprintf("m%d", i+1)
		}
		w.deliver("INBOX", labels...)
		dir := GinkgoT().TempDir()
		disk, err := engine.OpenDiskStore(dir)
		Expect(err).NotTo(HaveOccurred())
		failing := &commitFailer{DiskStore: disk, max: 250}
		phone, err := engine.NewDevice("phone", w.options(failing, 0))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(phone.Close)

		st, err := phone.Sync(context.Background())
		Expect(err).To(MatchError(errInjected))
		// Batches of 100 are committed while the next ones arrive: the two before the
		// failure stay, and the download stops within the two batches under way then
		// (one handed over, one arriving).
		Expect(st.Downloaded).To(BeNumerically("<=", 500), "the download went on after the failed commit")
		Expect(bodyFiles(dir, "cur")).To(HaveLen(200))
		Expect(bodyFiles(dir, "tmp")).To(BeEmpty())
		rep, err := phone.View(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Mailboxes).To(ContainElement(And(HaveField("Name", "INBOX"), HaveField("Messages", HaveLen(200)))))

		failing.max = len(labels)
		st = syncOK(phone)
		Expect(st.Downloaded).To(Equal(800))
		Expect(bodyFiles(dir, "cur")).To(HaveLen(1000))
	})

	It("syncs an offline journal and keeps one body file per message, named with its flags", func() {
		w, cut, phone, laptop, dir := newDiskPhone()
		cut.arm(0)
		syncOK(phone)
		w.expectConverged(want, phone, laptop)
		// Eight messages are visible; each has exactly one body file, and the flag
		// letters of the files are those of the visible messages.
		Expect(flagSuffixes(dir)).To(ConsistOf("2,", "2,", "2,", "2,", "2,", "2,F", "2,S", "2,S"))
		Expect(bodyFiles(dir, "tmp")).To(BeEmpty())
		Expect(bodyFiles(dir, "new")).To(BeEmpty())
	})

	It("loses and duplicates nothing when the phone crashes after any command of the round", func() {
		_, clean, phone, _, _ := newDiskPhone()
		clean.arm(0)
		syncOK(phone)
		total := clean.commands()
		Expect(total).To(BeNumerically(">", 10))
		for n := 1; n <= total; n++ {
			By(fmt.Sprintf("crashing after command %d of %d", n, total))
			w, cut, phone, laptop, dir := newDiskPhone()
			cut.arm(n)
			_, err := phone.Sync(context.Background())
			Expect(err).To(HaveOccurred(), "the round survived a cut after command %d", n)
			Expect(phone.Crash()).To(Succeed())
			cut.arm(0)
			w.expectConverged(want, phone, laptop)
			Expect(flagSuffixes(dir)).To(HaveLen(8), "one body file per message after crash %d", n)
		}
	})
})

// BenchmarkDiskStoreAddMessage measures one committed Update that stores a message record
// and a 10 KB body (fsynced body file and bbolt commit).
func BenchmarkDiskStoreAddMessage(b *testing.B) {
	s, err := engine.OpenDiskStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := bytes.Repeat([]byte("x"), 10<<10)
	for b.Loop() {
		err := s.Update(func(tx engine.Tx) error {
			id, err := tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: "INBOX", UID: uint32(id), Flags: engine.ParseFlags([]string{`\Seen`})}); err != nil {
				return err
			}
			return tx.PutBody(id, body)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskStoreMessages measures reading every record of a 10,000-message mailbox.
func BenchmarkDiskStoreMessages(b *testing.B) {
	s, err := engine.OpenDiskStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	err = s.Update(func(tx engine.Tx) error {
		for i := 0; i < 10000; i++ {
			id, err := tx.NextID()
			if err != nil {
				return err
			}
			if err := tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: "INBOX", UID: uint32(id), Label: fmt.Sprint("m", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		err := s.View(func(tx engine.Tx) error {
			msgs, err := tx.Messages("INBOX")
			if err == nil && len(msgs) != 10000 {
				err = fmt.Errorf("read %d messages", len(msgs))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskStoreInitialSync measures an engine's first sync of 1,000 messages of about
// 10 KB from the fake server into a disk store (bodies fsynced, records in bbolt).
func BenchmarkDiskStoreInitialSync(b *testing.B) {
	const n = 1000
	srv := fakeserver.New(fakeserver.Options{Seed: 1})
	defer srv.Close()
	if err := srv.AddUser(user, password); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		body := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprint("m", i), Run: run, Size: 10 << 10, Seed: int64(i)})
		if err := srv.Apply(fakeserver.Deliver{User: user, Mailbox: "INBOX", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		store, err := engine.OpenDiskStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		dev, err := engine.NewDevice("bench", engine.Options{
			Dial: func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr.String())
			},
			Username: user, Password: password, Store: store,
		})
		if err != nil {
			b.Fatal(err)
		}
		st, err := dev.Sync(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Downloaded != n {
			b.Fatalf("downloaded %d of %d", st.Downloaded, n)
		}
		if err := dev.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
