package fakeserver

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Delimiter is the hierarchy delimiter of every mailbox name.
const Delimiter = '/'

// systemFlags are the flags whose case is canonicalised (RFC 3501 2.3.2).
var systemFlags = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}

// specialUses are the SPECIAL-USE attributes (RFC 6154) a mailbox may carry.
var specialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

// message is one stored message. body is immutable; flags is replaced, never modified in
// place, so a copy of the slice header may be read without the user's lock.
type message struct {
	uid    uint32
	flags  []string // sorted, canonical
	date   time.Time
	body   []byte
	modseq uint64
}

// mailbox is one mailbox of a user. All fields are guarded by the user's lock.
type mailbox struct {
	name        string
	uidValidity uint32
	uidNext     uint32
	modseq      uint64
	specialUse  []string
	id          string // MAILBOXID (RFC 8474): kept by RENAME, new for a new mailbox
	subscribed  bool
	noSelect    bool
	msgs        []*message // ascending UID
	expunged    []uint32   // UIDs expunged under the current UIDVALIDITY
	sessions    map[*session]struct{}
	nSeen       uint32
	nDeleted    uint32
	size        int64
}

// find returns the index of the message with the given UID.
func (m *mailbox) find(uid uint32) (int, bool) {
	i := sort.Search(len(m.msgs), func(i int) bool { return m.msgs[i].uid >= uid })
	return i, i < len(m.msgs) && m.msgs[i].uid == uid
}

// user is one account. Its lock guards every mailbox and message it owns.
type user struct {
	name     string
	password string

	mu              sync.Mutex
	mailboxes       map[string]*mailbox
	rng             *rand.Rand
	lastUIDValidity uint32
	reuseExpunged   bool
	omitExpunge     bool
	modes           map[string]bool // server modes switched on (mode.go)
	idleEvery       time.Duration   // idle-every: IDLE updates only at multiples of it
	idleEpoch       time.Time       // from when idle-every counts its periods
	lastID          uint64          // MAILBOXIDs handed out
	// ticks counts message changes: the "seconds" of the uidvalidity-clock mode, so that
	// mailboxes made with no message changed in between share a UIDVALIDITY (as mailboxes
	// made within one second do on a server that takes UIDVALIDITY from the clock).
	ticks     uint32
	clockBase uint32 // the clock's UIDVALIDITY at tick 0
}

// canonicalName returns name with INBOX (any case) spelled INBOX and a trailing delimiter
// removed.
func canonicalName(name string) string {
	name = strings.TrimSuffix(name, string(Delimiter))
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX/") {
		return "INBOX" + name[5:]
	}
	return name
}

// canonicalFlag spells system flags in their canonical case; keywords are kept as given.
func canonicalFlag(f string) string {
	if strings.HasPrefix(f, `\`) {
		for _, sf := range systemFlags {
			if strings.EqualFold(sf, f) {
				return sf
			}
		}
	}
	return f
}

// normalizeFlags canonicalises, sorts and deduplicates flags; \Recent is dropped because
// clients cannot set it.
func normalizeFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		f = canonicalFlag(f)
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func hasFlag(flags []string, f string) bool {
	_, ok := slices.BinarySearch(flags, f)
	return ok
}

// newUIDValidity returns a fresh UIDVALIDITY, above every earlier one of this user.
func (u *user) newUIDValidity() uint32 {
	u.lastUIDValidity += 1 + uint32(u.rng.IntN(1000))
	return u.lastUIDValidity
}

// newMailbox creates and registers an empty selectable mailbox. The caller holds u.mu.
func (u *user) newMailbox(name string, specialUse []string) *mailbox {
	uv := u.newUIDValidity()
	if u.mode("uidvalidity-clock") {
		if u.clockBase == 0 {
			u.clockBase = uv
		}
		uv = u.clockBase + u.ticks
	}
	u.lastID++
	m := &mailbox{
		name:        name,
		uidValidity: uv,
		uidNext:     1,
		specialUse:  slices.Clone(specialUse),
		id:          fmt.Sprintf("M%08x", u.lastID),
		sessions:    make(map[*session]struct{}),
	}
	u.mailboxes[name] = m
	return m
}

// countFlags adjusts the mailbox counters for a message's flags; sign is +1 or -1.
func (m *mailbox) countFlags(flags []string, sign int) {
	if hasFlag(flags, `\Seen`) {
		m.nSeen = uint32(int(m.nSeen) + sign)
	}
	if hasFlag(flags, `\Deleted`) {
		m.nDeleted = uint32(int(m.nDeleted) + sign)
	}
}

// nextUID picks the UID of a new message: UIDNEXT, or in the known-bad reuse mode the
// lowest expunged UID that is free.
func (u *user) nextUID(m *mailbox) uint32 {
	if u.reuseExpunged {
		slices.Sort(m.expunged)
		for len(m.expunged) > 0 {
			uid := m.expunged[0]
			m.expunged = m.expunged[1:]
			if _, taken := m.find(uid); !taken {
				return uid
			}
		}
	}
	uid := m.uidNext
	m.uidNext++
	return uid
}

// addMessage stores a new message in m and tells every session that has m selected.
// The caller holds u.mu.
func (u *user) addMessage(m *mailbox, body []byte, flags []string, date time.Time) *message {
	u.ticks++
	m.modseq++
	msg := &message{uid: u.nextUID(m), flags: flags, date: date, body: body, modseq: m.modseq}
	if n := len(m.msgs); n == 0 || m.msgs[n-1].uid < msg.uid {
		m.msgs = append(m.msgs, msg)
	} else {
		i, _ := m.find(msg.uid)
		m.msgs = slices.Insert(m.msgs, i, msg)
	}
	m.countFlags(flags, +1)
	m.size += int64(len(body))
	for s := range m.sessions {
		s.push(update{kind: updateExists, uid: msg.uid})
	}
	return msg
}

// removeMessages expunges the messages at the given ascending indexes and tells the
// sessions that have m selected (all of them, actor included, unless the known-bad mode
// that omits EXPUNGE notifications is on: then only actor). The caller holds u.mu.
func (u *user) removeMessages(m *mailbox, idxs []int, actor *session) []uint32 {
	if len(idxs) == 0 {
		return nil
	}
	u.ticks++
	uids := make([]uint32, 0, len(idxs))
	kept := m.msgs[:0]
	j := 0
	for i, msg := range m.msgs {
		if j < len(idxs) && idxs[j] == i {
			j++
			uids = append(uids, msg.uid)
			m.countFlags(msg.flags, -1)
			m.size -= int64(len(msg.body))
			continue
		}
		kept = append(kept, msg)
	}
	clear(m.msgs[len(kept):])
	m.msgs = kept
	m.modseq++
	m.expunged = append(m.expunged, uids...)
	for s := range m.sessions {
		if u.omitExpunge && s != actor {
			continue
		}
		for _, uid := range uids {
			s.push(update{kind: updateExpunge, uid: uid})
		}
	}
	return uids
}

// setFlags replaces a message's flags and tells every session but actor. It reports
// whether anything changed. The caller holds u.mu.
func (u *user) setFlags(m *mailbox, msg *message, flags []string, actor *session) bool {
	if slices.Equal(msg.flags, flags) {
		return false
	}
	m.countFlags(msg.flags, -1)
	m.countFlags(flags, +1)
	msg.flags = flags
	m.modseq++
	msg.modseq = m.modseq
	for s := range m.sessions {
		if s != actor {
			s.push(update{kind: updateFlags, uid: msg.uid, flags: flags})
		}
	}
	return true
}

// applyStore computes the flags after a STORE operation.
func applyStore(cur []string, op storeOp, flags []string) []string {
	switch op {
	case storeSet:
		return flags
	case storeAdd:
		return normalizeFlags(append(slices.Clone(cur), flags...))
	default:
		out := make([]string, 0, len(cur))
		for _, f := range cur {
			if !hasFlag(flags, f) {
				out = append(out, f)
			}
		}
		return out
	}
}

type storeOp int

const (
	storeSet storeOp = iota
	storeAdd
	storeDel
)

// children returns the names strictly below name, sorted. The caller holds u.mu.
func (u *user) children(name string) []string {
	var out []string
	prefix := name + string(Delimiter)
	for n := range u.mailboxes {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// selectedSessions returns the sessions that have m selected, except actor, and detaches
// them: each is marked gone with reason and will be disconnected by the caller once the
// user's lock is released. The caller holds u.mu.
func (m *mailbox) evictSessions(actor *session, reason string) []*session {
	var out []*session
	for s := range m.sessions {
		if s == actor {
			continue
		}
		delete(m.sessions, s)
		s.markGone(reason)
		out = append(out, s)
	}
	return out
}

// Response codes go-imap does not name.
const (
	codeReadOnly imap.ResponseCode = "READ-ONLY"
	codeUseAttr  imap.ResponseCode = "USEATTR"
)
