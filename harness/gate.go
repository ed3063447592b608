package harness

import (
	"bytes"
	"context"
	"math/rand"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncharness/syncharness/harness/proxy"
)

// DefaultGateStall is how long a Scheduler waits for a device that is active but neither
// waiting at the gate nor finished before it releases a waiting command anyway.
const DefaultGateStall = 2 * time.Second

// ServerParticipant is the name under which server steps inside a concurrently block take
// their turn at the Scheduler.
const ServerParticipant = "server"

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	// Seed seeds the choice among waiting commands: the same seed gives the same order.
	Seed int64
	// Stall bounds the wait for an active participant that does not reach the gate (it is
	// blocked on something else, or slow); 0 means DefaultGateStall. When it passes, the
	// scheduler releases a waiting command anyway, so nothing deadlocks, and counts a
	// fallback: the run may then not be reproducible.
	Stall time.Duration
}

// A Scheduler is the seeded command gate of deterministic mode. It implements proxy.Gate.
//
// Participants (device names, and ServerParticipant for server steps) become active with
// Enter and inactive with Leave; Switch moves a thread of steps from one participant to the
// next atomically. A command of an inactive participant passes at once. A command of an
// active one waits until every active participant has a command waiting at the gate; then
// the scheduler releases exactly one waiting command, chosen by the seeded random source among
// the waiters sorted by participant and command text, and waits again for every active
// participant. So the commands of a concurrently block reach the server one at a time, in an
// order that depends only on the seed.
//
// A participant whose released command was IDLE stops counting as active until its next
// command reaches the gate (DONE is not a command), so push mode cannot deadlock the gate.
// A participant that stays active without reaching the gate for the Stall duration (blocked
// on a lock another waiter holds, or an engine timeout) makes the scheduler release a
// waiting command anyway (see Fallbacks).
//
// A device in push mode is a watcher (SetWatcher): while it is not quiet (its IDLE
// connection was woken by the server, or it is running the round that follows, or it is
// starting or reconnecting) it counts as active even outside a concurrently block, so its
// rounds interleave with the other participants' commands by seed, not by timing. Whether
// a watcher is quiet is asked again whenever Poke is called and, while commands wait,
// every millisecond: quiet or not is a state, never a deadline, so the order of commands
// does not depend on how fast anything runs.
//
// The scheduler also keeps a logical clock (Now) that advances by one tick per released
// command and per Tick: transcripts and step times of a deterministic run use it instead of
// the wall clock. All methods are safe for concurrent use.
type Scheduler struct {
	stall time.Duration // immutable

	mu        sync.Mutex
	rng       *rand.Rand
	active    map[string]int
	idle      map[string]int
	waiters   []*gateWaiter
	seq       uint64
	progress  uint64
	timer     *time.Timer
	ticks     atomic.Int64 // written under mu; Now reads it without the lock
	fallbacks int
	held      bool // between two steps: nothing is released (Hold, Unhold)
	order     []string
	watchers  map[string]func() bool // device → is it quiet
	recheck   *time.Timer
}

var _ proxy.Gate = (*Scheduler)(nil)

type gateWaiter struct {
	device  string
	command string
	seq     uint64
	ch      chan struct{}
}

// NewScheduler returns a Scheduler with no active participant.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	stall := opts.Stall
	if stall <= 0 {
		stall = DefaultGateStall
	}
	return &Scheduler{
		stall:    stall,
		rng:      rand.New(rand.NewSource(opts.Seed)),
		active:   map[string]int{},
		idle:     map[string]int{},
		watchers: map[string]func() bool{},
	}
}

// SetWatcher makes device a watcher (push mode): while quiet returns false, device counts
// as an active participant. quiet is called with the scheduler's lock held: it must not
// call the scheduler, and must be quick.
func (s *Scheduler) SetWatcher(device string, quiet func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers[device] = quiet
	s.changed()
}

// ClearWatcher ends push mode for device.
func (s *Scheduler) ClearWatcher(device string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers, device)
	s.changed()
}

// Poke asks the watchers again whether they are quiet, and releases what can go. It is
// called when a device's IDLE state changes.
func (s *Scheduler) Poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.poke()
}

// poke releases what can be released without counting as progress (so the stall fallback
// still fires for a participant that never comes); s.mu is held.
func (s *Scheduler) poke() {
	if s.ready() {
		s.changed()
		return
	}
	s.armRecheck()
}

// armRecheck asks the watchers again in a millisecond while commands wait on them.
func (s *Scheduler) armRecheck() {
	if s.recheck != nil || len(s.waiters) == 0 || len(s.watchers) == 0 {
		return
	}
	s.recheck = time.AfterFunc(time.Millisecond, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.recheck = nil
		s.poke()
	})
}

// CountFallback counts a wait that was given up after its bound (a watcher that did not
// become quiet): the run may then not be reproducible.
func (s *Scheduler) CountFallback() {
	s.mu.Lock()
	s.fallbacks++
	s.mu.Unlock()
}

// busyWatcher reports whether device is a watcher that is not quiet; s.mu is held.
func (s *Scheduler) busyWatcher(device string) bool {
	q, ok := s.watchers[device]
	return ok && !q()
}

// Wait implements proxy.Gate: it returns when the command may go, or with ctx's error when
// ctx ends first.
func (s *Scheduler) Wait(ctx context.Context, device, command string) error {
	s.mu.Lock()
	if s.idle[device] > 0 {
		s.idle[device]--
	}
	if s.active[device] == 0 && !s.busyWatcher(device) {
		s.ticks.Add(1)
		s.mu.Unlock()
		return nil
	}
	s.seq++
	w := &gateWaiter{device: device, command: command, seq: s.seq, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.changed()
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, o := range s.waiters {
			if o == w {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				s.changed()
				return ctx.Err()
			}
		}
		// Released at the same moment: let the command go; the connection is ending anyway.
		return nil
	}
}

// Hold keeps every command of an active participant, or of a watcher that is not quiet,
// waiting until Unhold. Between two steps nothing else runs, so a watcher's round that a
// step set off starts in the next step's time, never in the real time between them.
func (s *Scheduler) Hold() {
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
}

// Unhold ends Hold and releases what may go.
func (s *Scheduler) Unhold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.held = false
		s.changed()
	}
}

// Enter makes participant active (once more: Enter and Leave nest).
func (s *Scheduler) Enter(participant string) {
	if participant == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active[participant]++
	s.changed()
}

// Leave undoes one Enter of participant.
func (s *Scheduler) Leave(participant string) {
	if participant == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leave(participant)
	s.changed()
}

// Switch is Leave(from) and Enter(to) in one step, so that no command is released in
// between. Either may be "" (nothing to leave or enter).
func (s *Scheduler) Switch(from, to string) {
	if from == to {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if from != "" {
		s.leave(from)
	}
	if to != "" {
		s.active[to]++
	}
	s.changed()
}

func (s *Scheduler) leave(p string) {
	if s.active[p] <= 1 {
		delete(s.active, p)
		delete(s.idle, p)
		return
	}
	s.active[p]--
}

// Tick advances the logical clock by one tick.
func (s *Scheduler) Tick() {
	s.mu.Lock()
	s.ticks.Add(1)
	s.mu.Unlock()
}

// Now returns the logical clock: one millisecond per tick. It takes no lock, so the fake
// server may read it while it holds its own (to date a change it pushes, see
// fakeserver.Server.SetClock) without ordering its locks after the scheduler's.
func (s *Scheduler) Now() time.Duration {
	return time.Duration(s.ticks.Load()) * time.Millisecond
}

// Order returns the commands the scheduler released while their participant was active, as
// "participant: command", in release order.
func (s *Scheduler) Order() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// Fallbacks returns how many commands were released because the Stall duration passed.
// Zero means the run's interleaving was fully decided by the seed.
func (s *Scheduler) Fallbacks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fallbacks
}

// ready reports whether a command may be released: every active participant that is not
// idling has a command waiting. A participant active in two threads at once (the same device
// twice in one block) counts once, so a thread blocked behind the other on the device's own
// lock cannot stall the gate. s.mu is held.
func (s *Scheduler) ready() bool {
	if s.held || len(s.waiters) == 0 {
		return false
	}
	waiting := make(map[string]bool, len(s.waiters))
	for _, w := range s.waiters {
		waiting[w.device] = true
	}
	for p, c := range s.active {
		if c > s.idle[p] && !waiting[p] {
			return false
		}
	}
	for p, quiet := range s.watchers {
		if !waiting[p] && !quiet() {
			return false
		}
	}
	return true
}

// changed releases what can be released after any change of state; s.mu is held.
func (s *Scheduler) changed() {
	s.progress++
	for s.ready() {
		s.release()
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if len(s.waiters) > 0 {
		p := s.progress
		s.timer = time.AfterFunc(s.stall, func() { s.stalled(p) })
	}
	s.armRecheck()
}

// stalled fires when nothing changed for the Stall duration while commands were waiting.
func (s *Scheduler) stalled(progress uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held || s.progress != progress || len(s.waiters) == 0 {
		return
	}
	s.fallbacks++
	s.release()
	s.changed()
}

// release lets one waiting command go, chosen by the seeded source; s.mu is held.
func (s *Scheduler) release() {
	sort.Slice(s.waiters, func(i, j int) bool {
		a, b := s.waiters[i], s.waiters[j]
		if a.device != b.device {
			return a.device < b.device
		}
		if a.command != b.command {
			return a.command < b.command
		}
		return a.seq < b.seq
	})
	i := 0
	if len(s.waiters) > 1 {
		i = s.rng.Intn(len(s.waiters))
	}
	w := s.waiters[i]
	s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
	s.ticks.Add(1)
	s.order = append(s.order, w.device+": "+w.command)
	if isIdleCommand(w.command) {
		s.idle[w.device]++
	}
	close(w.ch)
}

// isIdleCommand reports whether a command line ("T4 IDLE") is IDLE.
func isIdleCommand(line string) bool {
	f := strings.Fields(line)
	return len(f) >= 2 && strings.EqualFold(f[1], "IDLE")
}

// thread follows one child of a concurrently block through the participants its steps act
// as, keeping exactly one of them active at the Scheduler at a time.
type thread struct {
	gate *Scheduler
	mu   sync.Mutex
	cur  string
}

// at makes participant the thread's active one ("" for none).
func (t *thread) at(participant string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gate.Switch(t.cur, participant)
	t.cur = participant
}

// done makes the thread inactive.
func (t *thread) done() { t.at("") }

type threadKey struct{}

func withThread(ctx context.Context, t *thread) context.Context {
	return context.WithValue(ctx, threadKey{}, t)
}

func threadOf(ctx context.Context) *thread {
	t, _ := ctx.Value(threadKey{}).(*thread)
	return t
}

// canonicalConn is a device's connection in deterministic mode. go-imap's client writes
// the data items of FETCH and STATUS in map order, which changes from run to run; this
// connection sorts them, so that the same seed gives the same bytes on the wire. Everything
// else passes unchanged. Writes are held until the next CRLF: an IMAP client only waits for
// the server after a complete line.
type canonicalConn struct {
	net.Conn
	pending []byte
}

func (c *canonicalConn) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	i := bytes.LastIndex(c.pending, []byte("\r\n"))
	if i < 0 {
		return len(p), nil
	}
	out := canonicalLines(c.pending[:i+2])
	c.pending = append([]byte(nil), c.pending[i+2:]...)
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// mapItems are the data items go-imap writes in map order.
var mapItems = map[string]bool{
	"BODY": true, "BODYSTRUCTURE": true, "ENVELOPE": true, "FLAGS": true, "INTERNALDATE": true,
	"RFC822.SIZE": true, "MODSEQ": true, "MESSAGES": true, "UIDNEXT": true, "UIDVALIDITY": true,
	"UNSEEN": true, "RECENT": true, "SIZE": true, "APPENDLIMIT": true, "DELETED": true,
	"DELETED-STORAGE": true, "HIGHESTMODSEQ": true, "NUMBER": true, "MAILBOXID": true,
}

// canonicalLines sorts the map-ordered data items of every FETCH and STATUS command line
// in b (complete lines ending in CRLF).
func canonicalLines(b []byte) []byte {
	lines := bytes.SplitAfter(b, []byte("\r\n"))
	var out []byte
	for _, l := range lines {
		out = append(out, canonicalLine(l)...)
	}
	return out
}

func canonicalLine(l []byte) []byte {
	f := bytes.Fields(l)
	if len(f) < 3 {
		return l
	}
	verb := strings.ToUpper(string(f[1]))
	if verb == "UID" {
		verb = strings.ToUpper(string(f[2]))
	}
	if verb != "FETCH" && verb != "STATUS" {
		return l
	}
	open := bytes.IndexByte(l, '(')
	if open < 0 {
		return l
	}
	// The top-level items of the list, split on spaces outside brackets and parentheses.
	var items [][]byte
	depth, start, end := 0, open+1, -1
	for i := open + 1; i < len(l) && end < 0; i++ {
		switch l[i] {
		case '[', '(':
			depth++
		case ']':
			depth--
		case ')':
			if depth == 0 {
				items = append(items, l[start:i])
				end = i
			} else {
				depth--
			}
		case ' ':
			if depth == 0 {
				items = append(items, l[start:i])
				start = i + 1
			}
		case '"':
			// Skip a quoted string (a header field name inside a section).
			for i++; i < len(l) && l[i] != '"'; i++ {
				if l[i] == '\\' {
					i++
				}
			}
		case '{':
			return l // a literal in the list: leave the line alone
		}
	}
	if end < 0 {
		return l
	}
	// Sort each run of map-ordered items.
	for i := 0; i < len(items); {
		j := i
		for j < len(items) && mapItems[strings.ToUpper(string(items[j]))] {
			j++
		}
		if j > i {
			run := items[i:j]
			sort.Slice(run, func(a, b int) bool { return string(run[a]) < string(run[b]) })
			i = j
		} else {
			i++
		}
	}
	out := append([]byte(nil), l[:open+1]...)
	out = append(out, bytes.Join(items, []byte(" "))...)
	return append(out, l[end:]...)
}
