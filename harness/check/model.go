package check

import (
	"slices"
	"sort"
	"strings"
)

// The expected-state model (behind I3–I7).
//
// Every message the history makes is an instance: a delivery, an append, a copy (copies
// are more instances of one label) or the new message of a reply/forward. An instance's
// state is the set of places it may be in at the end (mailboxes, or gone) and, per flag,
// the values it may have. Mailboxes have the set of values "exists" may take.
//
// Server ops take effect at once. A device's local ops take effect when its next sync
// reaches the server: one event with all of them, applied in order under the engine's
// conflict rules. Events that race (the syncs and server ops of one `concurrently` block,
// the syncs of the final settle) are applied in every order (every permutation up to
// maxExactRace events, else every rotation forwards and backwards) and the outcomes are
// united per instance and per component (place, each flag). A sync that failed delivered
// an unknown part of its work: that work joins the device's next successful sync and may
// have arrived at any time in between, so it is also applied to the state as it was when
// the failed sync started, before each cluster since in turn, with the clusters replayed
// around it, and every outcome is allowed (R2). The same holds for the work of a
// device that watches the server (IDLE): it syncs by itself whenever woken.
//
// The rules, per op reaching the server, are deterministic (applyOp); every "may" is a
// relaxation of the registry in relaxations.go, applied only under its narrow condition
// and only where the engine's policies allow it:
//   - flag/unflag/read/unread/reply/forward: the flag takes the written value (last write
//     wins, the per-flag three-way merge) where the message is.
//   - move/trash: applies only where the message still is where the device saw it (first
//     move wins); a move into a mailbox gone from the server leaves the message where it was.
//   - delete: a device's delete removes the message wherever it is by then (expunge beats
//     move: the delete follows a message moved meanwhile); the server's expunge removes it
//     from the mailbox named only.
//   - copy: a new instance in the destination with the source's flags, if the source is
//     still there and the destination exists.
//   - deliver/append: a new instance, if the mailbox exists.
//   - remove: the mailbox's messages go with it; rename: they follow.
//   - uidvalidity-bump/-reset and renumber-silently change nothing: no message is lost.

// maxExactRace is the largest number of racing events applied in every order.
const maxExactRace = 5

// opKind is the kind of an operation, read once from Op.Kind.
type opKind uint8

const (
	kIgnored opKind = iota // not a change the model follows (crash, offline, uidvalidity-bump…)
	kDeliver
	kAppend
	kRead
	kUnread
	kFlag
	kUnflag
	kReply
	kForward
	kMove
	kTrash
	kCopy
	kDelete // a device's delete, the server's expunge
	kCreate
	kRemove
	kRename
	kSync
	kWipe
	kWatch
	kUnwatch
	kCaps
)

var opKinds = map[string]opKind{
	"deliver": kDeliver, "append": kAppend, "read": kRead, "unread": kUnread, "flag": kFlag,
	"unflag": kUnflag, "reply": kReply, "forward": kForward, "move": kMove, "trash": kTrash,
	"copy": kCopy, "delete": kDelete, "expunge": kDelete, "create": kCreate, "remove": kRemove,
	"rename": kRename, "sync": kSync, "wipe": kWipe, "watch": kWatch, "unwatch": kUnwatch,
	"caps": kCaps,
}

// kindOf returns op's kind (kIgnored for kinds the model does not follow).
func kindOf(op *Op) opKind { return opKinds[op.Kind] }

// isMove reports whether k moves a message (move or trash).
func (k opKind) isMove() bool { return k == kMove || k == kTrash }

// namesMailbox reports whether an op of kind k has a mailbox in Dest.
func (k opKind) namesMailbox() bool { return k == kMove || k == kCopy || k == kRename }

// isFlag reports whether k writes a flag of an existing message.
func (k opKind) isFlag() bool {
	return k == kRead || k == kUnread || k == kFlag || k == kUnflag || k == kReply || k == kForward
}

type instState struct {
	loc   locSet
	flags flagMap
	free  bool // flags unknown (a reply or forward made by the engine)
}

func (s instState) union(o instState) instState {
	return instState{loc: s.loc.union(o.loc), flags: s.flags.union(o.flags), free: s.free || o.free}
}

func (s instState) equal(o instState) bool {
	return s.loc.equal(o.loc) && s.flags.equal(o.flags) && s.free == o.free
}

type version struct {
	at int // the clock of the cluster that produced it
	st instState
	// from is the first clock at which the state may have been on the server: earlier than
	// at when work in flight since then took part.
	from int
}

type instance struct {
	id    int
	label string
	st    instState
	hist  []version // empty: not made yet
	// touched is the clock of the last cluster that acted on the instance, changed or not.
	touched int
	// src is the instance a copy was made from (-1: not a copy); the copy takes its flags
	// as they were on the server when the copy was made.
	src int
	// early holds flag values written by devices that found the instance on the server
	// before the model made it (another device's work in flight had put it there): allowed
	// once it is made.
	early flagMap
}

// at returns the instance's state as of clock t (gone before it was made).
func (x *instance) at(t int) instState {
	i := sort.Search(len(x.hist), func(i int) bool { return x.hist[i].at > t })
	if i == 0 {
		return instState{loc: locSet{gone}}
	}
	return x.hist[i-1].st
}

type mailboxModel struct {
	exists bits
	hist   []mboxVersion
}

type mboxVersion struct {
	at     int
	exists bits
}

type pendingOp struct {
	op      *Op
	kind    opKind
	targets []int  // instances acted on
	newIDs  []int  // instances made (append, copy, reply/forward)
	before  []bits // per target, for flag ops: the value the device saw before
	maybe   bool
	// leftovers, per target of a move, the copy a half-done move without MOVE may leave
	// in the destination besides the original.
	leftovers []int
	// early marks work that may reach the server before the device's next successful
	// sync: pending when a sync failed, or made while the device watched the server.
	// Work made after that waits for the sync.
	early bool
	// earlyAt is the clock after which early work may have reached the server: the last
	// cluster before the failed sync (or the watch) that first sent it. Work a device made
	// after a failed sync, that its next failed sync sent, cannot have arrived before that.
	earlyAt int
	// halfDone marks a wiped device's work cut short: a delete may have marked its
	// messages \Deleted without expunging them.
	halfDone bool
	// chainFrom, per target of a move, is where an earlier move of the same batch took it
	// from: an engine may fold the two into one move from there.
	chainFrom []string
}

type deviceModel struct {
	name     string
	pending  []pendingOp
	synced   bool // has synced successfully since it was made (or wiped)
	lastSync int  // clock of its last successful sync
	raced    bool // that sync raced others: its view may be from before them too
	inflight int  // clock when a failed sync started delivering pending work; -1: none
	local    map[int]instState
	localMB  map[string]bits
	watching bool // syncs by itself whenever the server changes (IDLE)
}

type event struct {
	dev      *deviceModel // nil: a server op
	ops      []pendingOp
	inflight int  // >=0: the work may have arrived any time since this clock
	noSync   bool // the device did not sync (its journal was cut short by a wipe)
}

type model struct {
	insts   []*instance
	byLabel map[string][]int
	mboxes  map[string]*mailboxModel
	devs    map[string]*deviceModel
	order   []string // device names in order of appearance
	clock   int
	// lacking holds the capabilities switched off (caps, server caps), upper case.
	lacking map[string]bool
	// log holds the clusters applied, in order, so that work in flight can be replayed as
	// if it had arrived before them.
	log []loggedCluster
	// allow holds the relaxations the model may use; used, those whose condition held.
	allow, used relaxSet
}

type loggedCluster struct {
	at  int
	evs []event
}

func newModel(devices []Device, allow relaxSet) *model {
	m := &model{byLabel: map[string][]int{}, mboxes: map[string]*mailboxModel{}, devs: map[string]*deviceModel{},
		lacking: map[string]bool{}, allow: allow}
	m.mboxes["INBOX"] = &mailboxModel{exists: mayBeTrue, hist: []mboxVersion{{0, mayBeTrue}}}
	for _, d := range devices {
		m.device(d.Name)
	}
	return m
}

func (m *model) device(name string) *deviceModel {
	d := m.devs[name]
	if d == nil {
		d = &deviceModel{name: name, inflight: -1, local: map[int]instState{}, localMB: map[string]bits{}}
		m.devs[name] = d
		m.order = append(m.order, name)
	}
	return d
}

// known makes sure a mailbox the history names without creating it exists from the start.
func (m *model) known(name string) {
	if name == "" {
		return
	}
	if strings.EqualFold(name, "INBOX") {
		return
	}
	if m.mboxes[name] == nil {
		m.mboxes[name] = &mailboxModel{exists: mayBeTrue, hist: []mboxVersion{{0, mayBeTrue}}}
	}
}

func (m *model) newInstance(label string) int {
	id := len(m.insts)
	m.insts = append(m.insts, &instance{id: id, label: label, st: instState{loc: locSet{gone}}, src: -1})
	m.byLabel[label] = append(m.byLabel[label], id)
	return id
}

// newCopy makes the instance a copy of src becomes.
func (m *model) newCopy(src int) int {
	id := m.newInstance(m.insts[src].label)
	m.insts[id].src = src
	return id
}

func isServerActor(a string) bool { return a == "server" || a == "setup" || a == "" }

func mailboxOf(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// replay runs the whole history, then the final settle.
func (m *model) replay(history []Op) {
	// Normalise INBOX's spelling on a copy, and only when needed: the input is not modified.
	needCopy, labels := false, 0
	for i := range history {
		o := &history[i]
		labels += len(o.Labels)
		needCopy = needCopy || o.Mailbox != mailboxOf(o.Mailbox) ||
			(kindOf(o).namesMailbox() && o.Dest != mailboxOf(o.Dest))
	}
	ops := history
	if needCopy {
		ops = append([]Op(nil), history...)
		for i := range ops {
			ops[i].Mailbox = mailboxOf(ops[i].Mailbox)
			if kindOf(&ops[i]).namesMailbox() {
				ops[i].Dest = mailboxOf(ops[i].Dest)
			}
		}
	}
	m.insts = make([]*instance, 0, labels)
	for i := 0; i < len(ops); {
		if g := ops[i].Group; g > 0 {
			j := i
			for j < len(ops) && ops[j].Group == g {
				j++
			}
			var evs []event
			for k := i; k < j; k++ {
				evs = append(evs, m.step(&ops[k])...)
			}
			m.apply(evs)
			i = j
			continue
		}
		if batchable(&ops[i]) {
			// A run of deliveries and creations: one event, applied in order.
			batch := event{inflight: -1}
			j := i
			for ; j < len(ops) && batchable(&ops[j]); j++ {
			}
			batch.ops = make([]pendingOp, 0, j-i)
			for ; i < len(ops) && batchable(&ops[i]); i++ {
				for _, ev := range m.step(&ops[i]) {
					batch.ops = append(batch.ops, ev.ops...)
				}
			}
			m.apply([]event{batch})
			continue
		}
		m.apply(m.step(&ops[i]))
		i++
	}
	// Settle: every device delivers what is left, in an order the model does not know.
	var evs []event
	for _, name := range m.order {
		d := m.devs[name]
		if len(d.pending) > 0 {
			evs = append(evs, m.flush(d))
		}
	}
	m.apply(evs)
}

// batchable reports whether op can join a run of server ops applied as one event: it
// names no existing message, so nothing in it depends on the ops before it in the run.
func batchable(op *Op) bool {
	k := kindOf(op)
	return isServerActor(op.Actor) && op.Group == 0 && op.Err == "" &&
		(k == kDeliver || k == kAppend || k == kCreate)
}

// step handles one op: server ops become events; device ops go to the device's journal;
// a device's successful sync becomes an event with its journal.
func (m *model) step(op *Op) []event {
	k := kindOf(op)
	// A mailbox an op names without creating it existed from the start, unless the step
	// failed (it may not exist) or the acting device created it itself.
	if op.Err == "" && k != kCreate && k != kSync {
		var created map[string]bits
		if !isServerActor(op.Actor) {
			created = m.device(op.Actor).localMB
		}
		names := []string{op.Mailbox, op.Trash, op.Sent}
		if k == kMove || k == kCopy {
			names = append(names, op.Dest)
		}
		for _, mb := range names {
			if _, ok := created[mb]; !ok {
				m.known(mb)
			}
		}
	}
	if k == kSync && (op.Actor == "" || op.Actor == "all" || op.Actor == "*") {
		var evs []event
		for _, name := range m.order {
			o := *op
			o.Actor = name
			evs = append(evs, m.step(&o)...)
		}
		// In turn: sequential, so apply all but the last now.
		for _, ev := range evs[:max(0, len(evs)-1)] {
			m.apply([]event{ev})
		}
		if len(evs) == 0 {
			return nil
		}
		return evs[len(evs)-1:]
	}
	if isServerActor(op.Actor) && k == kCaps {
		for _, c := range op.Flags {
			if name, ok := strings.CutPrefix(c, "-"); ok {
				m.lacking[strings.ToUpper(name)] = true
			} else {
				delete(m.lacking, strings.ToUpper(strings.TrimPrefix(c, "+")))
			}
		}
		return nil
	}
	if isServerActor(op.Actor) {
		p := pendingOp{op: op, kind: k, maybe: op.Err != ""}
		switch k {
		case kDeliver, kAppend:
			for _, l := range op.Labels {
				p.newIDs = append(p.newIDs, m.newInstance(l))
			}
		case kRead, kUnread, kFlag, kUnflag, kMove, kCopy, kDelete, kTrash:
			p.targets = m.serverTargets(op.Labels, op.Mailbox)
			for range p.targets {
				p.before = append(p.before, eitherValue)
			}
			if k == kCopy {
				for _, t := range p.targets {
					p.newIDs = append(p.newIDs, m.newCopy(t))
				}
			}
		}
		return []event{{ops: []pendingOp{p}, inflight: -1}}
	}
	d := m.device(op.Actor)
	switch k {
	case kSync:
		if op.Err != "" {
			if d.inflight < 0 && len(d.pending) > 0 {
				d.inflight = m.clock
			}
			d.markEarly(m.clock)
			return nil
		}
		ev := m.flush(d)
		return []event{ev}
	case kWipe:
		var evs []event
		if d.inflight >= 0 && len(d.pending) > 0 {
			// Part of the journal may already have reached the server.
			ev := m.flush(d)
			for i := range ev.ops {
				ev.ops[i].maybe, ev.ops[i].halfDone = true, true
				if m.lacking["MOVE"] && ev.ops[i].kind.isMove() {
					// Without MOVE, a move cut between its COPY and its EXPUNGE leaves both,
					// and with the journal wiped nobody finishes it.
					for _, t := range ev.ops[i].targets {
						ev.ops[i].leftovers = append(ev.ops[i].leftovers, m.newCopy(t))
					}
				}
			}
			ev.noSync = true
			evs = append(evs, ev)
		}
		d.pending, d.local, d.localMB = nil, map[int]instState{}, map[string]bits{}
		d.synced, d.inflight = false, -1
		return evs
	case kWatch:
		d.watching = true
		if d.inflight < 0 && len(d.pending) > 0 {
			d.inflight = m.clock
		}
		d.markEarly(m.clock)
		return nil
	case kUnwatch:
		d.watching = false
		return nil
	case kIgnored:
		return nil
	}
	m.local(d, op, k)
	if d.watching && len(d.pending) > 0 {
		// A watching device pushes its work whenever the server wakes it: any time from now.
		if d.inflight < 0 {
			d.inflight = m.clock
		}
		d.markEarly(m.clock)
	}
	return nil
}

// movedFrom returns where the first pending move of instance id took it from, or "".
func (d *deviceModel) movedFrom(id int) string {
	for _, p := range d.pending {
		if !p.kind.isMove() {
			continue
		}
		for i, t := range p.targets {
			if t == id {
				if i < len(p.chainFrom) && p.chainFrom[i] != "" {
					return p.chainFrom[i]
				}
				return p.op.Mailbox
			}
		}
	}
	return ""
}

// markEarly marks the device's pending work as possibly on the server already, after the
// cluster at clock t for the work not marked before.
func (d *deviceModel) markEarly(t int) {
	for i := range d.pending {
		if !d.pending[i].early {
			d.pending[i].early, d.pending[i].earlyAt = true, t
		}
	}
}

// flush turns a device's journal into an event and records the sync.
func (m *model) flush(d *deviceModel) event {
	ev := event{dev: d, ops: d.pending, inflight: d.inflight}
	d.pending, d.local, d.localMB = nil, map[int]instState{}, map[string]bits{}
	d.inflight = -1
	return ev
}

// view is what device d shows for instance id: its own changes, else the server's state
// at its last sync.
func (m *model) view(d *deviceModel, id int) instState {
	if s, ok := d.local[id]; ok {
		return s
	}
	x := m.insts[id]
	if !d.synced {
		return x.st // a device that never synced: the model knows nothing better
	}
	s := x.at(d.lastSync)
	if d.raced {
		if b := x.at(d.lastSync - 1); !b.equal(s) && m.relax(rSeenInFlight) {
			s = s.union(b)
		}
	}
	for _, v := range x.hist {
		if v.at > d.lastSync && v.from <= d.lastSync && m.relax(rSeenInFlight) {
			s = s.union(v.st) // work then in flight may have shown already
		}
	}
	return s
}

// resolve finds the instances of labels a device means in mailbox mb.
func (m *model) resolve(d *deviceModel, labels []string, mb string) (ids []int, sure bool) {
	sure = true
	for _, l := range labels {
		var found []int
		for _, id := range m.byLabel[l] {
			if loc := m.view(d, id).loc; loc.has(mb) {
				found = append(found, id)
				if !loc.only(mb) {
					sure = false // the device may not have had it there
				}
			}
		}
		if len(found) == 0 {
			sure = false
			for _, id := range m.byLabel[l] {
				if m.everIn(id, mb) || m.mayHaveArrived(id, mb) {
					found = append(found, id)
				}
			}
		}
		ids = append(ids, found...)
	}
	return ids, sure
}

func (m *model) everIn(id int, mb string) bool {
	x := m.insts[id]
	if x.st.loc.has(mb) {
		return true
	}
	for _, v := range x.hist {
		if v.st.loc.has(mb) {
			return true
		}
	}
	return false
}

// mayHaveArrived reports whether another device's work in flight (a failed sync's, or a
// watching device's) may already have put instance id in mb on the server.
func (m *model) mayHaveArrived(id int, mb string) bool {
	if !m.allow[rSeenInFlight] {
		return false
	}
	for _, name := range m.order {
		d := m.devs[name]
		if d.inflight < 0 {
			continue
		}
		if s, ok := d.local[id]; ok && s.loc.has(mb) {
			return m.relax(rSeenInFlight)
		}
		for _, p := range d.pending {
			if !p.early {
				continue
			}
			switch k := p.kind; {
			case k.isMove() && (p.op.Dest == mb || (k == kTrash && p.op.Trash == mb)):
				if slices.Contains(p.targets, id) {
					return m.relax(rSeenInFlight)
				}
			case k == kAppend || k == kCopy || k == kReply || k == kForward:
				if slices.Contains(p.newIDs, id) {
					return m.relax(rSeenInFlight)
				}
			}
		}
	}
	return false
}

// othersMayHaveWritten returns the values of flag name on instance id that other devices'
// work in flight may already have written on the server.
func (m *model) othersMayHaveWritten(d *deviceModel, id int, name string) bits {
	var out bits
	if !m.allow[rSeenInFlight] {
		return 0
	}
	for _, n := range m.order {
		o := m.devs[n]
		if o == d || o.inflight < 0 {
			continue
		}
		for _, p := range o.pending {
			if !p.early || !slices.Contains(p.targets, id) {
				continue
			}
			if f, v := flagOfOp(p.kind, p.op); f == name {
				out |= bitOf(v)
				m.used[rSeenInFlight] = true
			}
		}
	}
	return out
}

func (m *model) serverTargets(labels []string, mb string) []int {
	var ids []int
	for _, l := range labels {
		for _, id := range m.byLabel[l] {
			if m.insts[id].st.loc.has(mb) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// flagOfOp returns the flag an op of kind k writes, and the value.
func flagOfOp(k opKind, op *Op) (string, bool) {
	switch k {
	case kRead:
		return `\Seen`, true
	case kUnread:
		return `\Seen`, false
	case kFlag:
		return canonFlag(op.Flag), true
	case kUnflag:
		return canonFlag(op.Flag), false
	case kReply:
		return `\Answered`, true
	case kForward:
		return `$Forwarded`, true
	}
	return "", false
}

// local records a device's offline op in its journal and its own view.
func (m *model) local(d *deviceModel, op *Op, k opKind) {
	p := pendingOp{op: op, kind: k, maybe: op.Err != ""}
	switch k {
	case kAppend:
		for _, l := range op.Labels {
			id := m.newInstance(l)
			p.newIDs = append(p.newIDs, id)
			d.local[id] = instState{loc: locSet{op.Mailbox}, flags: flagsOf(op.Flags)}
		}
	case kRead, kUnread, kFlag, kUnflag, kReply, kForward:
		ids, sure := m.resolve(d, op.Labels, op.Mailbox)
		p.maybe = p.maybe || !sure
		name, v := flagOfOp(k, op)
		for _, id := range ids {
			s := m.view(d, id)
			p.targets = append(p.targets, id)
			p.before = append(p.before, s.flags.get(name)|m.othersMayHaveWritten(d, id, name))
			s.flags = s.flags.set(name, bitOf(v))
			d.local[id] = s
		}
		if k == kReply || k == kForward {
			sent := op.Sent
			if sent == "" {
				sent = "Sent"
			}
			m.known(sent)
			id := m.newInstance(op.Dest)
			p.newIDs = append(p.newIDs, id)
			d.local[id] = instState{loc: locSet{sent}, free: true}
		}
	case kMove, kTrash, kDelete, kCopy:
		if (k == kTrash && op.Trash == "") || ((k == kMove || k == kCopy) && op.Dest == "") {
			return // no destination: the step cannot have done anything
		}
		ids, sure := m.resolve(d, op.Labels, op.Mailbox)
		p.maybe = p.maybe || !sure
		for _, id := range ids {
			s := m.view(d, id)
			p.targets = append(p.targets, id)
			p.before = append(p.before, eitherValue)
			if k.isMove() {
				p.chainFrom = append(p.chainFrom, d.movedFrom(id))
			}
			switch k {
			case kMove:
				s.loc = locSet{op.Dest}
			case kTrash:
				s.loc = locSet{op.Trash}
			case kDelete:
				s.loc = locSet{gone}
			case kCopy:
				nid := m.newCopy(id)
				p.newIDs = append(p.newIDs, nid)
				d.local[nid] = instState{loc: locSet{op.Dest}, flags: s.flags}
				continue
			}
			d.local[id] = s
		}
	case kCreate:
		d.localMB[op.Mailbox] = mayBeTrue
	case kRemove:
		d.localMB[op.Mailbox] = mayBeFalse
	case kRename:
		d.localMB[op.Mailbox] = mayBeFalse
		d.localMB[op.Dest] = mayBeTrue
		for id := range m.insts {
			s := m.view(d, id)
			moved := false
			for _, l := range s.loc {
				if nn, ok := renamed(l, op.Mailbox, op.Dest); ok && l != gone {
					s.loc = s.loc.without(l).with(nn)
					moved = true
				}
			}
			if moved {
				d.local[id] = s
			}
		}
	default:
		return // not a change (unknown kinds are ignored)
	}
	d.pending = append(d.pending, p)
}
