package check

import (
	"fmt"
	"slices"
	"strings"
)

// The quarantine invariant (I11) follows, from the history alone, the messages that a
// device had synced in a mailbox whose UIDVALIDITY then changed and that were gone from the
// server (expunged) when the device next synced: the device cannot tell a message expunged
// on purpose from one the server lost in the reset, so it must set it aside and report it
// (quarantine), never drop it and never upload it again.
//
// It claims only what the history makes certain, and so it follows only messages:
//   - made once (one delivery; never copied, appended by a device, or re-delivered), so
//     that no other copy of the same content could take the message's place;
//   - that no device acted on (a device's change reaches the server at a time the model,
//     not this pass, works out), and that no failed server step named;
//   - in mailboxes nobody renamed or removed.
//
// A device that watches the server (it syncs by itself) is not followed. A device's sync
// that races the server's steps, or fails, may have seen the server before or after them:
// where the two differ, the message's fate on that device is left open. A device wiped
// starts afresh: what it had quarantined is gone with its store.

// qState is what a device holds of one message, as of its last successful sync.
type qState struct {
	where string // the mailbox it saw the message in; gone: not seen (or gone); qUnknown
	reset int    // >0: the line of a UIDVALIDITY change of where since then
	// must is the line of the reset after which the device must have quarantined it, 0:
	// nothing required.
	must   int
	mustMB string // the mailbox it was in
}

const qUnknown = "\x00?"

type quarantineTracker struct {
	loc      map[string]string // label → mailbox on the server, gone, or qUnknown
	excluded map[string]bool   // labels not followed
	devs     map[string]map[string]qState
	watching map[string]bool
	order    []string
	touched  []string // mailboxes renamed or removed, by anyone
}

func (q *quarantineTracker) dev(name string) map[string]qState {
	d := q.devs[name]
	if d == nil {
		d = map[string]qState{}
		q.devs[name] = d
		q.order = append(q.order, name)
	}
	return d
}

// underTouched reports whether mb is, or lies under, a mailbox renamed or removed.
func (q *quarantineTracker) underTouched(mb string) bool {
	for _, t := range q.touched {
		if _, ok := renamed(mb, t, t); ok {
			return true
		}
	}
	return false
}

// prepare excludes the labels and mailboxes the pass cannot follow.
func (q *quarantineTracker) prepare(history []Op) {
	made := map[string]int{}
	for i := range history {
		o := &history[i]
		switch {
		case o.Kind == "rename" || o.Kind == "remove":
			q.touched = append(q.touched, mailboxOf(o.Mailbox))
			if o.Kind == "rename" && o.Dest != "" {
				q.touched = append(q.touched, mailboxOf(o.Dest))
			}
		case !isServerActor(o.Actor):
			for _, l := range o.Labels {
				q.excluded[l] = true
			}
			if o.Kind == "reply" || o.Kind == "forward" {
				q.excluded[o.Dest] = true
			}
		case o.Kind == "deliver" || o.Kind == "append":
			for _, l := range o.Labels {
				made[l]++
			}
		case o.Kind == "copy":
			for _, l := range o.Labels {
				q.excluded[l] = true
			}
		}
		if o.Err != "" {
			for _, l := range o.Labels {
				q.excluded[l] = true
			}
		}
	}
	for l, n := range made {
		if n > 1 {
			q.excluded[l] = true
		}
	}
}

// server applies a server step to the locations.
func (q *quarantineTracker) server(o *Op) {
	mb := mailboxOf(o.Mailbox)
	switch o.Kind {
	case "deliver", "append":
		for _, l := range o.Labels {
			if q.underTouched(mb) {
				q.excluded[l] = true
			}
			q.loc[l] = mb
		}
	case "move":
		for _, l := range o.Labels {
			if q.loc[l] == mb {
				q.loc[l] = mailboxOf(o.Dest)
				if q.underTouched(q.loc[l]) {
					q.excluded[l] = true
				}
			}
		}
	case "delete", "expunge":
		for _, l := range o.Labels {
			if q.loc[l] == mb {
				q.loc[l] = gone
			}
		}
	case "uidvalidity-bump", "uidvalidity-reset":
		for _, name := range q.order {
			for l, s := range q.devs[name] {
				if s.where != mb || s.reset > 0 {
					continue
				}
				if o.Err != "" {
					s.where = qUnknown // it may or may not have changed
				} else {
					s.reset = o.Line
				}
				q.devs[name][l] = s
			}
		}
	}
}

// synced is label l's state on a device that has state s and syncs now.
func (q *quarantineTracker) synced(l string, s qState) qState {
	now, ok := q.loc[l]
	if !ok {
		now = gone
	}
	if s.must > 0 {
		return s
	}
	switch {
	case s.where == qUnknown:
		if now == gone || now == qUnknown {
			return qState{where: qUnknown}
		}
		return qState{where: now}
	case s.where != gone && s.reset > 0:
		switch now {
		case gone:
			return qState{where: gone, must: s.reset, mustMB: s.where}
		case s.where:
			return qState{where: now}
		}
		// Moved: the engine may find it again in its new place, or not.
		return qState{where: qUnknown}
	}
	return qState{where: now}
}

// settled normalises s: a message gone for good with a reset pending will be quarantined
// at the device's next sync, which the final settle guarantees.
func (q *quarantineTracker) settled(l string, s qState) qState {
	if s.must == 0 && s.reset > 0 && s.where != gone && s.where != qUnknown {
		if now, ok := q.loc[l]; ok && now == gone {
			return qState{where: gone, must: s.reset, mustMB: s.where}
		}
	}
	return s
}

func (q *quarantineTracker) labels() []string {
	ls := make([]string, 0, len(q.loc))
	for l := range q.loc {
		if !q.excluded[l] {
			ls = append(ls, l)
		}
	}
	return ls
}

// sync records a device's sync: done when it succeeded; before holds the locations before
// the racing server steps of its block (nil: none raced).
func (q *quarantineTracker) sync(name string, failed bool, before map[string]string) {
	d := q.dev(name)
	for _, l := range q.labels() {
		outs := q.outcomes(l, d[l], failed)
		if before != nil {
			after := q.loc
			q.loc = before
			outs = append(outs, q.outcomes(l, d[l], failed)...)
			q.loc = after
		}
		d[l] = mergeQ(outs)
	}
}

// outcomes are label l's possible states on a device that held s and synced against the
// server as it is now: if the sync failed, it may have done nothing.
func (q *quarantineTracker) outcomes(l string, s qState, failed bool) []qState {
	s = q.settled(l, s)
	outs := []qState{q.settled(l, q.synced(l, s))}
	if failed {
		outs = append(outs, s)
	}
	return outs
}

func mergeQ(outs []qState) qState {
	for _, o := range outs[1:] {
		if o != outs[0] {
			return qState{where: qUnknown}
		}
	}
	return outs[0]
}

func (q *quarantineTracker) step(o *Op, before map[string]string) {
	if isServerActor(o.Actor) {
		q.server(o)
		return
	}
	q.dev(o.Actor)
	switch o.Kind {
	case "sync":
		q.sync(o.Actor, o.Err != "", before)
	case "wipe":
		q.devs[o.Actor] = map[string]qState{}
		q.dev(o.Actor)
	case "watch":
		q.watching[o.Actor] = true
	}
}

// quarantineRequired replays the history and returns, per device, the labels it must
// have quarantined, with the state that requires it.
func quarantineRequired(history []Op) (map[string]map[string]qState, map[string]bool) {
	q := &quarantineTracker{loc: map[string]string{}, excluded: map[string]bool{},
		devs: map[string]map[string]qState{}, watching: map[string]bool{}}
	q.prepare(history)
	for i := 0; i < len(history); {
		o := &history[i]
		if o.Group == 0 {
			q.step(o, nil)
			i++
			continue
		}
		// A block: its server steps first, then its syncs, each of which may have seen the
		// server before them or after.
		j := i
		for j < len(history) && history[j].Group == o.Group {
			j++
		}
		before := make(map[string]string, len(q.loc))
		for k, v := range q.loc {
			before[k] = v
		}
		raced := false
		for k := i; k < j; k++ {
			if isServerActor(history[k].Actor) {
				q.step(&history[k], nil)
				raced = true
			}
		}
		if !raced {
			before = nil
		}
		for k := i; k < j; k++ {
			if !isServerActor(history[k].Actor) {
				q.step(&history[k], before)
			}
		}
		i = j
	}
	// Settle: every device syncs, after every server step.
	out := map[string]map[string]qState{}
	for _, name := range q.order {
		if q.watching[name] {
			continue
		}
		q.sync(name, false, nil)
		for l, s := range q.devs[name] {
			if s.must > 0 && !q.excluded[l] {
				if out[name] == nil {
					out[name] = map[string]qState{}
				}
				out[name][l] = s
			}
		}
	}
	return out, q.watching
}

// quarantine is I11: a message a device had synced that is not found again after a
// UIDVALIDITY change is quarantined on that device, not dropped, not uploaded again, not
// paired with other mail.
func (c *checker) quarantine() []Result {
	var out []Result
	required, _ := quarantineRequired(c.in.History)
	if len(required) == 0 {
		return nil
	}
	// Not applicable only where something was required of a device that cannot show it.
	var blind []string
	for _, d := range c.in.Devices {
		if d.State == nil && len(required[d.Name]) > 0 {
			blind = append(blind, d.Name)
		}
	}
	if len(blind) > 0 {
		r := c.result(I11Quarantine, fmt.Sprintf("%s cannot show sync state: not checked", strings.Join(blind, ", ")))
		r.Devices, r.NotApplicable = blind, true
		out = append(out, r)
	}
	onServer := map[string]string{}
	for _, mb := range c.in.Server.Mailboxes {
		for _, msg := range mb.Messages {
			onServer[msg.Label] = mb.Name
		}
	}
	for di, d := range c.in.Devices {
		req := required[d.Name]
		if d.State == nil || len(req) == 0 {
			continue
		}
		inView := map[string]string{}
		for mb, byLabel := range c.viewIndex(di) {
			for l := range byLabel {
				inView[l] = mb
			}
		}
		var rows [][]string
		var first string
		var labels []string
		for _, l := range sortedLabels(req) {
			s := req[l]
			quarantined := slices.Contains(d.State.Quarantined, l)
			var what string
			switch {
			case onServer[l] != "":
				what = fmt.Sprintf("%s: %s is on the server again, in %s: uploaded again instead of quarantined", d.Name, l, onServer[l])
			case inView[l] != "":
				what = fmt.Sprintf("%s shows %s in %s as live mail", d.Name, l, inView[l])
			case !quarantined:
				what = fmt.Sprintf("%s dropped %s without quarantining it", d.Name, l)
			default:
				continue
			}
			if first == "" {
				first = fmt.Sprintf("%s (it was in %s when its UIDVALIDITY changed at line %d, then expunged)", what, s.mustMB, s.must)
			}
			seen := "dropped"
			switch {
			case inView[l] != "":
				seen = "in " + inView[l]
			case quarantined:
				seen = "quarantined"
			}
			rows = append(rows, []string{l, s.mustMB, "quarantined", dashed(onServer[l]), seen})
			labels = append(labels, l)
		}
		if len(rows) == 0 {
			continue
		}
		if len(rows) > 1 {
			first += fmt.Sprintf(" (%d messages)", len(rows))
		}
		r := c.result(I11Quarantine, first)
		r.Devices, r.Labels = []string{d.Name}, labels
		r.Table = &Table{Columns: []string{"label", "mailbox", "expected", "server", d.Name}, Rows: capRows(rows)}
		out = append(out, r)
	}
	return out
}
