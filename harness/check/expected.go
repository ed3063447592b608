package check

import (
	"fmt"
	"sort"
	"strings"
)

// obsMsg is one message with a given label on the server.
type obsMsg struct {
	mailbox string
	flags   []string
}

// match pairs the server's messages of one label with the model's instances of it.
type match struct {
	insts    []*instance
	obs      []obsMsg
	assigned []int // per obs: index into insts, or -1
}

func (mt *match) compatible(oi, ii int) bool {
	return mt.insts[ii].st.loc.has(mt.obs[oi].mailbox)
}

func (mt *match) flagMismatches(oi, ii int) []string {
	x := mt.insts[ii].st
	if x.free {
		return nil
	}
	var bad []string
	has := map[string]bool{}
	for _, f := range mt.obs[oi].flags {
		f = canonFlag(f)
		if f == `\Recent` {
			continue
		}
		has[f] = true
		if !x.flags.get(f).allows(true) {
			bad = append(bad, f)
		}
	}
	for _, fv := range x.flags {
		if !has[fv.name] && !fv.v.allows(false) {
			bad = append(bad, fv.name)
		}
	}
	return bad
}

// cost orders assignments: fewest unexplained messages and lost instances first, then
// fewest flag mismatches.
func (mt *match) cost(assigned []int) int {
	used := make([]bool, len(mt.insts))
	cost := 0
	for oi, ii := range assigned {
		if ii < 0 {
			cost += 1000
			continue
		}
		used[ii] = true
		cost += len(mt.flagMismatches(oi, ii))
	}
	for ii, u := range used {
		if !u && !mt.insts[ii].st.loc.has(gone) {
			cost += 1000
		}
	}
	return cost
}

func (mt *match) solve() {
	n := len(mt.obs)
	mt.assigned = make([]int, n)
	for i := range mt.assigned {
		mt.assigned[i] = -1
	}
	if n == 0 || len(mt.insts) == 0 {
		return
	}
	if n <= 5 && len(mt.insts) <= 5 {
		best := -1
		cur := make([]int, n)
		used := make([]bool, len(mt.insts))
		var rec func(oi int)
		rec = func(oi int) {
			if oi == n {
				if c := mt.cost(cur); best < 0 || c < best {
					best = c
					copy(mt.assigned, cur)
				}
				return
			}
			cur[oi] = -1
			rec(oi + 1)
			for ii := range mt.insts {
				if !used[ii] && mt.compatible(oi, ii) {
					used[ii] = true
					cur[oi] = ii
					rec(oi + 1)
					used[ii] = false
				}
			}
			cur[oi] = -1
		}
		rec(0)
		return
	}
	// Many copies of one label: greedy, instances that must be there first, flag-compatible
	// pairs first.
	used := make([]bool, len(mt.insts))
	for pass := 0; pass < 4; pass++ {
		mustOnly, flagsToo := pass < 2, pass%2 == 0
		for oi := range mt.obs {
			if mt.assigned[oi] >= 0 {
				continue
			}
			for ii := range mt.insts {
				if used[ii] || !mt.compatible(oi, ii) || (mustOnly && mt.insts[ii].st.loc.has(gone)) {
					continue
				}
				if flagsToo && len(mt.flagMismatches(oi, ii)) > 0 {
					continue
				}
				used[ii] = true
				mt.assigned[oi] = ii
				break
			}
		}
	}
}

// modelResults replays the history and checks I3–I7 on the server's state, with the
// relaxations the policies of the devices' engine allow.
func (c *checker) modelResults() []Result {
	return c.judge(allowed(c.policies)).results
}

// judgement is the outcome of the model under one set of relaxations.
type judgement struct {
	results []Result
	used    relaxSet // the relaxations whose condition held
}

// judge replays the history with the relaxations allow and checks I3–I7.
func (c *checker) judge(allow relaxSet) judgement {
	m := newModel(c.in.Devices, allow)
	m.replay(c.in.History)
	return judgement{results: c.modelChecks(m), used: m.used}
}

// modelChecks checks I3–I7 on the server's state against the replayed model m.
func (c *checker) modelChecks(m *model) []Result {

	obs := map[string][]obsMsg{}
	for _, mb := range c.in.Server.Mailboxes {
		for _, msg := range mb.Messages {
			obs[msg.Label] = append(obs[msg.Label], obsMsg{mailbox: mb.Name, flags: msg.Flags})
		}
	}
	labels := map[string]bool{}
	for l := range obs {
		labels[l] = true
	}
	for l, ids := range m.byLabel {
		for _, id := range ids {
			if len(m.insts[id].hist) > 0 {
				labels[l] = true
				break
			}
		}
	}
	var loss, dup, resurrect, flags []Result
	for l := range labels {
		if m.simple(l, obs[l]) {
			continue
		}
		mt := &match{obs: obs[l]}
		for _, id := range m.byLabel[l] {
			if x := m.insts[id]; len(x.hist) > 0 {
				mt.insts = append(mt.insts, x)
			}
		}
		mt.solve()
		used := make([]bool, len(mt.insts))
		var extra []obsMsg
		for oi, ii := range mt.assigned {
			if ii < 0 {
				extra = append(extra, mt.obs[oi])
				continue
			}
			used[ii] = true
			if bad := mt.flagMismatches(oi, ii); len(bad) > 0 {
				flags = append(flags, c.flagResult(l, mt.obs[oi], mt.insts[ii].st, bad))
			}
		}
		var lost []*instance
		for ii, u := range used {
			if !u && !mt.insts[ii].st.loc.has(gone) {
				lost = append(lost, mt.insts[ii])
			}
		}
		if len(lost) > 0 {
			var where []string
			for _, x := range lost {
				where = append(where, strings.Join(x.st.loc.mailboxes(), " or "))
			}
			msg := fmt.Sprintf("%s is missing on the server (expected in %s)", l, strings.Join(where, ", "))
			if len(lost) > 1 {
				msg = fmt.Sprintf("%d copies of %s are missing on the server (expected in %s)", len(lost), l, strings.Join(where, ", "))
			}
			loss = append(loss, c.countResult(I3NoLoss, msg, l, mt))
		}
		if len(extra) == 0 {
			continue
		}
		alive := false
		for _, x := range mt.insts {
			if !x.st.loc.only(gone) {
				alive = true
			}
		}
		switch {
		case alive || len(mt.insts) == 0:
			dup = append(dup, c.countResult(I4NoDuplicates, c.dupMessage(l, mt, extra), l, mt))
		default:
			var where []string
			for _, o := range extra {
				where = append(where, o.mailbox)
			}
			msg := fmt.Sprintf("%s was expunged but is back in %s on the server", l, strings.Join(uniq(where), " and "))
			resurrect = append(resurrect, c.countResult(I5NoResurrect, msg, l, mt))
		}
	}
	var out []Result
	for _, rs := range [][]Result{loss, dup, resurrect, flags} {
		sort.SliceStable(rs, func(i, j int) bool { return naturalLess(rs[i].Labels[0], rs[j].Labels[0]) })
		out = append(out, rs...)
	}
	out = append(out, c.mailboxResults(m)...)
	return out
}

// simple reports whether the one instance of l and its one message on the server agree
// (the common case, checked without allocating).
func (m *model) simple(l string, obs []obsMsg) bool {
	ids := m.byLabel[l]
	if len(ids) != 1 || len(obs) != 1 {
		return false
	}
	x := m.insts[ids[0]]
	if len(x.hist) == 0 || !x.st.loc.has(obs[0].mailbox) {
		return false
	}
	if x.st.free {
		return true
	}
	for _, f := range obs[0].flags {
		if f = canonFlag(f); f != `\Recent` && !x.st.flags.get(f).allows(true) {
			return false
		}
	}
	for _, fv := range x.st.flags {
		if fv.v.allows(false) {
			continue
		}
		found := false
		for _, f := range obs[0].flags {
			found = found || canonFlag(f) == fv.name
		}
		if !found {
			return false
		}
	}
	return true
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func (c *checker) dupMessage(l string, mt *match, extra []obsMsg) string {
	if len(mt.insts) == 0 {
		return fmt.Sprintf("%s is in %s on the server, but nothing in the history made it", labelName(l), extra[0].mailbox)
	}
	count := map[string]int{}
	for _, o := range mt.obs {
		count[o.mailbox]++
	}
	for _, o := range extra {
		if count[o.mailbox] > 1 {
			return fmt.Sprintf("%s is %s in %s on the server", l, times(count[o.mailbox]), o.mailbox)
		}
	}
	var where []string
	for mb := range count {
		where = append(where, mb)
	}
	sort.Strings(where)
	allowed := 0
	for _, x := range mt.insts {
		if !x.st.loc.only(gone) {
			allowed++
		}
	}
	return fmt.Sprintf("%s is in %s on the server; the history allows %s", l, strings.Join(where, " and "), strings.TrimPrefix(times(allowed), "not"))
}

// countResult builds a result with a table of expected and seen counts of label per mailbox.
func (c *checker) countResult(id, msg, l string, mt *match) Result {
	r := c.result(id, msg)
	r.Labels = []string{l}
	mbs := map[string]bool{}
	for _, x := range mt.insts {
		for _, mb := range x.st.loc.mailboxes() {
			mbs[mb] = true
		}
	}
	for _, o := range mt.obs {
		mbs[o.mailbox] = true
	}
	for di := range c.in.Devices {
		for mb, byLabel := range c.viewIndex(di) {
			if len(byLabel[l]) > 0 {
				mbs[mb] = true
			}
		}
	}
	cols := append([]string{"label", "mailbox", "expected", "server"}, c.deviceNames()...)
	t := &Table{Columns: cols}
	agree := make([]bool, len(c.in.Devices))
	for i := range agree {
		agree[i] = true
	}
	for _, mb := range sortedKeys(mbs) {
		lo, hi := 0, 0
		for _, x := range mt.insts {
			if x.st.loc.only(mb) {
				lo++
			}
			if x.st.loc.has(mb) {
				hi++
			}
		}
		exp := fmt.Sprint(lo)
		if hi != lo {
			exp = fmt.Sprintf("%d–%d", lo, hi)
		}
		n := len(c.serverIndex()[mb][l])
		row := []string{l, mb, exp, fmt.Sprint(n)}
		for di := range c.in.Devices {
			dn := len(c.viewIndex(di)[mb][l])
			row = append(row, fmt.Sprint(dn))
			if dn != n {
				agree[di] = false
			}
		}
		t.Rows = append(t.Rows, row)
	}
	r.Table = t
	for di, d := range c.in.Devices {
		if agree[di] {
			r.Devices = append(r.Devices, d.Name)
		}
	}
	return r
}

func (c *checker) flagResult(l string, o obsMsg, want instState, bad []string) Result {
	sort.Strings(bad)
	has := map[string]bool{}
	for _, f := range o.flags {
		has[canonFlag(f)] = true
	}
	var parts []string
	for _, f := range bad {
		if has[f] {
			parts = append(parts, "has "+f)
		} else {
			parts = append(parts, "lacks "+f)
		}
	}
	msg := fmt.Sprintf("%s in %s on the server %s", l, o.mailbox, strings.Join(parts, " and "))
	if len(bad) == 1 {
		if has[bad[0]] {
			msg += ", which nobody set"
		} else {
			msg += ", which was set and never cleared"
		}
	}
	r := c.result(I6Flags, msg)
	r.Labels = []string{l}
	cols := append([]string{"label", "mailbox", "expected", "server"}, c.deviceNames()...)
	row := []string{l, o.mailbox, want.flags.describe(), describeFlags(o.flags)}
	for di, d := range c.in.Devices {
		var fs []string
		same := false
		for _, msg := range c.viewIndex(di)[o.mailbox][l] {
			fs = append(fs, describeFlags(msg.Flags))
			if describeFlags(msg.Flags) == describeFlags(o.flags) {
				same = true
			}
		}
		if same {
			r.Devices = append(r.Devices, d.Name)
		}
		row = append(row, dashed(strings.Join(fs, " | ")))
	}
	r.Table = &Table{Columns: cols, Rows: [][]string{row}}
	return r
}

// mailboxResults is I7: created mailboxes exist, removed ones are gone, renamed ones hold
// the old content (the content is I3's check; here the names).
func (c *checker) mailboxResults(m *model) []Result {
	var out []Result
	seen := map[string]bool{}
	for _, mb := range c.in.Server.Mailboxes {
		seen[mb.Name] = true
	}
	names := map[string]bool{}
	for n := range seen {
		names[n] = true
	}
	for n := range m.mboxes {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		mm := m.mboxes[n]
		var msg, exp string
		switch {
		case mm == nil && isParent(n, seen):
			continue // a parent the server made for a mailbox below it
		case mm == nil:
			msg, exp = fmt.Sprintf("%s is on the server, but nothing in the history created it", n), "absent"
		case seen[n] && !mm.exists.allows(true):
			msg, exp = fmt.Sprintf("%s was removed or renamed but is still on the server", n), "absent"
		case !seen[n] && !mm.exists.allows(false):
			msg, exp = fmt.Sprintf("%s should exist but is missing on the server", n), "present"
		default:
			continue
		}
		r := c.result(I7Mailboxes, msg)
		row := []string{n, exp, presence(seen[n])}
		for di, d := range c.in.Devices {
			_, has := c.viewIndex(di)[n]
			row = append(row, presence(has))
			if has == seen[n] {
				r.Devices = append(r.Devices, d.Name)
			}
		}
		r.Table = &Table{Columns: append([]string{"mailbox", "expected", "server"}, c.deviceNames()...), Rows: [][]string{row}}
		out = append(out, r)
	}
	return out
}

// isParent reports whether a mailbox on the server lies below n.
func isParent(n string, onServer map[string]bool) bool {
	for name := range onServer {
		if strings.HasPrefix(name, n+"/") || strings.HasPrefix(name, n+".") {
			return true
		}
	}
	return false
}

func presence(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}

// ExpectedCell is what the expected-state model allows for one message label in one
// mailbox on the server after settling.
type ExpectedCell struct {
	Mailbox, Label string
	// MustBePresent: some message of the label can be nowhere else; otherwise it may be
	// there or not (a race the model cannot decide).
	MustBePresent bool
	// Flags are set for sure; Optional may be set or not. AnyFlags: the model does not know
	// the flags (a reply or forward made by the engine).
	Flags, Optional []string
	AnyFlags        bool
}

// Expectation is the model's expected final state on the server.
type Expectation struct {
	// Cells are the places where a message may be, sorted by mailbox and label.
	Cells []ExpectedCell
	// Labels are every label the history made: a label of Labels with no cell in a
	// mailbox is expected absent there.
	Labels []string
}

// Expected replays in's history under the model behind I3–I7 and returns what it allows
// on the server: for each mailbox and label, whether the message must or may be there and
// which flags it must or may have. Reports show it next to what each lane holds.
func Expected(in Input) Expectation { return ExpectedUnder(in, nil) }

// ExpectedUnder is Expected for an engine that follows the policies p (nil: every policy).
func ExpectedUnder(in Input, p Policies) Expectation {
	m := newModel(in.Devices, allowed(p))
	m.replay(in.History)
	type key struct{ mailbox, label string }
	type acc struct {
		must  bool
		flags flagMap
		seen  bool
		any   bool
	}
	cells := map[key]*acc{}
	var exp Expectation
	for l, ids := range m.byLabel {
		made := false
		for _, id := range ids {
			x := m.insts[id]
			if len(x.hist) == 0 {
				continue
			}
			made = true
			for _, mb := range x.st.loc.mailboxes() {
				k := key{mb, l}
				a := cells[k]
				if a == nil {
					a = &acc{}
					cells[k] = a
				}
				a.must = a.must || x.st.loc.only(mb)
				a.any = a.any || x.st.free
				if a.seen {
					a.flags = a.flags.union(x.st.flags)
				} else {
					a.flags, a.seen = x.st.flags, true
				}
			}
		}
		if made {
			exp.Labels = append(exp.Labels, l)
		}
	}
	for k, a := range cells {
		c := ExpectedCell{Mailbox: k.mailbox, Label: k.label, MustBePresent: a.must, AnyFlags: a.any}
		for _, f := range a.flags {
			switch f.v {
			case mayBeTrue:
				c.Flags = append(c.Flags, f.name)
			case eitherValue:
				c.Optional = append(c.Optional, f.name)
			}
		}
		exp.Cells = append(exp.Cells, c)
	}
	sort.Slice(exp.Cells, func(i, j int) bool {
		a, b := exp.Cells[i], exp.Cells[j]
		if a.Mailbox != b.Mailbox {
			return a.Mailbox < b.Mailbox
		}
		return naturalLess(a.Label, b.Label)
	})
	sort.Slice(exp.Labels, func(i, j int) bool { return naturalLess(exp.Labels[i], exp.Labels[j]) })
	return exp
}
