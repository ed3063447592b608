package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/syncharness/syncharness/clients/maildir"
)

// DiskStore is a Store on disk: mailboxes, message records and the journal in a bbolt
// database (state.db), message bodies as files of a Maildir (Maildir/cur). Its Updates are
// bbolt transactions, so a crash keeps exactly what was committed.
//
// Bodies are written in the Maildir (tmp, then cur) when PutBody is called and made
// durable (fsync, all of a transaction's at once) before the transaction that references
// them commits; a body file is removed only after the
// transaction that deleted its message committed. A crash can therefore leave only files
// that no committed record references (in tmp or cur), and OpenDiskStore removes those.
//
// The name of each body file carries the message's flags in its ":2," suffix (\Seen → S,
// \Answered → R, \Flagged → F, \Deleted → T, \Draft → D, $Forwarded → P). The names follow
// the records after each commit and are repaired on open; the database stays the truth, and
// keywords are kept only there. All bodies share one Maildir whatever their mailbox, since
// a message's mailbox changes with moves while its body does not.
//
// Opening costs O(mailboxes), not O(messages): Close leaves a marker file (clean) when
// nothing is left to tidy, and an open that finds it skips the recovery pass; the marker
// goes (durably) before the first body file is written or the first change commits. An
// Update that wrote nothing ends without a commit, so a round that changes nothing writes
// and fsyncs nothing. Per mailbox counts of the records (Counts) are kept in the database
// with the records, so that a round learns a mailbox is unchanged without reading them.
type DiskStore struct {
	dir string
	md  *maildir.Dir

	writer sync.Mutex // one Update at a time, so Begin(true) never waits while holding mu

	// mu guards db, the flags and open. Every bbolt call on an open transaction runs
	// under mu, except Commit, so that Crash can roll transactions back between calls.
	mu      sync.Mutex
	db      *bolt.DB
	crashed bool
	closed  bool
	open    map[*diskTx]struct{}

	mirrorMu  sync.Mutex
	mirrorErr error // the first failure to bring a file name in step; reported by Close

	renaming sync.WaitGroup // renames running beside a commit; Crash waits for them
	unmapped int64          // the database's size when its map was last let go (unmapWritten)

	// marked is set while the clean marker exists; leftovers once a file could not be
	// removed. markMu guards both: bodies are staged while an Update commits.
	markMu    sync.Mutex
	marked    bool
	leftovers bool
}

var (
	_ Store           = (*DiskStore)(nil)
	_ ReopenableStore = (*DiskStore)(nil)
)

// Bucket names and meta keys.
var (
	bucketMeta      = []byte("meta")
	bucketMailboxes = []byte("mailboxes") // name → JSON MailboxRecord
	bucketMessages  = []byte("messages")  // be64(id) → JSON MessageRecord
	bucketByMailbox = []byte("bymailbox") // mailbox NUL be64(id) → ""
	bucketBodies    = []byte("bodies")    // be64(id) → Maildir key
	bucketJournal   = []byte("journal")   // be64(seq) → JSON JournalEntry
	bucketCounts    = []byte("counts")    // mailbox → MessageCounts as four uvarints
	bucketByUID     = []byte("byuid")     // mailbox NUL be32(uid) be64(id) → "", for UID != 0

	keyNextID  = []byte("next-id")
	keyNextSeq = []byte("next-seq")
	keyFormat  = []byte("format")
)

// diskFormat is the version of the on-disk layout. Format 1 had no counts, format 2 no
// UID index; opening either adds what it lacks.
const diskFormat = 3

// cleanMarker is the file whose presence says the last Close left nothing to tidy.
const cleanMarker = "clean"

// OpenDiskStore opens the store in dir, creating it if needed. It removes what a crash
// may have left behind (body files no committed record references, files in the
// Maildir's tmp) and brings every body file's flag letters in step with its record.
//
// A store is used by one process at a time: a second open of the same dir fails after a
// second instead of waiting.
func OpenDiskStore(dir string) (*DiskStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: disk store: %w", err)
	}
	md, err := maildir.Open(filepath.Join(dir, "Maildir"), maildir.Options{Hostname: "syncharness", NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("engine: disk store: %w", err)
	}
	dbPath := filepath.Join(dir, "state.db")
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("engine: disk store: open %q: %w", dbPath, err)
	}
	s := &DiskStore{dir: dir, md: md, db: db, open: map[*diskTx]struct{}{}}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarker)); err == nil {
		s.marked = true
		return s, nil
	}
	if err := s.recover(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// unmark removes the clean marker, durably, before anything a crash could leave behind is
// written.
func (s *DiskStore) unmark() error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if !s.marked {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, cleanMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("engine: disk store: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("engine: disk store: %w", err)
	}
	s.marked = false
	return nil
}

// isMarked reports whether the clean marker is there.
func (s *DiskStore) isMarked() bool {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	return s.marked
}

// leftBehind notes a file that could not be removed: the next open removes it.
func (s *DiskStore) leftBehind() {
	s.markMu.Lock()
	s.leftovers = true
	s.markMu.Unlock()
}

// mark leaves the clean marker for the next open. Called with writer held, after the
// database is closed.
func (s *DiskStore) mark() error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if s.marked || s.leftovers {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(s.dir, cleanMarker), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

var diskBuckets = [][]byte{bucketMeta, bucketMailboxes, bucketMessages, bucketByMailbox, bucketBodies, bucketJournal, bucketCounts, bucketByUID}

// init creates the buckets and checks the format. A store already set up is only read.
func (s *DiskStore) init() error {
	ready := false
	err := s.db.View(func(btx *bolt.Tx) error {
		for _, b := range diskBuckets {
			if btx.Bucket(b) == nil {
				return nil
			}
		}
		if got := decodeU64(btx.Bucket(bucketMeta).Get(keyFormat)); got != diskFormat {
			return fmt.Errorf("format %d, this version reads format %d", got, diskFormat)
		}
		ready = true
		return nil
	})
	if err != nil || ready {
		if err != nil {
			return fmt.Errorf("engine: disk store %q: init: %w", s.dir, err)
		}
		return nil
	}
	err = s.db.Update(func(btx *bolt.Tx) error {
		for _, b := range diskBuckets {
			if _, err := btx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := btx.Bucket(bucketMeta)
		if v := meta.Get(keyFormat); v != nil {
			switch got := decodeU64(v); got {
			case diskFormat:
				return nil
			case 1, 2:
				if got == 1 {
					if err := rebuildCounts(btx); err != nil {
						return err
					}
				}
				if err := rebuildUIDIndex(btx); err != nil {
					return err
				}
				return meta.Put(keyFormat, be64(diskFormat))
			default:
				return fmt.Errorf("format %d, this version reads format %d", got, diskFormat)
			}
		}
		if err := meta.Put(keyFormat, be64(diskFormat)); err != nil {
			return err
		}
		if err := meta.Put(keyNextID, be64(1)); err != nil {
			return err
		}
		return meta.Put(keyNextSeq, be64(1))
	})
	if err != nil {
		return fmt.Errorf("engine: disk store %q: init: %w", s.dir, err)
	}
	return nil
}

// rebuildCounts computes every mailbox's counts from the message records.
func rebuildCounts(btx *bolt.Tx) error {
	counts := map[string]*MessageCounts{}
	get := func(name string) *MessageCounts {
		c := counts[name]
		if c == nil {
			c = &MessageCounts{}
			counts[name] = c
		}
		return c
	}
	err := btx.Bucket(bucketMessages).ForEach(func(_, v []byte) error {
		m, err := decodeMessage(v)
		if err != nil {
			return err
		}
		m.addCounts(get, 1)
		return nil
	})
	if err != nil {
		return err
	}
	b := btx.Bucket(bucketCounts)
	for name, c := range counts {
		if err := b.Put([]byte(name), encodeCounts(*c)); err != nil {
			return err
		}
	}
	return nil
}

// rebuildUIDIndex indexes every message record that has a UID.
func rebuildUIDIndex(btx *bolt.Tx) error {
	idx := btx.Bucket(bucketByUID)
	return btx.Bucket(bucketMessages).ForEach(func(_, v []byte) error {
		m, err := decodeMessage(v)
		if err != nil || m.UID == 0 {
			return err
		}
		return idx.Put(uidKey(m.Mailbox, m.UID, m.ID), nil)
	})
}

func encodeCounts(c MessageCounts) []byte {
	b := binary.AppendUvarint(nil, uint64(c.Records))
	b = binary.AppendUvarint(b, uint64(c.OnServer))
	b = binary.AppendUvarint(b, uint64(c.Quarantined))
	return binary.AppendUvarint(b, uint64(c.MovesIn))
}

func decodeCounts(v []byte) (MessageCounts, error) {
	r := recordReader{b: v}
	c := MessageCounts{Records: int(r.uvarint()), OnServer: int(r.uvarint()),
		Quarantined: int(r.uvarint()), MovesIn: int(r.uvarint())}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes left over", len(r.b))
	}
	if r.err != nil {
		return MessageCounts{}, fmt.Errorf("engine: disk store: decode counts: %w", r.err)
	}
	return c, nil
}

// adjustCounts moves the counts from prev's contribution (if had) to m's (if has).
func adjustCounts(btx *bolt.Tx, prev MessageRecord, had bool, m MessageRecord, has bool) error {
	if had && has && prev.countsClass() == m.countsClass() {
		return nil // a flag change: the counts stay, and their page is not copied
	}
	b := btx.Bucket(bucketCounts)
	counts := map[string]*MessageCounts{}
	var ferr error
	get := func(name string) *MessageCounts {
		if c := counts[name]; c != nil {
			return c
		}
		c := &MessageCounts{}
		if v := b.Get([]byte(name)); v != nil {
			var err error
			if *c, err = decodeCounts(v); err != nil && ferr == nil {
				ferr = err
			}
		}
		counts[name] = c
		return c
	}
	if had {
		prev.addCounts(get, -1)
	}
	if has {
		m.addCounts(get, 1)
	}
	if ferr != nil {
		return ferr
	}
	for name, c := range counts {
		if c.Records < 0 || c.OnServer < 0 || c.Quarantined < 0 || c.MovesIn < 0 {
			return fmt.Errorf("engine: disk store: counts of %q went below zero", name)
		}
		var err error
		if c.IsZero() {
			err = b.Delete([]byte(name))
		} else {
			err = b.Put([]byte(name), encodeCounts(*c))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recover removes orphan body files and repairs file names after a crash.
func (s *DiskStore) recover() error {
	if _, err := s.md.CleanTmp(0); err != nil {
		return fmt.Errorf("engine: disk store: %w", err)
	}
	files, err := s.md.List()
	if err != nil {
		return fmt.Errorf("engine: disk store: %w", err)
	}
	want := map[string]maildir.Flags{} // referenced key → flags its name should carry
	err = s.db.View(func(btx *bolt.Tx) error {
		msgs := btx.Bucket(bucketMessages)
		return btx.Bucket(bucketBodies).ForEach(func(k, v []byte) error {
			var flags maildir.Flags
			if raw := msgs.Get(k); raw != nil {
				m, err := decodeMessage(raw)
				if err != nil {
					return err
				}
				flags = nameFlags(m.Flags)
			}
			want[string(v)] = flags
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("engine: disk store %q: recover: %w", s.dir, err)
	}
	for _, f := range files {
		flags, ok := want[f.Key]
		if !ok {
			if err := s.md.Remove(f.Key); err != nil && !errors.Is(err, maildir.ErrNotFound) {
				return fmt.Errorf("engine: disk store: remove orphan body: %w", err)
			}
			continue
		}
		if f.New || f.Flags != flags {
			if _, err := s.md.SetFlags(f.Key, flags); err != nil {
				return fmt.Errorf("engine: disk store: repair body name: %w", err)
			}
		}
	}
	return nil
}

// Dir returns the store's directory.
func (s *DiskStore) Dir() string { return s.dir }

// Maildir returns the Maildir that holds the bodies. Read it, do not change it.
func (s *DiskStore) Maildir() *maildir.Dir { return s.md }

// Crash simulates a process crash: every transaction in progress is rolled back (an Update
// running then returns ErrCrashed, even if it was about to commit; a commit already under
// way finishes, as it would on disk), the database is closed and every later call on s
// fails with ErrCrashed. Nothing is cleaned up: a store reopened on the same directory
// finds what a restarted process would. Crash may be called from inside an Update's or a
// View's function and from any goroutine.
func (s *DiskStore) Crash() error {
	s.mu.Lock()
	if s.crashed || s.closed {
		s.mu.Unlock()
		return nil
	}
	s.crashed = true
	for t := range s.open {
		if t.committing {
			continue
		}
		t.dead = true
		_ = t.btx.Rollback() // the transaction is abandoned either way
		delete(s.open, t)
	}
	db := s.db
	s.mu.Unlock()
	err := db.Close() // waits for a commit under way
	s.renaming.Wait() // and for the renames beside it, as a dead process makes none after
	if err != nil {
		return fmt.Errorf("engine: disk store %q: crash: %w", s.dir, err)
	}
	return nil
}

// Reopen simulates a crash and a restart: it crashes s (see Crash) and opens the store
// again on the same directory, as a restarted process would.
func (s *DiskStore) Reopen() (Store, error) {
	if err := s.Crash(); err != nil {
		return nil, err
	}
	return OpenDiskStore(s.dir)
}

// Close closes the database. It waits for transactions in progress. It returns the first
// error met while keeping file names in step with flags, if any (such names are repaired
// on the next open). Closing a crashed or closed store does nothing.
func (s *DiskStore) Close() error {
	s.mu.Lock()
	if s.crashed || s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	db := s.db
	s.mu.Unlock()
	if err := db.Close(); err != nil {
		return fmt.Errorf("engine: disk store %q: close: %w", s.dir, err)
	}
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	if s.mirrorErr != nil {
		return s.mirrorErr
	}
	s.writer.Lock() // no Update runs: the database is closed
	defer s.writer.Unlock()
	if err := s.mark(); err != nil {
		return fmt.Errorf("engine: disk store %q: close: %w", s.dir, err)
	}
	return nil
}

// begin starts a bbolt transaction and registers it for Crash.
func (s *DiskStore) begin(writable bool) (*diskTx, error) {
	s.mu.Lock()
	if err := s.stateErr(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	db := s.db
	s.mu.Unlock()
	// Not under mu: Begin may wait for a commit that remaps the file.
	btx, err := db.Begin(writable)
	if err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if serr := s.stateErr(); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("engine: disk store: begin: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stateErr(); err != nil {
		_ = btx.Rollback() // never used
		return nil, err
	}
	t := &diskTx{s: s, btx: btx, writable: writable}
	if writable {
		appendOnly(btx)
	}
	s.open[t] = struct{}{}
	return t, nil
}

// appendOnly packs the pages of the buckets whose keys mostly grow (local ids, and UIDs
// within a mailbox) instead of splitting them half full: the file, and the pages a process
// maps while it writes, are about a third smaller. The setting lasts for the transaction.
func appendOnly(btx *bolt.Tx) {
	for _, name := range [][]byte{bucketMessages, bucketByMailbox, bucketBodies, bucketByUID, bucketJournal} {
		if b := btx.Bucket(name); b != nil {
			b.FillPercent = 0.9
		}
	}
}

func (s *DiskStore) stateErr() error {
	if s.crashed {
		return ErrCrashed
	}
	if s.closed {
		return ErrClosed
	}
	return nil
}

// run calls fn on t. If fn panics, t is rolled back (and the body files it wrote are
// removed) before the panic goes on, so that the store stays usable.
func (s *DiskStore) run(t *diskTx, fn func(Tx) error) error {
	panicked := true
	defer func() {
		if !panicked {
			return
		}
		s.mu.Lock()
		if !t.dead {
			t.dead = true
			delete(s.open, t)
			_ = t.btx.Rollback() // abandoned; the panic is what the caller sees
		}
		s.mu.Unlock()
		if t.writable {
			t.removeWritten()
		}
	}()
	err := fn(t)
	panicked = false
	return err
}

// View runs fn in a read-only bbolt transaction.
func (s *DiskStore) View(fn func(Tx) error) error {
	t, err := s.begin(false)
	if err != nil {
		return err
	}
	ferr := s.run(t, fn)
	s.mu.Lock()
	dead := t.dead
	if !dead {
		delete(s.open, t)
		if err := t.btx.Rollback(); err != nil && ferr == nil {
			ferr = fmt.Errorf("engine: disk store: end view: %w", err)
		}
	}
	s.mu.Unlock()
	if dead && ferr == nil {
		return ErrCrashed
	}
	return ferr
}

// Update runs fn in a read-write bbolt transaction and commits it if fn returns nil. Body
// files written by a transaction that does not commit are removed; body files of messages
// it deleted are removed after it committed; file names follow the committed flags.
func (s *DiskStore) Update(fn func(Tx) error) error {
	s.writer.Lock()
	defer s.writer.Unlock()
	t, err := s.begin(true)
	if err != nil {
		return err
	}
	ferr := s.run(t, fn)
	if ferr == nil && len(t.written) > 0 {
		// The bodies are written without fsync; make them durable, all at once, before
		// the commit that references them.
		if err := s.md.Sync(t.written); err != nil {
			ferr = fmt.Errorf("engine: disk store: %w", err)
		}
	}

	s.mu.Lock()
	if t.dead {
		s.mu.Unlock()
		return ErrCrashed // like a real crash, the files it wrote stay until the next open
	}
	var renames map[string]rename
	if ferr == nil {
		renames, ferr = t.wantedNames()
	}
	if ferr == nil && !t.dirty {
		// Nothing to commit: end without writing (a commit fsyncs even when empty).
		delete(s.open, t)
		ferr = t.btx.Rollback()
		s.mu.Unlock()
		if ferr != nil {
			return fmt.Errorf("engine: disk store: end update: %w", ferr)
		}
		return nil
	}
	if ferr == nil && s.isMarked() {
		// Not under mu: unmark fsyncs. Crash may roll t back meanwhile (checked below).
		s.mu.Unlock()
		ferr = s.unmark()
		s.mu.Lock()
		if t.dead {
			s.mu.Unlock()
			return ErrCrashed
		}
	}
	if ferr != nil {
		delete(s.open, t)
		rerr := t.btx.Rollback()
		s.mu.Unlock()
		t.removeWritten()
		if rerr != nil {
			return errors.Join(ferr, fmt.Errorf("engine: disk store: rollback: %w", rerr))
		}
		return ferr
	}
	t.committing = true
	s.mu.Unlock()

	renamed := s.renameFiles(renames)
	size := t.btx.Size()
	cerr := t.btx.Commit()
	applied := <-renamed

	s.mu.Lock()
	delete(s.open, t)
	crashed := s.crashed
	if cerr == nil && !crashed {
		s.unmapWritten(size)
	}
	s.mu.Unlock()
	if cerr != nil {
		s.noteMirror(s.undoRenames(applied.done))
		t.removeWritten()
		return fmt.Errorf("engine: disk store: commit: %w", cerr)
	}
	if crashed {
		return nil // committed; the process "died" right after: the next open tidies up
	}
	s.noteMirror(applied.errs)
	s.removeFiles(t.unlink)
	return nil
}

// unmapWritten lets go of the database's mapped pages once the file has grown by a
// mebibyte since it last did. bbolt writes each commit's pages at new places in the file
// and the next transaction reads the append-mostly buckets' last pages through its map,
// so a first sync kept every page it had written resident: its memory grew with the
// mailbox (7 MB over a first sync of 50,000 messages). The pages stay in the page cache;
// a later read maps them again. Called under s.mu after a commit (and under writer): bbolt
// remaps only while committing and Close unmaps only after taking s.mu, so the range is
// the database's map.
func (s *DiskStore) unmapWritten(size int64) {
	const step = 1 << 20
	if size < s.unmapped+step {
		return
	}
	if err := dropMapped(s.db.Info().Data, size); err == nil {
		s.unmapped = size
	}
}

// renamed is what renameFiles did: the renames made and the ones that failed.
type renamed struct {
	done map[string]rename
	errs []error
}

// renameFiles gives the body files the flag letters of their records, beside the commit
// (1,000 renames take about as long as a commit of 1,000 records). A file name is a
// mirror of its record: a crash on the way leaves the store unmarked, and the next open
// brings every name in step with the committed records (recover); a commit that fails
// has the names put back (undoRenames).
func (s *DiskStore) renameFiles(renames map[string]rename) <-chan renamed {
	out := make(chan renamed, 1)
	if len(renames) == 0 {
		out <- renamed{}
		return out
	}
	s.renaming.Add(1)
	go func() {
		defer s.renaming.Done()
		r := renamed{done: make(map[string]rename, len(renames))}
		for key, rn := range renames {
			if err := s.setFlags(key, rn.was, rn.to); err != nil {
				r.errs = append(r.errs, err)
				continue
			}
			r.done[key] = rn
		}
		out <- r
	}()
	return out
}

// undoRenames puts back the names renameFiles gave for a commit that failed.
func (s *DiskStore) undoRenames(done map[string]rename) []error {
	var errs []error
	for key, rn := range done {
		back := rn.was
		if !back.known {
			continue // the name it had is unknown: the next open repairs it, if need be
		}
		if err := s.setFlags(key, namedAs{flags: rn.to, known: true}, back.flags); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (s *DiskStore) setFlags(key string, was namedAs, to maildir.Flags) error {
	var err error
	if was.known {
		_, err = s.md.SetFlagsFrom(key, was.flags, to)
	} else {
		_, err = s.md.SetFlags(key, to)
	}
	return err
}

// removeFiles removes the body files of messages a committed transaction deleted.
func (s *DiskStore) removeFiles(keys []string) {
	var errs []error
	for _, key := range keys {
		if err := s.md.Remove(key); err != nil && !errors.Is(err, maildir.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	s.noteMirror(errs)
}

// noteMirror keeps the first failure to bring the Maildir in step with the records, for
// Close to report. The files stay stale or misnamed until the next open repairs them.
func (s *DiskStore) noteMirror(errs []error) {
	if len(errs) == 0 {
		return
	}
	s.mirrorMu.Lock()
	if s.mirrorErr == nil {
		s.mirrorErr = fmt.Errorf("engine: disk store: after commit: %w", errors.Join(errs...))
	}
	s.mirrorMu.Unlock()
}

// diskTx is one transaction of a DiskStore.
type diskTx struct {
	s          *DiskStore
	btx        *bolt.Tx
	writable   bool
	dead       bool // rolled back by Crash; guarded by s.mu
	committing bool // guarded by s.mu

	dirty   bool                   // a write method ran: the transaction has something to commit
	written []maildir.Message      // body files this transaction wrote
	unlink  []string               // body files to remove once committed
	touched map[LocalID]nameChange // messages whose file name may need a new flag suffix
	next    uint64                 // the next id to hand out, once read (0: not yet)
	last    lastRead               // the record a writable transaction's Message read last
}

// lastRead is a record as Message decoded it, for PutMessage to find the previous record
// without decoding it again (a round reads a record, then puts it back changed).
type lastRead struct {
	id  LocalID
	raw []byte
	m   MessageRecord
}

// prev decodes v, the stored record of id, or takes it from t.last.
func (t *diskTx) prev(id LocalID, v []byte) (MessageRecord, error) {
	if t.last.id == id && bytes.Equal(t.last.raw, v) {
		return t.last.m, nil
	}
	return decodeMessage(v)
}

// do runs f on the bbolt transaction unless Crash killed it.
func (t *diskTx) do(write bool, f func(*bolt.Tx) error) error {
	if write && !t.writable {
		return ErrReadOnly
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.dead {
		return ErrCrashed
	}
	if write {
		t.dirty = true
	}
	return f(t.btx)
}

// namedAs is what a transaction knows of a body file's name before it touched the
// message: the flags of the committed record, which the name carries unless a crash came
// between a commit and its renames (then the rename finds the file by reading the Maildir).
type namedAs struct {
	flags maildir.Flags
	known bool
}

// nameChange is what a transaction did to a message that may need its file renamed.
type nameChange struct {
	was namedAs       // the file's name before the transaction
	to  maildir.Flags // the flags of the record it put last, if put
	put bool
}

// touch returns what the transaction did to message id so far, noting it on the first
// call; prev is its committed record, when it had one. The caller stores it back.
func (t *diskTx) touch(id LocalID, prev *MessageRecord) nameChange {
	if t.touched == nil {
		t.touched = map[LocalID]nameChange{}
	}
	c, ok := t.touched[id]
	if !ok && prev != nil {
		c.was = namedAs{flags: nameFlags(prev.Flags), known: true}
	}
	t.touched[id] = c
	return c
}

// wroteFile notes that message id's body is a new file, named with flags.
func (t *diskTx) wroteFile(id LocalID, flags maildir.Flags) {
	c := t.touch(id, nil)
	c.was = namedAs{flags: flags, known: true}
	t.touched[id] = c
}

// rename is a body file's name change after a commit.
type rename struct {
	was namedAs
	to  maildir.Flags
}

// wantedNames returns, for every body file whose name this transaction changes, the flags
// its name must carry once committed. Called under s.mu before the commit.
func (t *diskTx) wantedNames() (map[string]rename, error) {
	if len(t.touched) == 0 {
		return nil, nil
	}
	out := make(map[string]rename, len(t.touched))
	bodies := t.btx.Bucket(bucketBodies)
	msgs := t.btx.Bucket(bucketMessages)
	for id, c := range t.touched {
		key := bodies.Get(be64(uint64(id)))
		if key == nil {
			continue
		}
		to := c.to
		if !c.put { // only its body was put
			raw := msgs.Get(be64(uint64(id)))
			if raw == nil {
				continue
			}
			m, err := decodeMessage(raw)
			if err != nil {
				return nil, err
			}
			to = nameFlags(m.Flags)
		}
		if c.was.known && c.was.flags == to {
			continue // named as it must be
		}
		out[string(key)] = rename{was: c.was, to: to}
	}
	return out, nil
}

// stagedFile is a body the disk store wrote before its record's transaction.
type stagedFile struct{ f maildir.Message }

func (stagedFile) staged() {}

// StageBody writes raw into the Maildir now, with no flags, for PutStagedBody to give it
// to a message later (BodyStager). The file is synced with the transaction that puts it.
func (s *DiskStore) StageBody(raw []byte) (StagedBody, error) {
	// Not under writer: a round stages the next bodies while an Update commits.
	if err := s.unmark(); err != nil { // a crash from here on may leave a file for the next open to remove
		return nil, err
	}
	f, err := s.md.Add(bytes.NewReader(raw), 0)
	if err != nil {
		return nil, fmt.Errorf("engine: disk store: stage a body: %w", err)
	}
	return stagedFile{f}, nil
}

func (s *DiskStore) stagesCopies() {}

// DropStaged removes a staged body that no message took.
func (s *DiskStore) DropStaged(b StagedBody) {
	if sf, ok := b.(stagedFile); ok {
		if err := s.md.Discard(sf.f); err != nil {
			s.leftBehind()
		}
	}
}

// PutStagedBody records a staged body as the body of id (StagedPutter); the file is
// synced before the commit and removed if the transaction does not commit.
func (t *diskTx) PutStagedBody(id LocalID, b StagedBody) error {
	if !t.writable {
		return ErrReadOnly
	}
	sf, ok := b.(stagedFile)
	if !ok {
		return fmt.Errorf("engine: disk store: body of message %d was not staged here", id)
	}
	t.written = append(t.written, sf.f)
	err := t.do(true, func(btx *bolt.Tx) error {
		bodies := btx.Bucket(bucketBodies)
		key := be64(uint64(id))
		if old := bodies.Get(key); old != nil {
			t.unlink = append(t.unlink, string(old))
		}
		return bodies.Put(key, []byte(sf.f.Key))
	})
	if err == nil {
		t.wroteFile(id, sf.f.Flags) // named as staged
	}
	return err
}

// removeWritten removes the body files of a transaction that did not commit.
func (t *diskTx) removeWritten() {
	for _, f := range t.written {
		// Best effort: a file left here is an orphan the next open removes.
		if err := t.s.md.Discard(f); err != nil {
			t.s.leftBehind()
		}
	}
}

func (t *diskTx) Mailboxes() ([]MailboxRecord, error) {
	var out []MailboxRecord
	err := t.do(false, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketMailboxes).ForEach(func(_, v []byte) error {
			var m MailboxRecord
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("engine: disk store: decode mailbox: %w", err)
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

func (t *diskTx) Mailbox(name string) (MailboxRecord, bool, error) {
	var m MailboxRecord
	var ok bool
	err := t.do(false, func(btx *bolt.Tx) error {
		v := btx.Bucket(bucketMailboxes).Get([]byte(name))
		if v == nil {
			return nil
		}
		ok = true
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("engine: disk store: decode mailbox %q: %w", name, err)
		}
		return nil
	})
	return m, ok, err
}

func (t *diskTx) PutMailbox(m MailboxRecord) error {
	if m.Name == "" {
		if !t.writable {
			return ErrReadOnly
		}
		return fmt.Errorf("engine: store: put mailbox with empty name")
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("engine: disk store: encode mailbox %q: %w", m.Name, err)
	}
	return t.do(true, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketMailboxes).Put([]byte(m.Name), v)
	})
}

func (t *diskTx) DeleteMailbox(name string) error {
	return t.do(true, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketMailboxes).Delete([]byte(name))
	})
}

func (t *diskTx) NextID() (LocalID, error) {
	var id LocalID
	err := t.do(true, func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		id = LocalID(decodeU64(meta.Get(keyNextID)))
		t.next = uint64(id) + 1
		return meta.Put(keyNextID, be64(t.next))
	})
	return id, err
}

func (t *diskTx) Message(id LocalID) (MessageRecord, bool, error) {
	var m MessageRecord
	var ok bool
	err := t.do(false, func(btx *bolt.Tx) error {
		v := btx.Bucket(bucketMessages).Get(be64(uint64(id)))
		if v == nil {
			return nil
		}
		ok = true
		var err error
		if m, err = decodeMessage(v); err == nil && t.writable {
			t.last = lastRead{id: id, raw: append(t.last.raw[:0], v...), m: m}
		}
		return err
	})
	return m, ok, err
}

func (t *diskTx) Messages(mailbox string) ([]MessageRecord, error) {
	var out []MessageRecord
	err := t.do(false, func(btx *bolt.Tx) error {
		// Sized from the counts: growing the slice record by record cost more than reading.
		if v := btx.Bucket(bucketCounts).Get([]byte(mailbox)); v != nil {
			if c, err := decodeCounts(v); err == nil {
				out = make([]MessageRecord, 0, c.Records)
			}
		}
		var err error
		out, err = indexed(btx, bucketByMailbox, append([]byte(mailbox), 0), "index", mailbox, out)
		return err
	})
	if out == nil && err == nil {
		out = []MessageRecord{}
	}
	return out, err
}

func (t *diskTx) MessagesByUID(mailbox string, uid uint32) ([]MessageRecord, error) {
	out := make([]MessageRecord, 0, 1) // a UID names one record, but for a mailbox's re-match
	if uid == 0 {
		return out, nil
	}
	err := t.do(false, func(btx *bolt.Tx) error {
		prefix := uidKey(mailbox, uid, 0)
		var err error
		out, err = indexed(btx, bucketByUID, prefix[:len(prefix)-8], "UID index", mailbox, out)
		return err
	})
	return out, err
}

// indexed appends to out the records that the index bucket lists under prefix (each key is
// prefix followed by a record id); what and mailbox name the index in errors.
func indexed(btx *bolt.Tx, index, prefix []byte, what, mailbox string, out []MessageRecord) ([]MessageRecord, error) {
	msgs := btx.Bucket(bucketMessages)
	c := btx.Bucket(index).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[len(prefix):]
		v := msgs.Get(id)
		if v == nil {
			return out, fmt.Errorf("engine: disk store: %s of %q names missing message %d", what, mailbox, decodeU64(id))
		}
		m, err := decodeMessage(v)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (t *diskTx) AllMessages() ([]MessageRecord, error) {
	out := []MessageRecord{}
	err := t.do(false, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketMessages).ForEach(func(_, v []byte) error {
			m, err := decodeMessage(v)
			if err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

func (t *diskTx) Counts(mailbox string) (MessageCounts, error) {
	var c MessageCounts
	err := t.do(false, func(btx *bolt.Tx) error {
		v := btx.Bucket(bucketCounts).Get([]byte(mailbox))
		if v == nil {
			return nil
		}
		var err error
		c, err = decodeCounts(v)
		return err
	})
	return c, err
}

func (t *diskTx) InUse() ([]string, error) {
	out := []string{}
	err := t.do(false, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketCounts).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

func (t *diskTx) PutMessage(m MessageRecord) error {
	if !t.writable {
		return ErrReadOnly
	}
	if m.Mailbox == "" {
		return fmt.Errorf("engine: store: put message %d without mailbox", m.ID)
	}
	v := encodeMessage(m)
	var prevRec *MessageRecord
	err := t.do(true, func(btx *bolt.Tx) error {
		if t.next == 0 {
			t.next = decodeU64(btx.Bucket(bucketMeta).Get(keyNextID))
		}
		if m.ID == 0 || uint64(m.ID) >= t.next {
			return fmt.Errorf("engine: store: put message with unallocated id %d", m.ID)
		}
		msgs, idx, byUID := btx.Bucket(bucketMessages), btx.Bucket(bucketByMailbox), btx.Bucket(bucketByUID)
		key := be64(uint64(m.ID))
		var prev MessageRecord
		old := msgs.Get(key)
		if old != nil {
			var err error
			if prev, err = t.prev(m.ID, old); err != nil {
				return err
			}
			prevRec = &prev
			if prev.Mailbox != m.Mailbox {
				if err := idx.Delete(indexKey(prev.Mailbox, m.ID)); err != nil {
					return err
				}
			}
			if prev.UID != 0 && (prev.Mailbox != m.Mailbox || prev.UID != m.UID) {
				if err := byUID.Delete(uidKey(prev.Mailbox, prev.UID, m.ID)); err != nil {
					return err
				}
			}
		}
		if err := adjustCounts(btx, prev, old != nil, m, true); err != nil {
			return err
		}
		// The indexes are written only where they change: a Put dirties its page, and a
		// round that changes 1,000 flags would copy and write three buckets' pages, not one.
		if old == nil || prev.Mailbox != m.Mailbox {
			if err := idx.Put(indexKey(m.Mailbox, m.ID), nil); err != nil {
				return err
			}
		}
		if m.UID != 0 && (old == nil || prev.Mailbox != m.Mailbox || prev.UID != m.UID) {
			if err := byUID.Put(uidKey(m.Mailbox, m.UID, m.ID), nil); err != nil {
				return err
			}
		}
		return msgs.Put(key, v)
	})
	if err == nil {
		c := t.touch(m.ID, prevRec)
		c.to, c.put = nameFlags(m.Flags), true
		t.touched[m.ID] = c
	}
	return err
}

func (t *diskTx) DeleteMessage(id LocalID) error {
	if c, ok := t.touched[id]; ok {
		c.put = false
		t.touched[id] = c
	}
	return t.do(true, func(btx *bolt.Tx) error {
		key := be64(uint64(id))
		msgs := btx.Bucket(bucketMessages)
		if old := msgs.Get(key); old != nil {
			prev, err := decodeMessage(old)
			if err != nil {
				return err
			}
			if err := btx.Bucket(bucketByMailbox).Delete(indexKey(prev.Mailbox, id)); err != nil {
				return err
			}
			if prev.UID != 0 {
				if err := btx.Bucket(bucketByUID).Delete(uidKey(prev.Mailbox, prev.UID, id)); err != nil {
					return err
				}
			}
			if err := adjustCounts(btx, prev, true, MessageRecord{}, false); err != nil {
				return err
			}
			if err := msgs.Delete(key); err != nil {
				return err
			}
		}
		bodies := btx.Bucket(bucketBodies)
		if file := bodies.Get(key); file != nil {
			t.unlink = append(t.unlink, string(file))
			return bodies.Delete(key)
		}
		return nil
	})
}

// PutBody writes the body file into the Maildir at once (tmp then cur; Update fsyncs it
// before the commit) and records it in the transaction; a body it replaces is removed after the commit.
func (t *diskTx) PutBody(id LocalID, raw []byte) error {
	if !t.writable {
		return ErrReadOnly
	}
	var flags maildir.Flags
	if m, ok, err := t.Message(id); err != nil {
		return err
	} else if ok {
		flags = nameFlags(m.Flags)
	}
	// A crash from here on may leave a file behind for the next open to remove.
	if err := t.s.unmark(); err != nil {
		return err
	}
	// The file is written outside the lock: it is the slow part and touches no state.
	t.touch(id, nil)
	f, err := t.s.md.Add(bytes.NewReader(raw), flags)
	if err != nil {
		return fmt.Errorf("engine: disk store: body of message %d: %w", id, err)
	}
	t.written = append(t.written, f)
	err = t.do(true, func(btx *bolt.Tx) error {
		bodies := btx.Bucket(bucketBodies)
		key := be64(uint64(id))
		if old := bodies.Get(key); old != nil {
			t.unlink = append(t.unlink, string(old))
		}
		return bodies.Put(key, []byte(f.Key))
	})
	if err == nil {
		t.wroteFile(id, flags) // a new file, named as written
	}
	return err
}

func (t *diskTx) Body(id LocalID) ([]byte, error) {
	var key string
	err := t.do(false, func(btx *bolt.Tx) error {
		if v := btx.Bucket(bucketBodies).Get(be64(uint64(id))); v != nil {
			key = string(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("message %d: %w", id, ErrNoBody)
	}
	b, err := t.s.md.ReadMessage(key)
	if errors.Is(err, maildir.ErrNotFound) {
		return nil, fmt.Errorf("message %d: body file %s lost: %w", id, key, ErrNoBody)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: disk store: body of message %d: %w", id, err)
	}
	return b, nil
}

func (t *diskTx) Journal() ([]JournalEntry, error) {
	var out []JournalEntry
	err := t.do(false, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketJournal).ForEach(func(_, v []byte) error {
			var e JournalEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("engine: disk store: decode journal entry: %w", err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

func (t *diskTx) AddJournal(e JournalEntry) (uint64, error) {
	err := t.do(true, func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		e.Seq = decodeU64(meta.Get(keyNextSeq))
		if err := meta.Put(keyNextSeq, be64(e.Seq+1)); err != nil {
			return err
		}
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("engine: disk store: encode journal entry: %w", err)
		}
		return btx.Bucket(bucketJournal).Put(be64(e.Seq), v)
	})
	if err != nil {
		return 0, err
	}
	return e.Seq, nil
}

func (t *diskTx) PutJournal(e JournalEntry) error {
	return t.do(true, func(btx *bolt.Tx) error {
		if next := decodeU64(btx.Bucket(bucketMeta).Get(keyNextSeq)); e.Seq == 0 || e.Seq >= next {
			return fmt.Errorf("engine: store: put journal entry with unallocated seq %d", e.Seq)
		}
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("engine: disk store: encode journal entry %d: %w", e.Seq, err)
		}
		return btx.Bucket(bucketJournal).Put(be64(e.Seq), v)
	})
}

func (t *diskTx) DeleteJournal(seq uint64) error {
	return t.do(true, func(btx *bolt.Tx) error {
		return btx.Bucket(bucketJournal).Delete(be64(seq))
	})
}

// nameFlags returns the Maildir flags a body file's name carries for flags.
func nameFlags(f Flags) maildir.Flags {
	std, _ := maildir.FromIMAP(f.Names())
	return std
}

// Message records are stored in a compact binary form (they are read in bulk on every
// sync round; JSON was twenty times slower): a version byte, then the fields in
// declaration order, integers as varints, strings with a varint length. A new field of
// MessageRecord needs a line here and in decodeMessage (a spec counts the fields).
const messageEncoding = 1

func encodeMessage(m MessageRecord) []byte {
	b := make([]byte, 0, 64+len(m.Mailbox)+len(m.MoveTo)+len(m.MessageID)+len(m.Label)+len(m.Flags.Keywords)+len(m.Base.Keywords))
	b = append(b, messageEncoding)
	b = binary.AppendUvarint(b, uint64(m.ID))
	b = appendString(b, m.Mailbox)
	b = appendString(b, m.MoveTo)
	b = binary.AppendUvarint(b, uint64(m.UID))
	b = append(b, byte(m.State))
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendVarint(b, m.InternalDate)
	b = append(b, m.Hash[:]...)
	b = appendString(b, m.MessageID)
	b = appendString(b, m.Label)
	b = append(b, byte(m.Flags.System))
	b = appendString(b, m.Flags.Keywords)
	b = append(b, byte(m.Base.System))
	b = appendString(b, m.Base.Keywords)
	if m.EverUID {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// recordReader decodes the fields of an encoded record; the first error sticks.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated record")
	}
	r.b = nil
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *recordReader) bytes(n int) []byte {
	if len(r.b) < n {
		r.fail()
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *recordReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	return string(r.bytes(int(n)))
}

func decodeMessage(v []byte) (MessageRecord, error) {
	var m MessageRecord
	r := recordReader{b: v}
	if ver := r.byte(); r.err == nil && ver != messageEncoding {
		return m, fmt.Errorf("engine: disk store: decode message: encoding %d unknown", ver)
	}
	m.ID = LocalID(r.uvarint())
	m.Mailbox = r.string()
	m.MoveTo = r.string()
	m.UID = uint32(r.uvarint())
	m.State = MessageState(r.byte())
	m.Size = uint32(r.uvarint())
	m.InternalDate = r.varint()
	copy(m.Hash[:], r.bytes(len(m.Hash)))
	m.MessageID = r.string()
	m.Label = r.string()
	m.Flags.System = SystemFlags(r.byte())
	m.Flags.Keywords = r.string()
	m.Base.System = SystemFlags(r.byte())
	m.Base.Keywords = r.string()
	m.EverUID = r.byte() == 1
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes left over", len(r.b))
	}
	if r.err != nil {
		return MessageRecord{}, fmt.Errorf("engine: disk store: decode message: %w", r.err)
	}
	return m, nil
}

func indexKey(mailbox string, id LocalID) []byte {
	k := make([]byte, 0, len(mailbox)+9)
	k = append(k, mailbox...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(id))
}

func uidKey(mailbox string, uid uint32, id LocalID) []byte {
	k := make([]byte, 0, len(mailbox)+13)
	k = append(k, mailbox...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint32(k, uid)
	return binary.BigEndian.AppendUint64(k, uint64(id))
}

func be64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
