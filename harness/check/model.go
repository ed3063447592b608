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
// around it, and every outcome is allowed. The same holds for the work of a
// device that watches the server (IDLE): it syncs by itself whenever woken.
//
// The rules, per op reaching the server:
//   - flag/unflag/read/unread: the flag takes the written value (last write wins, the
//     per-flag three-way merge). If the device already saw that value, its engine may not
//     write at all: then the value before is allowed too. A change to a message another
//     device moved and then copied (both unseen by this device) may land on the moved
//     message or on a copy: they share Message-ID and content, so no engine can tell
//     them apart, and the model allows either value on each.
//   - move/trash: applies only where the message still is where the device saw it (first
//     move wins); a message that may be elsewhere keeps those places. A device's new
//     message moved into a mailbox gone from the server may be rescued to INBOX.
//   - delete: a device's delete removes the message wherever it is by then (expunge beats
//     move: the delete follows a message moved meanwhile); the server's expunge removes it
//     from the mailbox named only.
//   - copy: a new instance in the destination with the source's flags, if the source is
//     still there; if another device moved the source away, the copy may or may not be
//     made. A device's copy into a mailbox gone from the server is rescued to INBOX, as
//     its appends are.
//   - remove: the mailbox's messages go with it; rename: they follow.
//   - without UIDPLUS (caps), a device's expunge that races other events may take any
//     message of that mailbox marked \Deleted by then (RFC 4549 §4.2.4 leaves that window
//     open); without MOVE, a device wiped while a move was in flight may leave both the
//     copy and the original, marked \Deleted; a wiped device's delete in flight may leave
//     the message marked \Deleted.
//   - uidvalidity-bump/-reset and renumber-silently change nothing: no message is lost.
//   - an op whose step reported an error may or may not have taken effect.

// maxExactRace is the largest number of racing events applied in every order.
const maxExactRace = 5

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
}

type loggedCluster struct {
	at  int
	evs []event
}

func newModel(devices []Device) *model {
	m := &model{byLabel: map[string][]int{}, mboxes: map[string]*mailboxModel{}, devs: map[string]*deviceModel{},
		lacking: map[string]bool{}}
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

// namesMailbox reports whether an op of kind has a mailbox in Dest.
func namesMailbox(kind string) bool { return kind == "move" || kind == "copy" || kind == "rename" }

func isServerActor(a string) bool { return a == "server" || a == "setup" || a == "" }

func mailboxOf(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// replay runs the whole history, then the final settle.
func (m *model) replay(history []Op) {
	// Normalise INBOX's spelling and server "expunge" on a copy, and only when needed: the
	// input is not modified.
	needCopy, labels := false, 0
	for i := range history {
		o := &history[i]
		labels += len(o.Labels)
		needCopy = needCopy || o.Mailbox != mailboxOf(o.Mailbox) || o.Kind == "expunge" ||
			(namesMailbox(o.Kind) && o.Dest != mailboxOf(o.Dest))
	}
	ops := history
	if needCopy {
		ops = append([]Op(nil), history...)
		for i := range ops {
			ops[i].Mailbox = mailboxOf(ops[i].Mailbox)
			if namesMailbox(ops[i].Kind) {
				ops[i].Dest = mailboxOf(ops[i].Dest)
			}
			if ops[i].Kind == "expunge" {
				ops[i].Kind = "delete"
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
	return isServerActor(op.Actor) && op.Group == 0 && op.Err == "" &&
		(op.Kind == "deliver" || op.Kind == "append" || op.Kind == "create")
}

// step handles one op: server ops become events; device ops go to the device's journal;
// a device's successful sync becomes an event with its journal.
func (m *model) step(op *Op) []event {
	// A mailbox an op names without creating it existed from the start, unless the step
	// failed (it may not exist) or the acting device created it itself.
	if op.Err == "" && op.Kind != "create" && op.Kind != "sync" {
		var created map[string]bits
		if !isServerActor(op.Actor) {
			created = m.device(op.Actor).localMB
		}
		names := []string{op.Mailbox, op.Trash, op.Sent}
		if op.Kind == "move" || op.Kind == "copy" {
			names = append(names, op.Dest)
		}
		for _, mb := range names {
			if _, ok := created[mb]; !ok {
				m.known(mb)
			}
		}
	}
	if op.Kind == "sync" && (op.Actor == "" || op.Actor == "all" || op.Actor == "*") {
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
	if isServerActor(op.Actor) && op.Kind == "caps" {
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
		p := pendingOp{op: op, maybe: op.Err != ""}
		switch op.Kind {
		case "deliver", "append":
			for _, l := range op.Labels {
				p.newIDs = append(p.newIDs, m.newInstance(l))
			}
		case "read", "unread", "flag", "unflag", "move", "copy", "delete", "trash":
			p.targets = m.serverTargets(op.Labels, op.Mailbox)
			for range p.targets {
				p.before = append(p.before, eitherValue)
			}
			if op.Kind == "copy" {
				for _, t := range p.targets {
					p.newIDs = append(p.newIDs, m.newCopy(t))
				}
			}
		}
		return []event{{ops: []pendingOp{p}, inflight: -1}}
	}
	d := m.device(op.Actor)
	switch op.Kind {
	case "sync":
		if op.Err != "" {
			if d.inflight < 0 && len(d.pending) > 0 {
				d.inflight = m.clock
			}
			d.markEarly(m.clock)
			return nil
		}
		ev := m.flush(d)
		return []event{ev}
	case "wipe":
		var evs []event
		if d.inflight >= 0 && len(d.pending) > 0 {
			// Part of the journal may already have reached the server.
			ev := m.flush(d)
			for i := range ev.ops {
				ev.ops[i].maybe, ev.ops[i].halfDone = true, true
				if k := ev.ops[i].op.Kind; m.lacking["MOVE"] && (k == "move" || k == "trash") {
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
	case "watch":
		d.watching = true
		if d.inflight < 0 && len(d.pending) > 0 {
			d.inflight = m.clock
		}
		d.markEarly(m.clock)
		return nil
	case "unwatch":
		d.watching = false
		return nil
	case "crash", "offline", "online", "drop", "fail", "latency":
		return nil
	}
	m.local(d, op)
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
		if p.op.Kind != "move" && p.op.Kind != "trash" {
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
		s = s.union(x.at(d.lastSync - 1))
	}
	for _, v := range x.hist {
		if v.at > d.lastSync && v.from <= d.lastSync {
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
	for _, name := range m.order {
		d := m.devs[name]
		if d.inflight < 0 {
			continue
		}
		if s, ok := d.local[id]; ok && s.loc.has(mb) {
			return true
		}
		for _, p := range d.pending {
			if !p.early {
				continue
			}
			switch k := p.op.Kind; {
			case (k == "move" || k == "trash") && (p.op.Dest == mb || (k == "trash" && p.op.Trash == mb)):
				if slices.Contains(p.targets, id) {
					return true
				}
			case k == "append" || k == "copy" || k == "reply" || k == "forward":
				if slices.Contains(p.newIDs, id) {
					return true
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
	for _, n := range m.order {
		o := m.devs[n]
		if o == d || o.inflight < 0 {
			continue
		}
		for _, p := range o.pending {
			if !p.early || !slices.Contains(p.targets, id) {
				continue
			}
			if f, v := flagOfOp(p.op); f == name {
				out |= bitOf(v)
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

func flagOfOp(op *Op) (string, bool) {
	switch op.Kind {
	case "read":
		return `\Seen`, true
	case "unread":
		return `\Seen`, false
	case "flag":
		return canonFlag(op.Flag), true
	case "unflag":
		return canonFlag(op.Flag), false
	case "reply":
		return `\Answered`, true
	case "forward":
		return `$Forwarded`, true
	}
	return "", false
}

// local records a device's offline op in its journal and its own view.
func (m *model) local(d *deviceModel, op *Op) {
	p := pendingOp{op: op, maybe: op.Err != ""}
	switch op.Kind {
	case "append":
		for _, l := range op.Labels {
			id := m.newInstance(l)
			p.newIDs = append(p.newIDs, id)
			d.local[id] = instState{loc: locSet{op.Mailbox}, flags: flagsOf(op.Flags)}
		}
	case "read", "unread", "flag", "unflag", "reply", "forward":
		ids, sure := m.resolve(d, op.Labels, op.Mailbox)
		p.maybe = p.maybe || !sure
		name, v := flagOfOp(op)
		for _, id := range ids {
			s := m.view(d, id)
			p.targets = append(p.targets, id)
			p.before = append(p.before, s.flags.get(name)|m.othersMayHaveWritten(d, id, name))
			s.flags = s.flags.set(name, bitOf(v))
			d.local[id] = s
		}
		if op.Kind == "reply" || op.Kind == "forward" {
			sent := op.Sent
			if sent == "" {
				sent = "Sent"
			}
			m.known(sent)
			id := m.newInstance(op.Dest)
			p.newIDs = append(p.newIDs, id)
			d.local[id] = instState{loc: locSet{sent}, free: true}
		}
	case "move", "trash", "delete", "copy":
		if (op.Kind == "trash" && op.Trash == "") || ((op.Kind == "move" || op.Kind == "copy") && op.Dest == "") {
			return // no destination: the step cannot have done anything
		}
		ids, sure := m.resolve(d, op.Labels, op.Mailbox)
		p.maybe = p.maybe || !sure
		for _, id := range ids {
			s := m.view(d, id)
			p.targets = append(p.targets, id)
			p.before = append(p.before, eitherValue)
			if op.Kind == "move" || op.Kind == "trash" {
				p.chainFrom = append(p.chainFrom, d.movedFrom(id))
			}
			switch op.Kind {
			case "move":
				s.loc = locSet{op.Dest}
			case "trash":
				s.loc = locSet{op.Trash}
			case "delete":
				s.loc = locSet{gone}
			case "copy":
				nid := m.newCopy(id)
				p.newIDs = append(p.newIDs, nid)
				d.local[nid] = instState{loc: locSet{op.Dest}, flags: s.flags}
				continue
			}
			d.local[id] = s
		}
	case "create":
		d.localMB[op.Mailbox] = mayBeTrue
	case "remove":
		d.localMB[op.Mailbox] = mayBeFalse
	case "rename":
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
