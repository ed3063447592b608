package check

import (
	"slices"
	"sort"
	"strings"
)

// overlay is one order's tentative changes on top of the model's state.
type overlay struct {
	m    *model
	at   int // >= 0: on top of the state as of that clock, not the current one
	inst map[int]instState
	mb   map[string]bits
	// racing holds the events applied together in this overlay when they race (a
	// cluster of several, or work in flight replayed among the clusters since): the
	// narrow conditions of relaxations look for the event kinds that must race.
	racing []event
}

// racesWith reports whether an event of ov's race other than one of actor holds an op
// for which f holds.
func (ov *overlay) racesWith(actor string, f func(ev event, p *pendingOp) bool) bool {
	for _, ev := range ov.racing {
		if ev.dev != nil && ev.dev.name == actor {
			continue
		}
		for i := range ev.ops {
			if f(ev, &ev.ops[i]) {
				return true
			}
		}
	}
	return false
}

func (m *model) overlay() *overlay {
	return &overlay{m: m, at: -1, inst: map[int]instState{}, mb: map[string]bits{}}
}

// overlayAt is an overlay on top of the state as of clock t.
func (m *model) overlayAt(t int) *overlay {
	o := m.overlay()
	o.at = t
	return o
}

func (o *overlay) get(id int) instState {
	if s, ok := o.inst[id]; ok {
		return s
	}
	if o.at >= 0 {
		return o.m.insts[id].at(o.at)
	}
	return o.m.insts[id].st
}

func (o *overlay) put(id int, s instState) { o.inst[id] = s }

func (o *overlay) exists(mb string) bits {
	if v, ok := o.mb[mb]; ok {
		return v
	}
	if mm := o.m.mboxes[mb]; mm != nil {
		if o.at >= 0 {
			return mm.existsAt(o.at)
		}
		return mm.exists
	}
	return mayBeFalse
}

// existsAt returns whether the mailbox may exist as of clock t.
func (mm *mailboxModel) existsAt(t int) bits {
	v := mayBeFalse
	for _, h := range mm.hist {
		if h.at > t {
			break
		}
		v = h.exists
	}
	return v
}

func (o *overlay) mailboxNames() []string {
	var names []string
	for n := range o.m.mboxes {
		names = append(names, n)
	}
	for n := range o.mb {
		if o.m.mboxes[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names) // a rename may read what an earlier name's step wrote
	return names
}

// renamed maps name under a rename of old to new (children follow), reporting whether it did.
func renamed(name, old, new string) (string, bool) {
	if name == old {
		return new, true
	}
	for _, sep := range []string{"/", "."} {
		if rest, ok := strings.CutPrefix(name, old+sep); ok {
			return new + sep + rest, true
		}
	}
	return name, false
}

// permutations returns the orders in which n racing events are applied.
func permutations(n int) [][]int {
	if n <= 1 {
		return [][]int{{0}}
	}
	if n > maxExactRace {
		var out [][]int
		for r := 0; r < n; r++ {
			fwd, back := make([]int, n), make([]int, n)
			for i := 0; i < n; i++ {
				fwd[i] = (r + i) % n
				back[i] = (r - i + n) % n
			}
			out = append(out, fwd, back)
		}
		return out
	}
	var out [][]int
	var rec func(cur []int, used []bool)
	rec = func(cur []int, used []bool) {
		if len(cur) == n {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := 0; i < n; i++ {
			if !used[i] {
				used[i] = true
				rec(append(cur, i), used)
				used[i] = false
			}
		}
	}
	rec(nil, make([]bool, n))
	return out
}

// apply applies racing events as one cluster: in every order, outcomes united.
func (m *model) apply(evs []event) {
	if len(evs) == 0 {
		return
	}
	m.clock++
	c := m.clock
	defer m.logCluster(c, evs)
	if len(evs) == 1 && evs[0].inflight < 0 {
		ov := m.overlay()
		m.applyEvent(ov, evs[0])
		m.commit(evs, ov.inst, ov.mb, c)
		return
	}
	orders := permutations(len(evs))
	acc := map[int]instState{}
	touched := map[int]int{}
	accMB := map[string]bits{}
	touchedMB := map[string]int{}
	for _, order := range orders {
		ov := m.overlay()
		ov.racing = evs
		for _, i := range order {
			m.applyEvent(ov, evs[i])
		}
		for id, s := range ov.inst {
			if n := touched[id]; n == 0 {
				acc[id] = s
			} else {
				acc[id] = acc[id].union(s)
			}
			touched[id]++
		}
		for mb, v := range ov.mb {
			accMB[mb] |= v
			touchedMB[mb]++
		}
	}
	for id, n := range touched {
		if n < len(orders) {
			acc[id] = acc[id].union(m.insts[id].st)
		}
	}
	for mb, n := range touchedMB {
		if n < len(orders) {
			accMB[mb] |= m.overlay().exists(mb)
		}
	}
	// Work of a failed sync (or a watching device) may have arrived at any time since it
	// started: its early part is replayed before each cluster since in turn, the rest last.
	// Early work comes in waves, one per failed sync that first sent it: a wave arrives
	// after the clusters before its sync and not before the waves ahead of it, so the
	// work of a cut round is a fact from any cluster on, while what the device did after
	// that round (and a later failed sync sent) is not.
	for _, ev := range evs {
		if ev.inflight < 0 || !m.relax(rInFlight) {
			continue
		}
		waves, late := splitWaves(ev)
		// The clusters since, then the events racing it now; the early work may have
		// arrived before any of them.
		var since [][]event
		var sinceAt []int
		for _, lc := range m.log {
			if lc.at > ev.inflight {
				since = append(since, lc.evs)
				sinceAt = append(sinceAt, lc.at)
			}
		}
		since = append(since, evs)
		sinceAt = append(sinceAt, c)
		var racing []event
		for _, evs := range since {
			racing = append(racing, evs...)
		}
		for _, slots := range waveSlots(waves, sinceAt) {
			ov := m.overlayAt(ev.inflight)
			ov.racing = racing
			w := 0
			for i, evs := range since {
				for ; w < len(waves) && slots[w] == i; w++ {
					m.applyEvent(ov, waves[w].ev)
				}
				for _, e := range evs {
					if e.dev != ev.dev {
						m.applyEvent(ov, e)
					}
				}
			}
			m.applyEvent(ov, late)
			m.uniteEarly(acc, accMB, ov, ev.inflight)
		}
	}
	m.commit(evs, acc, accMB, c)
}

// wave is early work of one device that a failed sync after the cluster at clock at first
// sent.
type wave struct {
	at int
	ev event
}

// splitWaves splits ev's ops into its early waves, in journal order, and the late rest.
func splitWaves(ev event) ([]wave, event) {
	late := ev
	late.ops = nil
	var waves []wave
	for _, p := range ev.ops {
		if !p.early {
			late.ops = append(late.ops, p)
			continue
		}
		if n := len(waves); n == 0 || waves[n-1].at != p.earlyAt {
			w := ev
			w.ops = nil
			waves = append(waves, wave{at: p.earlyAt, ev: w})
		}
		w := &waves[len(waves)-1]
		w.ev.ops = append(w.ev.ops, p)
	}
	return waves, late
}

// maxWaveReplays bounds the replays of work in flight: past it, every wave arrives with
// the first (the model before waves), which is looser.
const maxWaveReplays = 256

// waveSlots returns the ways waves may have arrived among clusters at clocks sinceAt: for
// each, the index of the cluster each wave arrived before. A wave arrives before a cluster
// after its own clock, and not before the wave ahead of it.
func waveSlots(waves []wave, sinceAt []int) [][]int {
	first := make([]int, len(waves))
	for w, wv := range waves {
		for first[w] < len(sinceAt)-1 && sinceAt[first[w]] <= wv.at {
			first[w]++
		}
	}
	var out [][]int
	cur := make([]int, len(waves))
	var rec func(w, from int) bool
	rec = func(w, from int) bool {
		if w == len(waves) {
			out = append(out, append([]int(nil), cur...))
			return len(out) <= maxWaveReplays
		}
		for k := max(from, first[w]); k < len(sinceAt); k++ {
			cur[w] = k
			if !rec(w+1, k) {
				return false
			}
		}
		return true
	}
	if rec(0, 0) {
		return out
	}
	out = nil
	for k := first[0]; k < len(sinceAt); k++ {
		slots := make([]int, len(waves))
		for w := range slots {
			slots[w] = k
		}
		out = append(out, slots)
	}
	return out
}

// logCluster keeps cluster c for replays of work in flight. Only clusters after the start
// of some device's work in flight are ever replayed: with none in flight, the log is empty.
func (m *model) logCluster(c int, evs []event) {
	for _, name := range m.order {
		if m.devs[name].inflight >= 0 {
			m.log = append(m.log, loggedCluster{at: c, evs: evs})
			return
		}
	}
	m.log = m.log[:0]
}

// uniteEarly adds to acc and accMB the outcome ov of work in flight since clock t that
// arrived early.
func (m *model) uniteEarly(acc map[int]instState, accMB map[string]bits, ov *overlay, t int) {
	ids := make([]int, 0, len(ov.inst))
	for id := range ov.inst {
		ids = append(ids, id)
	}
	sort.Ints(ids) // spreadToCopies reads what it wrote for an earlier id
	for _, id := range ids {
		early := ov.inst[id]
		x := m.insts[id]
		cur, ok := acc[id]
		if !ok {
			cur = x.st
		}
		if x.touched > t || len(x.hist) == 0 {
			cur = cur.union(x.st) // changed since: the work may also have been undone
		}
		acc[id] = cur.union(early)
	}
	// A copy made since then took its source's flags as they were on the server: with or
	// without the in-flight flag changes.
	for _, id := range ids {
		if m.copyMadeSince(id, t) && m.relax(rCopyFlagsInFlight) {
			m.spreadToCopies(acc, id, m.insts[id].at(t).flags, ov.inst[id].flags, t)
		}
	}
	for mb, early := range ov.mb {
		mm := m.mboxes[mb]
		if mm == nil || len(mm.hist) == 0 || mm.hist[len(mm.hist)-1].at <= t {
			continue
		}
		cur, ok := accMB[mb]
		if !ok {
			cur = mm.exists
		}
		accMB[mb] = cur | mm.exists | early
	}
}

// plainExpunge applies the side effect of a device's expunge in mb on a server without
// UIDPLUS (RFC 4549 §4.2.4: clear \Deleted on the others, EXPUNGE, mark them again): a
// message marked \Deleted may be expunged with ours when, in the race, another actor set
// \Deleted on it (a flag, a move without MOVE) or expunged in mb the same way (R10).
func (m *model) plainExpunge(ov *overlay, actor, mb string, mine []int) {
	if !m.lacking["UIDPLUS"] || len(ov.racing) == 0 {
		return
	}
	otherExpunge := ov.racesWith(actor, func(ev event, p *pendingOp) bool {
		return ev.dev != nil && p.op.Mailbox == mb && (p.kind == kDelete || (p.kind.isMove() && m.lacking["MOVE"]))
	})
	for _, x := range m.insts {
		if slices.Contains(mine, x.id) {
			continue
		}
		s := ov.get(x.id)
		if !s.loc.has(mb) || !s.flags.get(`\Deleted`).allows(true) {
			continue
		}
		marked := otherExpunge || ov.racesWith(actor, func(ev event, p *pendingOp) bool {
			if !slices.Contains(p.targets, x.id) {
				return false
			}
			if name, v := flagOfOp(p.kind, p.op); name == `\Deleted` && v {
				return true
			}
			return ev.dev != nil && p.kind.isMove() && m.lacking["MOVE"]
		})
		if marked && m.relax(rExpungeNoUIDPlus) {
			after := s
			after.loc = s.loc.with(gone)
			ov.put(x.id, after)
		}
	}
}

// copyMadeSince reports whether a copy of src was made after clock t.
func (m *model) copyMadeSince(src, t int) bool {
	for _, y := range m.insts {
		if y.src == src && (len(y.hist) == 0 || y.hist[0].at > t) {
			return true
		}
	}
	return false
}

// copiesSince returns the copies of src (and their copies) made after clock t that are on
// the server in ov.
func (m *model) copiesSince(ov *overlay, src, t int) []int {
	var out []int
	for _, y := range m.insts {
		if y.src != src || (len(y.hist) > 0 && y.hist[0].at <= t) {
			continue
		}
		if st := ov.get(y.id); !st.loc.only(gone) {
			out = append(out, y.id)
		}
		out = append(out, m.copiesSince(ov, y.id, t)...)
	}
	return out
}

// spreadToCopies allows, on every copy of src made after clock t (and on their copies),
// the values that flags changed from before to after on src.
func (m *model) spreadToCopies(acc map[int]instState, src int, before, after flagMap, t int) {
	var changed flagMap
	for _, f := range after.union(before) {
		if v := after.get(f.name); v != before.get(f.name) {
			changed = changed.set(f.name, v)
		}
	}
	if len(changed) == 0 {
		return
	}
	for _, y := range m.insts {
		if y.src != src || (len(y.hist) > 0 && y.hist[0].at <= t) {
			continue
		}
		cur, ok := acc[y.id]
		if !ok {
			cur = y.st
		}
		if cur.loc.only(gone) {
			continue
		}
		prev := cur.flags
		for _, f := range changed {
			cur.flags = cur.flags.set(f.name, cur.flags.get(f.name)|f.v)
		}
		acc[y.id] = cur
		m.spreadToCopies(acc, y.id, prev, cur.flags, t)
	}
}

// commit records the outcome of cluster c.
func (m *model) commit(evs []event, acc map[int]instState, accMB map[string]bits, c int) {
	from := c
	for _, ev := range evs {
		if ev.inflight >= 0 && ev.inflight+1 < from {
			from = ev.inflight + 1
		}
	}
	for id, s := range acc {
		x := m.insts[id]
		x.touched = c
		if len(x.hist) > 0 && s.equal(x.st) {
			continue
		}
		if len(x.hist) == 0 && s.loc.only(gone) {
			continue // never made
		}
		if len(x.hist) == 0 {
			for _, f := range x.early {
				s.flags = s.flags.set(f.name, s.flags.get(f.name)|f.v)
			}
		}
		x.st = s
		x.hist = append(x.hist, version{at: c, st: s, from: from})
	}
	for mb, v := range accMB {
		mm := m.mboxes[mb]
		if mm == nil {
			mm = &mailboxModel{exists: mayBeFalse}
			m.mboxes[mb] = mm
		}
		if v != mm.exists || len(mm.hist) == 0 {
			mm.exists = v
			mm.hist = append(mm.hist, mboxVersion{at: c, exists: v})
		}
	}
	for _, ev := range evs {
		if d := ev.dev; d != nil && !ev.noSync {
			d.synced, d.lastSync, d.raced = true, c, len(evs) > 1 || ev.inflight >= 0
		}
	}
}

func (m *model) applyEvent(ov *overlay, ev event) {
	for i := range ev.ops {
		m.applyOp(ov, ev.dev != nil, &ev.ops[i])
	}
}

// applyOp applies one op: the deterministic rule of its kind, widened by the
// relaxations whose narrow condition holds (see relaxations.go).
func (m *model) applyOp(ov *overlay, fromDevice bool, p *pendingOp) {
	op := p.op
	mb := op.Mailbox
	keep := func(id int, before, after instState) {
		if p.maybe && m.relax(rFailedStep) {
			after = after.union(before)
		}
		ov.put(id, after)
	}
	switch p.kind {
	case kDeliver, kAppend:
		for _, id := range p.newIDs {
			st := instState{loc: locSet{mb}, flags: flagsOf(op.Flags)}
			for _, f := range m.insts[id].early {
				st.flags = st.flags.set(f.name, st.flags.get(f.name)|f.v) // R5, see instance.early
			}
			if ov.exists(mb) != mayBeTrue {
				st.loc = st.loc.with(gone)
				if fromDevice && m.relax(rRescueInbox) {
					st.loc = st.loc.with("INBOX")
				}
			}
			keep(id, instState{loc: locSet{gone}}, st)
		}
	case kRead, kUnread, kFlag, kUnflag, kReply, kForward:
		name, v := flagOfOp(p.kind, op)
		for i, id := range p.targets {
			s := ov.get(id)
			if s.loc.only(gone) {
				x := m.insts[id]
				if fromDevice && len(x.hist) == 0 && m.relax(rEarlyFlag) {
					x.early = x.early.set(name, x.early.get(name)|bitOf(v))
				}
				if fromDevice && len(x.hist) > 0 {
					copies := m.copiesSince(ov, id, m.devs[op.Actor].lastSync)
					if len(copies) > 0 && m.relax(rFlagToCopyExpunged) {
						for _, y := range copies {
							ys := ov.get(y)
							ya := ys
							ya.flags = ys.flags.set(name, ys.flags.get(name)|bitOf(v))
							keep(y, ys, ya)
						}
					}
				}
				continue
			}
			cur := s.flags.get(name)
			nv := bitOf(v)
			if fromDevice && i < len(p.before) && p.before[i]&bitOf(v) != 0 && cur&^nv != 0 && m.relax(rNoWriteSeen) {
				nv |= cur
			}
			if fromDevice && name == `\Deleted` && v && m.lacking["MOVE"] && cur&^nv != 0 &&
				ov.racesWith(op.Actor, func(ev event, q *pendingOp) bool {
					return ev.dev != nil && q.kind.isMove() && slices.Contains(q.targets, id)
				}) && m.relax(rDeletedLostNoMove) {
				nv |= cur
			}
			after := s
			after.flags = s.flags.set(name, nv)
			if fromDevice && !s.loc.only(mb) {
				since := m.devs[op.Actor].lastSync
				if copies := m.copiesSince(ov, id, since); len(copies) > 0 && m.relax(rFlagToCopies) {
					after.flags = s.flags.set(name, cur|nv)
					for _, y := range copies {
						ys := ov.get(y)
						ya := ys
						ya.flags = ys.flags.set(name, ys.flags.get(name)|nv)
						keep(y, ys, ya)
					}
				}
			}
			keep(id, s, after)
		}
		if p.kind == kReply || p.kind == kForward {
			sent := op.Sent
			if sent == "" {
				sent = "Sent"
			}
			for _, id := range p.newIDs {
				st := instState{loc: locSet{sent}, free: true}
				if ov.exists(sent) != mayBeTrue {
					st.loc = st.loc.with(gone)
					if m.relax(rRescueInbox) {
						st.loc = st.loc.with("INBOX")
					}
				}
				keep(id, instState{loc: locSet{gone}}, st)
			}
		}
	case kMove, kTrash:
		dest := op.Dest
		if p.kind == kTrash {
			dest = op.Trash
		}
		if dest == "" {
			break // no destination: the step cannot have done anything
		}
		if fromDevice && m.lacking["MOVE"] {
			m.plainExpunge(ov, op.Actor, mb, p.targets)
		}
		for i, id := range p.targets {
			if i < len(p.leftovers) && m.relax(rWipedMoveNoMove) {
				s := ov.get(id)
				if s.loc.has(mb) {
					keep(p.leftovers[i], instState{loc: locSet{gone}}, instState{loc: locSet{dest, gone}, flags: s.flags})
					s.flags = s.flags.set(`\Deleted`, s.flags.get(`\Deleted`)|mayBeTrue)
					ov.put(id, s)
				}
			}
		}
		for i, id := range p.targets {
			s := ov.get(id)
			if !s.loc.has(mb) {
				continue // moved or expunged by someone else first: this move loses
			}
			after := s
			after.loc = s.loc.without(mb).with(dest)
			if ov.exists(dest) != mayBeTrue {
				after.loc = after.loc.with(mb)
				if fromDevice && i < len(p.chainFrom) && p.chainFrom[i] != "" && m.relax(rFoldMoves) {
					after.loc = after.loc.with(p.chainFrom[i])
				}
				if fromDevice && len(m.insts[id].hist) == 0 && m.relax(rRescueInbox) {
					after.loc = after.loc.with("INBOX")
				}
			}
			keep(id, s, after)
		}
	case kDelete:
		if fromDevice {
			m.plainExpunge(ov, op.Actor, mb, p.targets)
		}
		for _, id := range p.targets {
			s := ov.get(id)
			if p.halfDone && m.relax(rWipedDelete) {
				s.flags = s.flags.set(`\Deleted`, s.flags.get(`\Deleted`)|mayBeTrue)
			}
			after := s
			switch {
			case fromDevice && !s.loc.only(gone):
				after.loc = locSet{gone} // expunge beats move: the delete follows the message
			case s.loc.has(mb):
				after.loc = s.loc.without(mb).with(gone)
			default:
				continue
			}
			keep(id, s, after)
		}
	case kCopy:
		for i, id := range p.targets {
			if i >= len(p.newIDs) {
				break
			}
			s := ov.get(id)
			if !s.loc.has(mb) && (!fromDevice || s.loc.only(gone) || !m.relax(rCopyFollowsMove)) {
				continue
			}
			st := instState{loc: locSet{op.Dest}, flags: s.flags, free: s.free}
			if !s.loc.only(mb) || ov.exists(op.Dest) != mayBeTrue {
				st.loc = st.loc.with(gone)
			}
			if fromDevice && ov.exists(op.Dest) != mayBeTrue && m.relax(rRescueInbox) {
				st.loc = st.loc.with("INBOX")
			}
			keep(p.newIDs[i], instState{loc: locSet{gone}}, st)
		}
	case kCreate:
		v := mayBeTrue
		if p.maybe && m.relax(rFailedStep) {
			v |= ov.exists(mb)
		}
		ov.mb[mb] = v
	case kRemove:
		for _, name := range ov.mailboxNames() {
			if _, ok := renamed(name, mb, ""); ok {
				v := mayBeFalse
				if p.maybe && m.relax(rFailedStep) {
					v |= ov.exists(name)
				}
				ov.mb[name] = v
			}
		}
		for id := range m.insts {
			s := ov.get(id)
			after := s
			for _, l := range s.loc {
				if _, ok := renamed(l, mb, ""); ok && l != gone {
					after.loc = after.loc.without(l).with(gone)
				}
			}
			if !after.loc.equal(s.loc) {
				keep(id, s, after)
			}
		}
	case kRename:
		maybe := p.maybe && m.relax(rFailedStep)
		for _, name := range ov.mailboxNames() {
			if nn, ok := renamed(name, mb, op.Dest); ok {
				old := ov.exists(name)
				if old == mayBeFalse {
					continue
				}
				prev := ov.exists(nn)
				nv := mayBeTrue
				if old != mayBeTrue || maybe {
					nv |= prev
				}
				if maybe {
					ov.mb[name] = old | mayBeFalse
				} else {
					ov.mb[name] = mayBeFalse
				}
				ov.mb[nn] = nv
			}
		}
		for id := range m.insts {
			s := ov.get(id)
			after := s
			for _, l := range s.loc {
				if nn, ok := renamed(l, mb, op.Dest); ok && l != gone {
					after.loc = after.loc.without(l).with(nn)
				}
			}
			if !after.loc.equal(s.loc) {
				keep(id, s, after)
			}
		}
	}
}
