package harness

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// The timeline: what happened on each lane (a device, or the server) and when, each
// lane's state after every step, and the final state table. Reports show it for failed
// scenarios.

// maxSyncCommands caps the IMAP lines kept per sync round on the timeline.
const maxSyncCommands = reports.HTMLMaxCommands

// serverSnapshotter is implemented by servers that can show their state cheaply, without
// IMAP (the fake server): the timeline then has a server lane state after every step.
type serverSnapshotter interface {
	Snapshot() (check.ServerState, error)
}

// faultVerbs are the steps drawn as faults on the timeline.
var faultVerbs = map[string]bool{
	"uidvalidity-bump": true, "uidvalidity-reset": true, "renumber-silently": true, "drop": true,
	"fail": true, "latency": true, "caps": true, "offline": true, "online": true, "crash": true, "wipe": true,
}

func (r *runner) event(e reports.TimelineEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeline = append(r.timeline, e)
}

// stepEvent records a step that ran from begin for d.
func (r *runner) stepEvent(st *scenarios.Step, begin, d time.Duration, err error) {
	if st.Verb == "concurrently" || st.Verb == "repeat" || st.Verb == "sync" || (st.Actor == "" && st.Verb != "expect") {
		return // blocks show through their steps, syncs record themselves
	}
	e := reports.TimelineEvent{Time: begin, Duration: d, Lane: st.Actor, Kind: reports.EventStep, Line: st.Line, Text: r.lineText(st.Line)}
	switch {
	case st.Verb == "expect":
		e.Kind = reports.EventExpect
		e.Lane = ""
		if x := st.Expect; x != nil && x.Kind != "converged" && x.Kind != "idempotent" {
			e.Lane = whereName(x.Where)
		}
	case faultVerbs[st.Verb]:
		e.Kind = reports.EventFault
	}
	if err != nil {
		e.Error = err.Error()
	}
	r.event(e)
}

// syncEvent records one sync round of d with the IMAP lines it exchanged.
func (r *runner) syncEvent(d *device, line int, text string, begin time.Duration, from int, err error) {
	lines := d.proxy.Transcript()
	if from > len(lines) {
		from = len(lines)
	}
	e := reports.TimelineEvent{Time: begin, Duration: r.since() - begin, Lane: d.name, Kind: reports.EventSync, Line: line, Text: text}
	for _, l := range lines[from:] {
		if len(e.Commands) == maxSyncCommands {
			e.CommandsOmitted++
			continue
		}
		e.Commands = append(e.Commands, reports.TranscriptLine{Device: d.name, Time: l.Time, Dir: string(l.Dir), Text: l.Text})
	}
	if err != nil {
		e.Error = err.Error()
	}
	r.event(e)
}

// snapshotStates records every lane's state after the step on line.
func (r *runner) snapshotStates(ctx context.Context, line int) {
	snap := reports.StateSnapshot{Line: line, Step: r.lineText(line)}
	for _, d := range r.devices {
		v, err := d.dev.View(ctx)
		if err != nil {
			continue
		}
		snap.Lanes = append(snap.Lanes, laneState(d.name, v))
	}
	if s, ok := r.server.(serverSnapshotter); ok {
		if st, err := s.Snapshot(); err == nil {
			snap.Lanes = append(snap.Lanes, laneState(reports.ServerLane, serverReplica(st)))
			r.read("after line "+strconv.Itoa(line), st)
		}
	}
	r.mu.Lock()
	r.states = append(r.states, snap)
	r.mu.Unlock()
}

func laneState(lane string, v clients.Replica) reports.LaneState {
	ls := reports.LaneState{Lane: lane}
	for _, mb := range v.Mailboxes {
		for _, m := range mb.Messages {
			ls.Messages = append(ls.Messages, reports.MessageState{Mailbox: mb.Name, Label: m.Label, Flags: cleanFlags(m.Flags)})
		}
	}
	sort.SliceStable(ls.Messages, func(i, j int) bool {
		a, b := ls.Messages[i], ls.Messages[j]
		if a.Mailbox != b.Mailbox {
			return a.Mailbox < b.Mailbox
		}
		return a.Label < b.Label
	})
	return ls
}

func serverReplica(st check.ServerState) clients.Replica {
	var rep clients.Replica
	for _, mb := range st.Mailboxes {
		m := clients.Mailbox{Name: mb.Name}
		for _, msg := range mb.Messages {
			m.Messages = append(m.Messages, clients.Message{Label: msg.Label, Hash: msg.Hash, Flags: msg.Flags})
		}
		rep.Mailboxes = append(rep.Mailboxes, m)
	}
	return rep
}

type cellKey struct{ mailbox, label string }

func cellsOf(ls reports.LaneState) map[cellKey]reports.StateCell {
	out := map[cellKey]reports.StateCell{}
	for _, m := range ls.Messages {
		k := cellKey{m.Mailbox, m.Label}
		if _, dup := out[k]; dup {
			continue
		}
		out[k] = reports.StateCell{Present: true, Flags: m.Flags}
	}
	return out
}

func sameCell(a, b reports.StateCell) bool {
	return a.Present == b.Present && (!a.Present || sameFlags(a.Flags, b.Flags))
}

// finalState builds the table of every lane after settling. A device cell that differs
// from the server's is divergent; so is any cell that differs from what a failure says
// was expected (failure tables with label, mailbox and expected columns).
func finalState(devices []check.Device, server check.ServerState, exp check.Expectation) *reports.StateTable {
	var lanes []reports.LaneState
	t := &reports.StateTable{}
	for _, d := range devices {
		t.Lanes = append(t.Lanes, d.Name)
		lanes = append(lanes, laneState(d.Name, d.View))
		t.Mailboxes = append(t.Mailboxes, mailboxNames(d.View))
	}
	t.Lanes = append(t.Lanes, reports.ServerLane)
	lanes = append(lanes, laneState(reports.ServerLane, serverReplica(server)))
	t.Mailboxes = append(t.Mailboxes, mailboxNames(serverReplica(server)))
	cells := make([]map[cellKey]reports.StateCell, len(lanes))
	keys := map[cellKey]bool{}
	for i, l := range lanes {
		cells[i] = cellsOf(l)
		for k := range cells[i] {
			keys[k] = true
		}
	}
	expected, known := expectedCells(exp)
	for k := range expected {
		keys[k] = true
	}
	sorted := make([]cellKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].mailbox != sorted[j].mailbox {
			return sorted[i].mailbox < sorted[j].mailbox
		}
		return sorted[i].label < sorted[j].label
	})
	srv := len(lanes) - 1
	for _, k := range sorted {
		row := reports.StateTableRow{Mailbox: k.mailbox, Label: k.label}
		if e, ok := expected[k]; ok {
			row.Expected = &e
		} else if known[k.label] {
			row.Expected = &reports.StateCell{} // the model has it nowhere here: absent
		}
		for i := range lanes {
			c := cells[i][k]
			// A cell the model does not admit is divergent, and so is a device's cell that
			// differs from the server's (I1), even where the model admits both.
			c.Divergent = (row.Expected != nil && !row.Expected.Allows(c)) || (i != srv && !sameCell(c, cells[srv][k]))
			row.Cells = append(row.Cells, c)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// expectedCells turns the model's expectation into expected cells, and returns the labels
// the model knows: where it has no cell for one of them, it expects the message absent.
func expectedCells(exp check.Expectation) (map[cellKey]reports.StateCell, map[string]bool) {
	out := map[cellKey]reports.StateCell{}
	for _, c := range exp.Cells {
		out[cellKey{c.Mailbox, c.Label}] = reports.StateCell{Present: true, Flags: c.Flags, MayBeAbsent: !c.MustBePresent,
			OptionalFlags: c.Optional, AnyFlags: c.AnyFlags}
	}
	known := map[string]bool{}
	for _, l := range exp.Labels {
		known[l] = true
	}
	return out, known
}

// mailboxNames lists a replica's mailboxes, sorted.
func mailboxNames(v clients.Replica) []string {
	names := make([]string, 0, len(v.Mailboxes))
	for _, mb := range v.Mailboxes {
		names = append(names, mb.Name)
	}
	sort.Strings(names)
	return names
}

// divergedAt finds the first step after which a divergent cell of the final state took
// the value it ended with and kept it: where things went wrong. The server's cells come
// first (a wrong server state is the root of most divergences); a device's cell counts only
// from the step its message first appeared anywhere.
func divergedAt(states []reports.StateSnapshot, final *reports.StateTable) int {
	if final == nil || len(states) == 0 {
		return 0
	}
	for _, serverOnly := range []bool{true, false} {
		best := -1
		for _, row := range final.Rows {
			k := cellKey{row.Mailbox, row.Label}
			seen := firstSeen(states, k)
			for ci, cell := range row.Cells {
				lane := final.Lanes[ci]
				if !cell.Divergent || serverOnly != (lane == reports.ServerLane) || seen < 0 {
					continue
				}
				first := -1
				for i := len(states) - 1; i >= seen; i-- {
					ls, ok := laneOf(states[i], lane)
					if !ok || !sameCell(cellsOf(ls)[k], reports.StateCell{Present: cell.Present, Flags: cell.Flags}) {
						break
					}
					first = i
				}
				if first >= 0 && (best < 0 || first < best) {
					best = first
				}
			}
		}
		if best >= 0 {
			return states[best].Line
		}
	}
	return 0
}

// firstSeen returns the index of the first state in which any lane holds k, or -1.
func firstSeen(states []reports.StateSnapshot, k cellKey) int {
	for i, s := range states {
		for _, l := range s.Lanes {
			if _, ok := cellsOf(l)[k]; ok {
				return i
			}
		}
	}
	return -1
}

func laneOf(s reports.StateSnapshot, lane string) (reports.LaneState, bool) {
	for _, l := range s.Lanes {
		if l.Lane == lane {
			return l, true
		}
	}
	return reports.LaneState{}, false
}
