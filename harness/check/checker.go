package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/syncharness/syncharness/clients"
)

type checker struct {
	in Input
	// policies are the policy relaxations the devices' engine follows (nil: every one).
	policies Policies
	// Indexes by mailbox and label, built on first use (only failures need them).
	server map[string]map[string][]ServerMessage
	views  []map[string]map[string][]clients.Message
	keys   map[string][]string // server mailbox → sorted label/flags keys
}

func newChecker(in Input) *checker {
	return &checker{in: in}
}

// serverIndex returns the server's messages by mailbox and label.
func (c *checker) serverIndex() map[string]map[string][]ServerMessage {
	if c.server == nil {
		c.server = map[string]map[string][]ServerMessage{}
		for _, mb := range c.in.Server.Mailboxes {
			byLabel := map[string][]ServerMessage{}
			for _, msg := range mb.Messages {
				byLabel[msg.Label] = append(byLabel[msg.Label], msg)
			}
			c.server[mb.Name] = byLabel
		}
	}
	return c.server
}

// viewIndex returns device di's messages by mailbox and label.
func (c *checker) viewIndex(di int) map[string]map[string][]clients.Message {
	if c.views == nil {
		c.views = make([]map[string]map[string][]clients.Message, len(c.in.Devices))
	}
	if c.views[di] == nil {
		v := map[string]map[string][]clients.Message{}
		for _, mb := range c.in.Devices[di].View.Mailboxes {
			byLabel := map[string][]clients.Message{}
			for _, msg := range mb.Messages {
				byLabel[msg.Label] = append(byLabel[msg.Label], msg)
			}
			v[mb.Name] = byLabel
		}
		c.views[di] = v
	}
	return c.views[di]
}

// serverKeys returns the sorted (label, flags) keys of a server mailbox, or (label, flags,
// content hash) keys with content.
func (c *checker) serverKeys(mb *ServerMailbox, content bool) []string {
	if c.keys == nil {
		c.keys = map[string][]string{}
	}
	name := mb.Name
	if content {
		name += "\x00content"
	}
	if k, ok := c.keys[name]; ok {
		return k
	}
	k := make([]string, len(mb.Messages))
	for i, m := range mb.Messages {
		k[i] = m.Label + "\x00" + describeFlags(m.Flags)
		if content {
			k[i] += "\x00" + m.Hash
		}
	}
	sort.Strings(k)
	c.keys[name] = k
	return k
}

func viewKeys(mb *clients.Mailbox, content bool) []string {
	k := make([]string, len(mb.Messages))
	for i, m := range mb.Messages {
		k[i] = m.Label + "\x00" + describeFlags(m.Flags)
		if content {
			k[i] += "\x00" + m.Hash
		}
	}
	sort.Strings(k)
	return k
}

// hashesAll reports whether a device shows the content hash of every message of mb: only
// then does I1 compare content (a device may leave Hash empty when it cannot tell).
func hashesAll(mb *clients.Mailbox) bool {
	for _, m := range mb.Messages {
		if m.Hash == "" {
			return false
		}
	}
	return true
}

func (c *checker) result(id, msg string) Result {
	return Result{Invariant: id, Title: title(id), Message: msg}
}

func (c *checker) deviceNames() []string {
	names := make([]string, len(c.in.Devices))
	for i, d := range c.in.Devices {
		names[i] = d.Name
	}
	return names
}

func labelName(l string) string {
	if l == "" {
		return "(no label)"
	}
	return l
}

// times renders a count of copies in words.
func times(n int) string {
	switch n {
	case 0:
		return "not"
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

func (c *checker) notApplicable(id string) []Result {
	var names []string
	for _, d := range c.in.Devices {
		if d.State == nil {
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	r := c.result(id, fmt.Sprintf("%s cannot show sync state: not checked", strings.Join(names, ", ")))
	r.Devices, r.NotApplicable = names, true
	return []Result{r}
}

// converged is I1: every device has the server's mailboxes and, in each, the same multiset
// of (label, flags, content hash). A device that shows no hashes is compared on (label,
// flags) alone.
func (c *checker) converged() []Result {
	var out []Result
	for di, d := range c.in.Devices {
		var rows [][]string
		var first string
		labels := map[string]bool{}
		add := func(msg string, row []string) {
			if first == "" {
				first = msg
			}
			rows = append(rows, row)
			if row[0] != "" {
				labels[row[0]] = true
			}
		}
		onDevice := map[string]*clients.Mailbox{}
		for i := range d.View.Mailboxes {
			onDevice[d.View.Mailboxes[i].Name] = &d.View.Mailboxes[i]
		}
		names := map[string]bool{}
		for _, mb := range c.in.Server.Mailboxes {
			names[mb.Name] = true
		}
		for n := range onDevice {
			names[n] = true
		}
		for _, mb := range sortedKeys(names) {
			smb, dmb := c.in.Server.Find(mb), onDevice[mb]
			switch {
			case dmb == nil:
				add(fmt.Sprintf("%s lacks mailbox %s", d.Name, mb), []string{"", mb, "mailbox", "—"})
				continue
			case smb == nil:
				add(fmt.Sprintf("%s has mailbox %s, the server does not", d.Name, mb), []string{"", mb, "—", "mailbox"})
				continue
			}
			content := hashesAll(dmb)
			if equalStrings(c.serverKeys(smb, content), viewKeys(dmb, content)) {
				continue
			}
			sv, dv := c.serverIndex()[mb], c.viewIndex(di)[mb]
			ls := map[string]bool{}
			for l := range sv {
				ls[l] = true
			}
			for l := range dv {
				ls[l] = true
			}
			for _, l := range sortedLabels(ls) {
				s := serverFlagKeys(sv[l])
				v := viewFlagKeys(dv[l])
				if !equalStrings(s, v) {
					add(convergeMessage(d.Name, mb, l, s, v)+c.deletedNote(l, sv[l], dv[l]),
						[]string{l, mb, strings.Join(s, " | "), strings.Join(v, " | ")})
					continue
				}
				if !content {
					continue
				}
				s, v = serverContentKeys(sv[l]), viewContentKeys(dv[l])
				if !equalStrings(s, v) {
					add(fmt.Sprintf("%s has %s in %s with other content than the server", d.Name, labelName(l), mb),
						[]string{l, mb, strings.Join(s, " | "), strings.Join(v, " | ")})
				}
			}
		}
		if len(rows) == 0 {
			continue
		}
		msg := first
		if len(rows) > 1 {
			msg += fmt.Sprintf(" (%d differences)", len(rows))
		}
		r := c.result(I1Converged, msg)
		r.Devices = []string{d.Name}
		r.Labels = sortedLabels(labels)
		r.Table = &Table{Columns: []string{"label", "mailbox", "server", d.Name}, Rows: capRows(emptyDash(rows))}
		out = append(out, r)
	}
	return out
}

// maxRows bounds a table: a report shows a sample, the message gives the count.
const maxRows = 20

// capRows keeps the first maxRows rows and says how many more there were.
func capRows(rows [][]string) [][]string {
	if len(rows) <= maxRows {
		return rows
	}
	more := make([]string, len(rows[0]))
	for i := range more {
		more[i] = "…"
	}
	more[0] = fmt.Sprintf("… %d more", len(rows)-maxRows)
	return append(rows[:maxRows:maxRows], more)
}

func emptyDash(rows [][]string) [][]string {
	for _, r := range rows {
		for i := range r {
			if r[i] == "" {
				r[i] = "—"
			}
		}
	}
	return rows
}

func convergeMessage(dev, mb, l string, server, view []string) string {
	l = labelName(l)
	switch {
	case len(view) == 0:
		return fmt.Sprintf("%s lacks %s in %s", dev, l, mb)
	case len(server) == 0:
		return fmt.Sprintf("%s has %s in %s, the server does not", dev, l, mb)
	case len(view) != len(server):
		return fmt.Sprintf("%s has %s %s in %s, the server %s", dev, l, times(len(view)), mb, times(len(server)))
	case len(view) == 1:
		return fmt.Sprintf("%s has %s in %s with flags %s, the server %s", dev, l, mb, view[0], server[0])
	}
	return fmt.Sprintf("%s has %s in %s with other flags than the server", dev, l, mb)
}

// deletedNote names the guarantee a device broke when it lacks a message, or its \Deleted,
// that the server holds marked \Deleted: such mail is mail until someone expunges it, and
// new mail that arrives already marked \Deleted is downloaded with the flag (F17).
func (c *checker) deletedNote(l string, server []ServerMessage, view []clients.Message) string {
	count := func(n int, flags func(int) []string) int {
		k := 0
		for i := 0; i < n; i++ {
			if slices.ContainsFunc(flags(i), isDeleted) {
				k++
			}
		}
		return k
	}
	onServer := count(len(server), func(i int) []string { return server[i].Flags })
	if onServer == 0 || count(len(view), func(i int) []string { return view[i].Flags }) >= onServer {
		return ""
	}
	how := "the server holds it marked \\Deleted"
	if line := c.arrivedDeleted(l); line > 0 {
		how = fmt.Sprintf("it arrived marked \\Deleted (line %d)", line)
	}
	return "; " + how + ": mail marked \\Deleted is still mail until expunged and is downloaded with the flag (F17)"
}

func isDeleted(f string) bool { return strings.EqualFold(f, `\Deleted`) }

// arrivedDeleted returns the line of the step that delivered or appended l already marked
// \Deleted, or 0.
func (c *checker) arrivedDeleted(l string) int {
	for _, o := range c.in.History {
		if (o.Kind == "deliver" || o.Kind == "append") && slices.Contains(o.Labels, l) && slices.ContainsFunc(o.Flags, isDeleted) {
			return o.Line
		}
	}
	return 0
}

func serverFlagKeys(ms []ServerMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = describeFlags(m.Flags)
	}
	sort.Strings(out)
	return out
}

func viewFlagKeys(ms []clients.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = describeFlags(m.Flags)
	}
	sort.Strings(out)
	return out
}

// serverContentKeys describes each message's flags and content, sorted.
func serverContentKeys(ms []ServerMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = describeFlags(m.Flags) + " content " + shortHash(m.Hash)
	}
	sort.Strings(out)
	return out
}

func viewContentKeys(ms []clients.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = describeFlags(m.Flags) + " content " + shortHash(m.Hash)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortedLabels sorts labels naturally: m2 before m10.
func sortedLabels[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	return out
}

func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// uidIntegrity is I2: every UID a device holds belongs to the server's current UIDVALIDITY
// and to the same content.
func (c *checker) uidIntegrity() []Result {
	out := c.notApplicable(I2UIDIntegrity)
	for _, d := range c.in.Devices {
		if d.State == nil {
			continue
		}
		var rows [][]string
		var first string
		labels := map[string]bool{}
		for _, ms := range d.State.Mailboxes {
			sm := c.in.Server.Find(ms.Name)
			if sm == nil {
				continue // a mailbox the server lacks is I1's and I7's business
			}
			if ms.UIDValidity != sm.UIDValidity {
				if first == "" {
					first = fmt.Sprintf("%s holds UIDVALIDITY %d for %s, the server has %d", d.Name, ms.UIDValidity, ms.Name, sm.UIDValidity)
				}
				rows = append(rows, []string{ms.Name, "UIDVALIDITY", fmt.Sprint(ms.UIDValidity), fmt.Sprint(sm.UIDValidity)})
				continue
			}
			byUID := make(map[uint32]*ServerMessage, len(sm.Messages))
			for i := range sm.Messages {
				byUID[sm.Messages[i].UID] = &sm.Messages[i]
			}
			for _, msg := range ms.Messages {
				if msg.UID == 0 {
					continue
				}
				s := byUID[msg.UID]
				switch {
				case s == nil:
					if first == "" {
						first = fmt.Sprintf("%s holds UID %d in %s for %s, the server has no such UID", d.Name, msg.UID, ms.Name, labelName(msg.Label))
					}
					rows = append(rows, []string{ms.Name, fmt.Sprint(msg.UID), labelName(msg.Label), "—"})
				case !sameContent(msg, s):
					if first == "" && msg.Label == s.Label {
						first = fmt.Sprintf("%s holds UID %d in %s for %s, on the server it is another text of %s", d.Name, msg.UID, ms.Name, labelName(msg.Label), labelName(s.Label))
					} else if first == "" {
						first = fmt.Sprintf("%s holds UID %d in %s for %s, on the server it is %s", d.Name, msg.UID, ms.Name, labelName(msg.Label), labelName(s.Label))
					}
					rows = append(rows, []string{ms.Name, fmt.Sprint(msg.UID), labelName(msg.Label), labelName(s.Label)})
				default:
					continue
				}
				labels[msg.Label] = true
			}
		}
		if len(rows) == 0 {
			continue
		}
		if len(rows) > 1 {
			first += fmt.Sprintf(" (%d UIDs wrong)", len(rows))
		}
		r := c.result(I2UIDIntegrity, first)
		r.Devices, r.Labels = []string{d.Name}, sortedLabels(labels)
		r.Table = &Table{Columns: []string{"mailbox", "uid", d.Name, "server"}, Rows: capRows(rows)}
		out = append(out, r)
	}
	return out
}

func sameContent(m clients.MessageState, s *ServerMessage) bool {
	if m.Hash != "" && s.Hash != "" {
		return m.Hash == s.Hash
	}
	return m.Label == s.Label
}

// idempotent is I8: one more round sends no mutating command and changes no replica.
// Devices without an extra round are not checked.
func (c *checker) idempotent() []Result {
	var out []Result
	for _, d := range c.in.Devices {
		if d.Extra == nil {
			continue
		}
		diff := replicaDiff(d.Extra.Before, d.Extra.After)
		if d.Extra.Stats.Mutations == 0 && len(diff) == 0 {
			continue
		}
		var msg string
		if d.Extra.Stats.Mutations > 0 {
			msg = fmt.Sprintf("%s sent %d mutating commands in a round after settle", d.Name, d.Extra.Stats.Mutations)
		} else {
			msg = fmt.Sprintf("%s changed its replica in a round after settle", d.Name)
		}
		if len(diff) > 0 && d.Extra.Stats.Mutations > 0 {
			msg += " and changed its replica"
		}
		r := c.result(I8Idempotent, msg)
		r.Devices = []string{d.Name}
		labels := map[string]bool{}
		for _, row := range diff {
			labels[row[0]] = true
		}
		delete(labels, "—")
		r.Labels = sortedLabels(labels)
		if len(diff) > 0 {
			r.Table = &Table{Columns: []string{"label", "mailbox", "before", "after"}, Rows: capRows(diff)}
		} else {
			r.Table = &Table{Columns: []string{"device", "mutating commands", "expected"},
				Rows: [][]string{{d.Name, fmt.Sprint(d.Extra.Stats.Mutations), "0"}}}
		}
		out = append(out, r)
	}
	return out
}

// replicaDiff lists the differences between two replicas, as label, mailbox, before, after.
func replicaDiff(a, b clients.Replica) [][]string {
	index := func(r clients.Replica) map[string]map[string][]string {
		out := map[string]map[string][]string{}
		for _, mb := range r.Mailboxes {
			m := map[string][]string{}
			for _, msg := range mb.Messages {
				m[msg.Label] = append(m[msg.Label], describeFlags(msg.Flags)+" "+shortHash(msg.Hash))
			}
			for _, v := range m {
				sort.Strings(v)
			}
			out[mb.Name] = m
		}
		return out
	}
	ia, ib := index(a), index(b)
	names := map[string]bool{}
	for n := range ia {
		names[n] = true
	}
	for n := range ib {
		names[n] = true
	}
	var rows [][]string
	for _, mb := range sortedKeys(names) {
		ma, okA := ia[mb]
		mbb, okB := ib[mb]
		if !okA || !okB {
			before, after := "mailbox", "mailbox"
			if !okA {
				before = "—"
			} else {
				after = "—"
			}
			rows = append(rows, []string{"—", mb, before, after})
			continue
		}
		ls := map[string]bool{}
		for l := range ma {
			ls[l] = true
		}
		for l := range mbb {
			ls[l] = true
		}
		for _, l := range sortedLabels(ls) {
			if !equalStrings(ma[l], mbb[l]) {
				rows = append(rows, []string{labelName(l), mb, dashed(strings.Join(ma[l], " | ")), dashed(strings.Join(mbb[l], " | "))})
			}
		}
	}
	return rows
}

func dashed(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func shortHash(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

// journals is I9: nothing pending or in flight.
func (c *checker) journals() []Result {
	out := c.notApplicable(I9Journals)
	for _, d := range c.in.Devices {
		if d.State == nil || d.State.Pending == 0 {
			continue
		}
		r := c.result(I9Journals, fmt.Sprintf("%s still has %d journal entries pending", d.Name, d.State.Pending))
		r.Devices = []string{d.Name}
		if len(d.State.PendingDesc) > 0 {
			t := &Table{Columns: []string{"pending on " + d.Name}}
			for _, p := range d.State.PendingDesc {
				t.Rows = append(t.Rows, []string{p})
			}
			r.Table = t
		}
		out = append(out, r)
	}
	return out
}

// watermarks is I10. For every mailbox a device has state for whose UIDVALIDITY equals the
// server's: the saved UIDNEXT is not above the server's UIDNEXT, and every message on the
// server now whose UID is below the saved UIDNEXT is in the device's state (a message
// expunged on the server is not on it, so a device that dropped it skipped nothing).
// Mailboxes with another UIDVALIDITY are I2's business.
func (c *checker) watermarks() []Result {
	out := c.notApplicable(I10Watermarks)
	for _, d := range c.in.Devices {
		if d.State == nil {
			continue
		}
		var rows [][]string
		var first string
		labels := map[string]bool{}
		for _, ms := range d.State.Mailboxes {
			sm := c.in.Server.Find(ms.Name)
			if sm == nil || sm.UIDValidity != ms.UIDValidity {
				continue
			}
			if sm.UIDNext != 0 && ms.UIDNext > sm.UIDNext {
				if first == "" {
					first = fmt.Sprintf("%s saved UIDNEXT %d for %s, above the server's %d", d.Name, ms.UIDNext, ms.Name, sm.UIDNext)
				}
				rows = append(rows, []string{ms.Name, "UIDNEXT", fmt.Sprint(ms.UIDNext), fmt.Sprint(sm.UIDNext)})
			}
			known := make(map[uint32]bool, len(ms.Messages))
			for _, m := range ms.Messages {
				known[m.UID] = true
			}
			for _, s := range sm.Messages {
				if s.UID >= ms.UIDNext || known[s.UID] {
					continue
				}
				if first == "" {
					first = fmt.Sprintf("%s skipped %s (UID %d) in %s, below its saved UIDNEXT %d", d.Name, labelName(s.Label), s.UID, ms.Name, ms.UIDNext)
				}
				rows = append(rows, []string{ms.Name, fmt.Sprint(s.UID), labelName(s.Label), "unknown below UIDNEXT " + fmt.Sprint(ms.UIDNext)})
				labels[s.Label] = true
			}
		}
		if len(rows) == 0 {
			continue
		}
		if len(rows) > 1 {
			first += fmt.Sprintf(" (%d problems)", len(rows))
		}
		r := c.result(I10Watermarks, first)
		r.Devices, r.Labels = []string{d.Name}, sortedLabels(labels)
		r.Table = &Table{Columns: []string{"mailbox", "uid", "server", d.Name}, Rows: capRows(rows)}
		out = append(out, r)
	}
	return out
}
