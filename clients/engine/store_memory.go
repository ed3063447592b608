package engine

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"sort"
	"sync"
)

// MemoryStore is a Store in memory. Its transactions behave like a durable store's: an
// Update's writes become visible all at once at its commit, and Crash discards every
// transaction not committed yet while keeping everything committed, as a process crash
// followed by a restart would with a disk store. Bodies live apart from the message
// records, so the records stay small.
type MemoryStore struct {
	writer sync.Mutex   // one Update at a time
	mu     sync.RWMutex // guards the committed state below and epoch
	epoch  uint64       // bumped by Crash; an Update begun before fails to commit
	closed bool

	mailboxes map[string]MailboxRecord
	messages  map[LocalID]*MessageRecord
	byMailbox map[string]map[LocalID]struct{}
	byUID     uidIndex // records with a UID, by mailbox and UID
	bodies    map[LocalID][]byte
	journal   map[uint64]JournalEntry
	nextID    LocalID
	nextSeq   uint64

	// sorted holds each mailbox's committed records in ID order, as Messages returns
	// them, made on first use (a round reads every mailbox's records: sorting 50,000 IDs
	// each time was most of its cost); a commit that touches a mailbox drops its entry.
	sortedMu sync.Mutex
	sorted   map[string][]*MessageRecord
}

var _ Store = (*MemoryStore)(nil)

// uidSlot is where a UID belongs: a mailbox and the UID.
type uidSlot struct {
	mailbox string
	uid     uint32
}

// indexAdd adds id to the set at k of idx.
func indexAdd[K comparable](idx map[K]map[LocalID]struct{}, k K, id LocalID) {
	set := idx[k]
	if set == nil {
		set = map[LocalID]struct{}{}
		idx[k] = set
	}
	set[id] = struct{}{}
}

// indexRemove removes id from the set at k of idx, and the set once empty.
func indexRemove[K comparable](idx map[K]map[LocalID]struct{}, k K, id LocalID) {
	if set := idx[k]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(idx, k)
		}
	}
}

// idSet is the set of records at one UID slot: almost always one, so it holds one without
// a map (a map per message cost the replica some 170 bytes a message).
type idSet struct {
	one  LocalID // 0: none
	more map[LocalID]struct{}
}

func (s idSet) has(id LocalID) bool {
	if id == s.one && id != 0 {
		return true
	}
	_, ok := s.more[id]
	return ok
}

func (s idSet) all() iter.Seq[LocalID] {
	return func(yield func(LocalID) bool) {
		if s.one != 0 && !yield(s.one) {
			return
		}
		for id := range s.more {
			if !yield(id) {
				return
			}
		}
	}
}

// uidIndex finds records by mailbox and UID.
type uidIndex map[uidSlot]idSet

func (x uidIndex) add(k uidSlot, id LocalID) {
	s := x[k]
	switch {
	case s.has(id):
		return
	case s.one == 0:
		s.one = id
	default:
		if s.more == nil {
			s.more = map[LocalID]struct{}{}
		}
		s.more[id] = struct{}{}
	}
	x[k] = s
}

func (x uidIndex) remove(k uidSlot, id LocalID) {
	s, ok := x[k]
	if !ok {
		return
	}
	if s.one == id {
		s.one = 0
	} else {
		delete(s.more, id)
	}
	if s.one == 0 && len(s.more) == 0 {
		delete(x, k)
		return
	}
	x[k] = s
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		mailboxes: map[string]MailboxRecord{},
		messages:  map[LocalID]*MessageRecord{},
		byMailbox: map[string]map[LocalID]struct{}{},
		byUID:     uidIndex{},
		bodies:    map[LocalID][]byte{},
		journal:   map[uint64]JournalEntry{},
		nextID:    1,
		nextSeq:   1,
	}
}

// Crash simulates a process crash: every Update in progress fails with ErrCrashed and
// leaves nothing behind; committed state stays. The store is usable again at once (as after
// a restart), and also reopens if it was closed.
func (s *MemoryStore) Crash() {
	s.mu.Lock()
	s.epoch++
	s.closed = false
	s.mu.Unlock()
}

// Close marks the store closed: further transactions fail with ErrClosed until Crash
// reopens it. The committed state is kept.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// View runs fn on the committed state.
func (s *MemoryStore) View(fn func(Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return fn(&memTx{s: s})
}

// Update runs fn in a transaction and commits its writes if fn returns nil and the store
// did not crash meanwhile.
func (s *MemoryStore) Update(fn func(Tx) error) error {
	s.writer.Lock()
	defer s.writer.Unlock()
	s.mu.RLock()
	epoch, closed := s.epoch, s.closed
	nextID, nextSeq := s.nextID, s.nextSeq
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	tx := &memTx{s: s, writable: true, nextID: nextID, nextSeq: nextSeq,
		mailboxes: map[string]*MailboxRecord{}, messages: map[LocalID]*MessageRecord{},
		bodies: map[LocalID][]byte{}, journal: map[uint64]*JournalEntry{}}
	// Only this goroutine (holding writer) changes the committed state, so the transaction
	// reads it without s.mu; Crash and Close only touch epoch and closed.
	if err := fn(tx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return ErrCrashed
	}
	if s.closed {
		return ErrClosed
	}
	tx.commit()
	return nil
}

// memTx is a transaction: reads see the committed state overlaid with the transaction's own
// writes (nil values in the overlay maps are deletions).
type memTx struct {
	s        *MemoryStore
	writable bool
	nextID   LocalID
	nextSeq  uint64

	mailboxes map[string]*MailboxRecord
	messages  map[LocalID]*MessageRecord
	bodies    map[LocalID][]byte // nil value: deleted
	journal   map[uint64]*JournalEntry
}

func (t *memTx) commit() {
	s := t.s
	for name, m := range t.mailboxes {
		if m == nil {
			delete(s.mailboxes, name)
		} else {
			s.mailboxes[name] = *m
		}
	}
	s.sortedMu.Lock()
	defer s.sortedMu.Unlock()
	for id, m := range t.messages {
		if old, ok := s.messages[id]; ok {
			delete(s.sorted, old.Mailbox)
			indexRemove(s.byMailbox, old.Mailbox, id)
			if old.UID != 0 {
				s.byUID.remove(uidSlot{old.Mailbox, old.UID}, id)
			}
		}
		if m == nil {
			delete(s.messages, id)
			continue
		}
		s.messages[id] = m
		delete(s.sorted, m.Mailbox)
		indexAdd(s.byMailbox, m.Mailbox, id)
		if m.UID != 0 {
			s.byUID.add(uidSlot{m.Mailbox, m.UID}, id)
		}
	}
	for id, b := range t.bodies {
		if b == nil {
			delete(s.bodies, id)
		} else {
			s.bodies[id] = b
		}
	}
	for seq, e := range t.journal {
		if e == nil {
			delete(s.journal, seq)
		} else {
			s.journal[seq] = *e
		}
	}
	s.nextID, s.nextSeq = t.nextID, t.nextSeq
}

func (t *memTx) check() error {
	if !t.writable {
		return ErrReadOnly
	}
	return nil
}

func (t *memTx) Mailboxes() ([]MailboxRecord, error) {
	var out []MailboxRecord
	for name, m := range t.s.mailboxes {
		if o, ok := t.mailboxes[name]; ok && o == nil {
			continue
		} else if ok {
			m = *o
		}
		out = append(out, m)
	}
	for name, m := range t.mailboxes {
		if _, ok := t.s.mailboxes[name]; !ok && m != nil {
			out = append(out, *m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (t *memTx) Mailbox(name string) (MailboxRecord, bool, error) {
	if m, ok := t.mailboxes[name]; ok {
		if m == nil {
			return MailboxRecord{}, false, nil
		}
		return *m, true, nil
	}
	m, ok := t.s.mailboxes[name]
	return m, ok, nil
}

func (t *memTx) PutMailbox(m MailboxRecord) error {
	if err := t.check(); err != nil {
		return err
	}
	if m.Name == "" {
		return fmt.Errorf("engine: store: put mailbox with empty name")
	}
	t.mailboxes[m.Name] = &m
	return nil
}

func (t *memTx) DeleteMailbox(name string) error {
	if err := t.check(); err != nil {
		return err
	}
	t.mailboxes[name] = nil
	return nil
}

func (t *memTx) NextID() (LocalID, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	id := t.nextID
	t.nextID++
	return id, nil
}

func (t *memTx) Message(id LocalID) (MessageRecord, bool, error) {
	if m, ok := t.messages[id]; ok {
		if m == nil {
			return MessageRecord{}, false, nil
		}
		return *m, true, nil
	}
	if m, ok := t.s.messages[id]; ok {
		return *m, true, nil
	}
	return MessageRecord{}, false, nil
}

func (t *memTx) Messages(mailbox string) ([]MessageRecord, error) {
	committed := t.s.sortedRecords(mailbox)
	if len(t.messages) == 0 {
		out := make([]MessageRecord, len(committed))
		for i, m := range committed {
			out[i] = *m
		}
		return out, nil
	}
	// The transaction's own changes over the committed records.
	var out []MessageRecord
	for _, m := range committed {
		if o, ok := t.messages[m.ID]; ok && (o == nil || o.Mailbox != mailbox) {
			continue
		} else if ok {
			m = o
		}
		out = append(out, *m)
	}
	for _, m := range t.messages {
		if m == nil || m.Mailbox != mailbox {
			continue
		}
		if old, ok := t.s.messages[m.ID]; !ok || old.Mailbox != mailbox {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b MessageRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// sortedRecords returns the committed records of mailbox in ID order (see sorted).
func (s *MemoryStore) sortedRecords(mailbox string) []*MessageRecord {
	s.sortedMu.Lock()
	defer s.sortedMu.Unlock()
	if recs, ok := s.sorted[mailbox]; ok {
		return recs
	}
	set := s.byMailbox[mailbox]
	recs := make([]*MessageRecord, 0, len(set))
	for id := range set {
		recs = append(recs, s.messages[id])
	}
	slices.SortFunc(recs, func(a, b *MessageRecord) int { return cmp.Compare(a.ID, b.ID) })
	if s.sorted == nil {
		s.sorted = map[string][]*MessageRecord{}
	}
	s.sorted[mailbox] = recs
	return recs
}

func (t *memTx) MessagesByUID(mailbox string, uid uint32) ([]MessageRecord, error) {
	out := []MessageRecord{}
	if uid == 0 {
		return out, nil
	}
	at := func(m *MessageRecord) bool { return m != nil && m.Mailbox == mailbox && m.UID == uid }
	set := t.s.byUID[uidSlot{mailbox, uid}]
	for id := range set.all() {
		if o, ok := t.messages[id]; ok {
			if at(o) {
				out = append(out, *o)
			}
			continue
		}
		out = append(out, *t.s.messages[id])
	}
	for id, m := range t.messages {
		if !set.has(id) && at(m) {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b MessageRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (t *memTx) AllMessages() ([]MessageRecord, error) {
	out := make([]MessageRecord, 0, len(t.s.messages))
	for id, m := range t.s.messages {
		if o, ok := t.messages[id]; ok {
			if o != nil {
				out = append(out, *o)
			}
			continue
		}
		out = append(out, *m)
	}
	for id, m := range t.messages {
		if _, ok := t.s.messages[id]; !ok && m != nil {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b MessageRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// eachMessage calls fn on every record this transaction sees, in no order.
func (t *memTx) eachMessage(fn func(m *MessageRecord)) {
	for id, m := range t.s.messages {
		if o, ok := t.messages[id]; ok {
			if o != nil {
				fn(o)
			}
			continue
		}
		fn(m)
	}
	for id, m := range t.messages {
		if _, ok := t.s.messages[id]; !ok && m != nil {
			fn(m)
		}
	}
}

// Counts tallies the records as it goes: the memory store has them at hand.
func (t *memTx) Counts(mailbox string) (MessageCounts, error) {
	var c, other MessageCounts
	t.eachMessage(func(m *MessageRecord) {
		m.addCounts(func(name string) *MessageCounts {
			if name == mailbox {
				return &c
			}
			return &other
		}, 1)
	})
	return c, nil
}

func (t *memTx) InUse() ([]string, error) {
	seen := map[string]bool{}
	t.eachMessage(func(m *MessageRecord) {
		seen[m.Mailbox] = true
		if m.MoveTo != "" {
			seen[m.MoveTo] = true
		}
	})
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func (t *memTx) PutMessage(m MessageRecord) error {
	if err := t.check(); err != nil {
		return err
	}
	if m.ID == 0 || m.ID >= t.nextID {
		return fmt.Errorf("engine: store: put message with unallocated id %d", m.ID)
	}
	if m.Mailbox == "" {
		return fmt.Errorf("engine: store: put message %d without mailbox", m.ID)
	}
	t.messages[m.ID] = &m
	return nil
}

func (t *memTx) DeleteMessage(id LocalID) error {
	if err := t.check(); err != nil {
		return err
	}
	t.messages[id] = nil
	t.bodies[id] = nil
	return nil
}

func (t *memTx) PutBody(id LocalID, raw []byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if raw == nil {
		raw = []byte{}
	}
	t.bodies[id] = append([]byte(nil), raw...)
	return nil
}

// stagedBytes is a body staged in memory (the memory store holds everything in memory).
type stagedBytes []byte

func (stagedBytes) staged() {}

// StageBody keeps raw for PutStagedBody (BodyStager).
func (s *MemoryStore) StageBody(raw []byte) (StagedBody, error) { return stagedBytes(raw), nil }

// DropStaged lets a staged body go.
func (s *MemoryStore) DropStaged(StagedBody) {}

// PutStagedBody is PutBody of a staged body (StagedPutter).
func (t *memTx) PutStagedBody(id LocalID, b StagedBody) error {
	raw, ok := b.(stagedBytes)
	if !ok {
		return fmt.Errorf("engine: store: body of message %d was not staged here", id)
	}
	return t.PutBody(id, raw)
}

func (t *memTx) Body(id LocalID) ([]byte, error) {
	if b, ok := t.bodies[id]; ok {
		if b == nil {
			return nil, fmt.Errorf("message %d: %w", id, ErrNoBody)
		}
		return b, nil
	}
	if b, ok := t.s.bodies[id]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("message %d: %w", id, ErrNoBody)
}

func (t *memTx) Journal() ([]JournalEntry, error) {
	var out []JournalEntry
	for seq, e := range t.s.journal {
		if o, ok := t.journal[seq]; ok {
			if o != nil {
				out = append(out, *o)
			}
			continue
		}
		out = append(out, e)
	}
	for seq, e := range t.journal {
		if _, ok := t.s.journal[seq]; !ok && e != nil {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (t *memTx) AddJournal(e JournalEntry) (uint64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	e.Seq = t.nextSeq
	t.nextSeq++
	t.journal[e.Seq] = &e
	return e.Seq, nil
}

func (t *memTx) PutJournal(e JournalEntry) error {
	if err := t.check(); err != nil {
		return err
	}
	if e.Seq == 0 || e.Seq >= t.nextSeq {
		return fmt.Errorf("engine: store: put journal entry with unallocated seq %d", e.Seq)
	}
	t.journal[e.Seq] = &e
	return nil
}

func (t *memTx) DeleteJournal(seq uint64) error {
	if err := t.check(); err != nil {
		return err
	}
	t.journal[seq] = nil
	return nil
}
