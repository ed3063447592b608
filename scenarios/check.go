package scenarios

import (
	"fmt"
	"sort"
	"strings"
)

// checker runs the semantic checks over a parsed scenario. It follows the script in order,
// keeping the mailboxes each device and the server know (a device's own changes reach the
// server when it syncs, and then it sees the server's), the labels made so far and the
// special-use mailboxes.
type checker struct {
	s    *Scenario
	errs ErrorList

	devices    map[string]bool
	order      []string // devices in declaration order
	hasDevices bool
	setupDone  bool

	server   mailboxSet
	views    map[string]mailboxSet // per device
	pending  map[string][]mailboxOp
	watching map[string]bool
	ever     map[string]bool // every mailbox name that existed at some point
	gone     map[string]int  // mailbox name → line that removed or renamed it away
	labels   map[string]bool
	special  map[string]string // \Trash → mailbox name
	mute     bool              // following an invalid step: apply its effects, report nothing
}

type mailboxSet map[string]bool

func (m mailboxSet) clone() mailboxSet {
	c := mailboxSet{}
	for k := range m {
		c[k] = true
	}
	return c
}

// mailboxOp is a device's mailbox change not yet synced.
type mailboxOp struct{ verb, name, dest string }

// reservedNames cannot be device names: they would read as commands.
var reservedNames = map[string]bool{
	"server": true, "devices": true, "mailbox": true, "deliver": true, "caps": true,
	"sync": true, "concurrently": true, "repeat": true, "end": true, "expect": true,
}

func check(s *Scenario) ErrorList {
	c := &checker{
		s:        s,
		devices:  map[string]bool{},
		server:   mailboxSet{"INBOX": true},
		views:    map[string]mailboxSet{},
		pending:  map[string][]mailboxOp{},
		watching: map[string]bool{},
		ever:     map[string]bool{"INBOX": true},
		gone:     map[string]int{},
		labels:   map[string]bool{},
		special:  map[string]string{},
	}
	if len(s.Steps) == 0 {
		c.errorf(1, "", "empty scenario: it needs at least a devices line and one step")
		return c.errs
	}
	first := s.Steps[0]
	if first.Actor != "" || first.Verb != "devices" {
		found := false
		var walk func([]*Step)
		walk = func(steps []*Step) {
			for _, st := range steps {
				if st.Actor == "" && st.Verb == "devices" {
					found = true
				}
				walk(st.Body)
			}
		}
		walk(s.Steps)
		if !found {
			c.errorf(first.Line, "", "no devices line: a scenario starts with \"devices NAME…\"")
		}
	}
	c.walk(s.Steps, enclosing{})
	checkLimits(c)
	checkMailboxNames(c)
	return c.errs
}

func (c *checker) errorf(line int, command, format string, args ...any) {
	if c.mute {
		return
	}
	c.errs = append(c.errs, &Error{File: c.s.File, Line: line, Command: command, Msg: fmt.Sprintf(format, args...)})
}

// enclosing is what the blocks around a step are, as far as the checks care: the outermost
// and the concurrently block, if any. Kept small so that deep nesting costs no more than
// its lines.
type enclosing struct {
	outer        *Step // nil at the top level
	concurrently *Step
}

// inside returns the blocks around the steps of blk.
func (e enclosing) inside(blk *Step) enclosing {
	if e.outer == nil {
		e.outer = blk
	}
	if blk.Verb == "concurrently" && e.concurrently == nil {
		e.concurrently = blk
	}
	return e
}

func (c *checker) walk(steps []*Step, blocks enclosing) {
	for _, st := range steps {
		c.mute = st.invalid && st.Verb != "devices" // its problems are not cascades
		if st.Actor == "" && setupVerbs[st.Verb] {
			c.setup(st, blocks)
			continue
		}
		if !c.setupDone {
			c.setupDone = true
			for _, d := range c.order {
				c.views[d] = c.server.clone()
			}
		}
		if st.Actor != "" && st.Actor != ActorServer {
			c.device(st)
		} else {
			c.other(st, blocks)
		}
		if len(st.Body) > 0 {
			c.walk(st.Body, blocks.inside(st))
		} else if !st.invalid && st.Verb == "concurrently" || st.Verb == "repeat" {
			c.errorf(st.Line, st.Verb, "empty block: put the steps to run between %s and end", st.Verb)
		}
	}
}

func (c *checker) setup(st *Step, blocks enclosing) {
	switch {
	case blocks.outer != nil:
		c.errorf(st.Line, st.Verb, "setup command inside %s (line %d): setup comes before every other step", blocks.outer.Verb, blocks.outer.Line)
	case c.setupDone && st.Verb == "deliver":
		c.errorf(st.Line, st.Verb, "setup command after the first step: use \"server deliver\" for mail that arrives later")
	case c.setupDone && st.Verb == "caps":
		c.errorf(st.Line, st.Verb, "setup command after the first step: use \"server caps\" to change capabilities later")
	case c.setupDone && st.Verb == "mailbox":
		c.errorf(st.Line, st.Verb, "setup command after the first step: use \"server create\" for a mailbox made later")
	case c.setupDone && st.Verb == "devices":
		c.errorf(st.Line, st.Verb, "devices must be the first command")
	}
	if len(st.Guards) > 0 {
		c.errorf(st.Line, st.Verb, "setup commands take no guard")
	}
	switch st.Verb {
	case "devices":
		if c.hasDevices {
			c.errorf(st.Line, st.Verb, "devices given twice: list every device on one line")
			return
		}
		if st != c.s.Steps[0] && !c.setupDone && blocks.outer == nil {
			c.errorf(st.Line, st.Verb, "devices must be the first command")
		}
		c.hasDevices = true
		for _, d := range st.Devices {
			switch {
			case c.devices[d]:
				c.errorf(st.Line, st.Verb, "device %q named twice", d)
				continue
			case reservedNames[d] || specs["device "+d] != nil:
				c.errorf(st.Line, st.Verb, "a device cannot be named %q: it is a command word", d)
			}
			c.devices[d] = true
			c.order = append(c.order, d)
		}
	case "mailbox":
		name := st.Mailbox
		switch {
		case name == "INBOX":
			c.errorf(st.Line, st.Verb, "INBOX always exists")
		case c.server[name]:
			c.errorf(st.Line, st.Verb, "mailbox %q declared twice", name)
		}
		c.server[name] = true
		c.ever[name] = true
		if st.SpecialUse != "" {
			if other, dup := c.special[st.SpecialUse]; dup {
				c.errorf(st.Line, st.Verb, "%s is already mailbox %q", st.SpecialUse, other)
			} else {
				c.special[st.SpecialUse] = name
			}
		}
	case "deliver":
		c.deliver(st, c.server)
	}
}

func isDeviceName(d string) bool {
	for i := 0; i < len(d); i++ {
		ch := d[i]
		letter := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
		if !letter && (i == 0 || !(ch >= '0' && ch <= '9' || ch == '-' || ch == '_')) {
			return false
		}
	}
	return d != ""
}

func (c *checker) deliver(st *Step, set mailboxSet) {
	c.mailboxKnown(st, set, st.Mailbox)
	c.attachment(st)
	for _, l := range st.Labels {
		c.labels[l] = true
	}
}

func (c *checker) attachment(st *Step) {
	if st.File == "" {
		return
	}
	if _, ok := c.s.Files[st.File]; !ok {
		c.errorf(st.Line, st.Verb, "no attached file %q (attach it after the script with a line \"-- %s --\")", st.File, st.File)
	}
}

// mailboxKnown reports an unknown mailbox.
func (c *checker) mailboxKnown(st *Step, set mailboxSet, name string) bool {
	if name == "" || set[name] {
		return true
	}
	msg := fmt.Sprintf("unknown mailbox %q", name)
	if hint := c.elsewhere(st, name); hint != "" {
		msg += hint
	} else if line, ok := c.gone[name]; ok {
		msg += fmt.Sprintf(" (removed or renamed on line %d)", line)
	} else if near := nearest(name, c.ever); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	} else if near := nearest(name, expectKinds); st.Verb == "expect" && near != "" {
		msg += fmt.Sprintf(" (did you mean \"expect %s\"?)", near)
	} else if st.Actor == "" && !c.setupDone {
		msg += " (declare it with \"mailbox " + name + "\")"
	}
	c.errorf(st.Line, commandName(st), "%s", msg)
	return false
}

// elsewhere explains why a mailbox a device does not know yet exists elsewhere.
func (c *checker) elsewhere(st *Step, name string) string {
	if st.Actor == "" || st.Actor == ActorServer {
		return ""
	}
	if c.server[name] {
		return fmt.Sprintf(" (the server has it, but %s has not synced since)", st.Actor)
	}
	for _, d := range c.order {
		if d != st.Actor && c.views[d][name] {
			return fmt.Sprintf(" (%s has it, but it reaches %s only after %s and then %s sync)", d, st.Actor, d, st.Actor)
		}
	}
	return ""
}

var expectKinds = map[string]bool{ExpectConverged: true, ExpectMissing: true, ExpectCount: true,
	ExpectMailboxes: true, ExpectIdempotent: true, ExpectQuarantined: true}

func commandName(st *Step) string { return st.Verb }

// labelsKnown reports labels that no step has made yet.
func (c *checker) labelsKnown(st *Step, labels []string) {
	for _, l := range labels {
		if c.labels[l] {
			continue
		}
		msg := fmt.Sprintf("unknown label %q: no deliver, append, reply or forward makes it before this line", l)
		if near := nearest(l, c.labels); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		c.errorf(st.Line, commandName(st), "%s", msg)
	}
}

func (c *checker) specialUse(st *Step, use string) {
	if _, ok := c.special[use]; !ok {
		c.errorf(st.Line, st.Verb, "no %s mailbox: declare one, e.g. \"mailbox %s %s\"", use, strings.TrimPrefix(use, `\`), use)
	}
}

// device checks a device step and applies its effect on the device's view.
func (c *checker) device(st *Step) {
	if !c.devices[st.Actor] {
		if c.hasDevices {
			c.errorf(st.Line, st.Verb, "unknown device %q (devices: %s)", st.Actor, strings.Join(c.order, " "))
		}
		return
	}
	view := c.views[st.Actor]
	if c.watching[st.Actor] {
		// A watching device syncs on its own whenever the server changes.
		for m := range c.server {
			view[m] = true
		}
	}
	switch st.Verb {
	case "read", "unread", "flag", "unflag", "delete":
		c.mailboxKnown(st, view, st.Mailbox)
		c.labelsKnown(st, st.Labels)
	case "trash":
		c.mailboxKnown(st, view, st.Mailbox)
		c.labelsKnown(st, st.Labels)
		c.specialUse(st, `\Trash`)
	case "move", "copy":
		c.mailboxKnown(st, view, st.Mailbox)
		c.labelsKnown(st, st.Labels)
		c.mailboxKnown(st, view, st.Dest)
	case "append":
		c.deliver(st, view)
	case "resave":
		c.mailboxKnown(st, view, st.Mailbox)
		c.labelsKnown(st, st.Labels)
	case "reply", "forward":
		c.mailboxKnown(st, view, st.Mailbox)
		c.labelsKnown(st, st.Labels)
		c.specialUse(st, `\Sent`)
		c.labels[st.Dest] = true
	case "create", "remove", "rename":
		if c.mailboxOp(st, view) {
			c.pending[st.Actor] = append(c.pending[st.Actor], mailboxOp{st.Verb, st.Mailbox, st.Dest})
		}
	case "watch":
		c.mailboxKnown(st, view, st.Mailbox)
		c.watching[st.Actor] = true
	case "unwatch":
		delete(c.watching, st.Actor)
	case "sync":
		c.sync(st.Actor)
	case "wipe":
		c.pending[st.Actor] = nil
		c.views[st.Actor] = c.server.clone()
	}
}

// mailboxOp applies create, remove or rename to set; it reports whether it was valid.
func (c *checker) mailboxOp(st *Step, set mailboxSet) bool {
	switch st.Verb {
	case "create":
		if st.Mailbox == "INBOX" {
			c.errorf(st.Line, st.Verb, "INBOX always exists")
			return false
		}
		set[st.Mailbox] = true
		c.ever[st.Mailbox] = true
		delete(c.gone, st.Mailbox)
	case "remove", "rename":
		if st.Mailbox == "INBOX" {
			c.errorf(st.Line, st.Verb, "INBOX cannot be %sd", st.Verb)
			return false
		}
		if !c.mailboxKnown(st, set, st.Mailbox) {
			return false
		}
		if st.Verb == "rename" && st.Dest == "INBOX" {
			c.errorf(st.Line, st.Verb, "INBOX always exists")
			return false
		}
		applyMailboxOp(set, mailboxOp{st.Verb, st.Mailbox, st.Dest})
		c.gone[st.Mailbox] = st.Line
		if st.Verb == "rename" {
			c.ever[st.Dest] = true
			delete(c.gone, st.Dest)
			for m := range set {
				c.ever[m] = true
			}
		}
	}
	return true
}

// applyMailboxOp applies a mailbox change to a set; rename takes the children along.
func applyMailboxOp(set mailboxSet, op mailboxOp) {
	switch op.verb {
	case "create":
		set[op.name] = true
	case "remove":
		delete(set, op.name)
	case "rename":
		for m := range set {
			if m == op.name || strings.HasPrefix(m, op.name+"/") {
				delete(set, m)
				set[op.dest+strings.TrimPrefix(m, op.name)] = true
			}
		}
		set[op.dest] = true
	}
}

// sync sends a device's mailbox changes to the server and gives it the server's view.
func (c *checker) sync(device string) {
	for _, op := range c.pending[device] {
		applyMailboxOp(c.server, op)
	}
	c.pending[device] = nil
	c.views[device] = c.server.clone()
}

// other checks server, flow and check steps.
func (c *checker) other(st *Step, blocks enclosing) {
	switch {
	case st.Actor == ActorServer:
		c.serverStep(st)
	case st.Verb == "sync":
		for _, d := range c.order {
			c.sync(d)
		}
	case st.Verb == "expect":
		c.expect(st, blocks)
	}
}

func (c *checker) serverStep(st *Step) {
	switch st.Verb {
	case "deliver":
		c.deliver(st, c.server)
	case "read", "unread", "flag", "unflag", "expunge":
		c.mailboxKnown(st, c.server, st.Mailbox)
		c.labelsKnown(st, st.Labels)
	case "move", "copy":
		c.mailboxKnown(st, c.server, st.Mailbox)
		c.labelsKnown(st, st.Labels)
		c.mailboxKnown(st, c.server, st.Dest)
	case "create", "remove", "rename":
		c.mailboxOp(st, c.server)
	case "uidvalidity-bump", "uidvalidity-reset", "renumber-silently":
		c.mailboxKnown(st, c.server, st.Mailbox)
	}
}

func (c *checker) expect(st *Step, blocks enclosing) {
	e := st.Expect
	if b := blocks.concurrently; b != nil {
		c.errorf(st.Line, st.Verb, "expect inside concurrently (line %d): checks run between steps", b.Line)
	}
	if e == nil {
		return
	}
	set := c.server
	if e.Where != "" && e.Where != ActorServer {
		if !c.devices[e.Where] {
			c.errorf(st.Line, st.Verb, "unknown device %q (devices: %s)", e.Where, strings.Join(c.order, " "))
			return
		}
		// A device may still get the server's mailboxes (within=, push): accept both.
		set = c.views[e.Where].clone()
		for m := range c.server {
			set[m] = true
		}
	}
	switch e.Kind {
	case ExpectContents, ExpectFlags, ExpectCount:
		c.mailboxKnown(st, set, e.Mailbox)
	case ExpectMailboxes:
		seen := map[string]bool{}
		for _, m := range e.Mailboxes {
			if seen[m] {
				c.errorf(st.Line, st.Verb, "mailbox %q listed twice", m)
			}
			seen[m] = true
			c.mailboxKnown(st, c.ever, m)
		}
	}
	c.labelsKnown(st, e.Labels)
}

// nearest returns the name in set closest to s, if it is close enough to be a typo.
func nearest(s string, set map[string]bool) string {
	best, bestD := "", 3
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < bestD && n != s {
			best, bestD = n, d
		}
	}
	if len(s) < 4 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
