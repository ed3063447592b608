package harness

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// expect evaluates an expect line; with within= it polls until the expectation holds or the
// time runs out. A failed expectation is a failure of the scenario, not an error.
func (r *runner) expect(ctx context.Context, st *scenarios.Step) error {
	e := st.Expect
	if e == nil {
		return fatal(fmt.Errorf("expect without an expectation"))
	}
	if r.gate != nil && r.fakeServer() != nil {
		return r.expectLogical(ctx, st)
	}
	begin := time.Now()
	deadline := begin.Add(e.Within + r.idleExtra())
	for {
		f, err := r.evaluate(ctx, st)
		if err != nil {
			return fatal(err)
		}
		if f == nil {
			return nil
		}
		if e.Within <= 0 || time.Now().After(deadline) {
			f.Invariant, f.Line = "expect", st.Line
			if f.Title == "" {
				f.Title = e.Kind
			}
			if e.Within > 0 {
				f.Message += fmt.Sprintf(" (after waiting %.1fs, real time)", time.Since(begin).Seconds())
			}
			r.fail(*f)
			return fmt.Errorf("%s", f.Message)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval(e)):
		}
	}
}

// expectLogical evaluates an expect line in deterministic mode on the fake server, where
// nothing changes but through the scenario's steps and the rounds of devices in push mode.
// With within= it first waits until every watching device is quiet (see runner.quiesce):
// after that, nothing more can change until the next step, so the expectation is
// evaluated once. The wait is measured on the logical clock, one tick per command, and
// must not be longer than within.
func (r *runner) expectLogical(ctx context.Context, st *scenarios.Step) error {
	e := st.Expect
	begin := r.since()
	if e.Within > 0 {
		r.quiesce(ctx)
	}
	waited := r.since() - begin
	f, err := r.evaluate(ctx, st)
	if err != nil {
		return fatal(err)
	}
	// A fake server in the idle-every mode tells the watchers in real time, at its next
	// poll: within= is real time for it. With Options.IdleWait every within= waits the
	// measured latency longer.
	var real time.Duration
	budget := r.idleExtra()
	if fs := r.fakeServer(); fs != nil && fs.IdleEvery(fakeUser) > 0 {
		budget += e.Within
	}
	for realStart := time.Now(); f != nil && e.Within > 0 && time.Since(realStart) < budget; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval(e)):
		}
		r.quiesce(ctx)
		if f, err = r.evaluate(ctx, st); err != nil {
			return fatal(err)
		}
		real = time.Since(realStart)
	}
	if f == nil && waited > e.Within && e.Within > 0 {
		f = &reports.Failure{Message: fmt.Sprintf("it held only after %s on the logical clock, beyond within=%s", waited, e.Within)}
	}
	if f == nil {
		return nil
	}
	f.Invariant, f.Line = "expect", st.Line
	if f.Title == "" {
		f.Title = e.Kind
	}
	if e.Within > 0 {
		f.Message += fmt.Sprintf(" (after waiting %s on the logical clock for the devices in push mode to settle)", waited)
		if real > 0 {
			f.Message += fmt.Sprintf(" and %.1fs of real time for the server's IDLE updates", real.Seconds())
		}
	}
	r.fail(*f)
	return fmt.Errorf("%s", f.Message)
}

// view returns the replica seen by where: "server" (or "") or a device name.
func (r *runner) view(ctx context.Context, where string) (clients.Replica, error) {
	if where == "" || where == "server" {
		st, err := r.server.State(ctx)
		if err != nil {
			return clients.Replica{}, fmt.Errorf("read server state: %w", err)
		}
		var rep clients.Replica
		for _, mb := range st.Mailboxes {
			m := clients.Mailbox{Name: mb.Name}
			for _, msg := range mb.Messages {
				m.Messages = append(m.Messages, clients.Message{Label: msg.Label, Hash: msg.Hash, Flags: msg.Flags})
			}
			rep.Mailboxes = append(rep.Mailboxes, m)
		}
		return rep, nil
	}
	d := r.byName[where]
	if d == nil {
		return clients.Replica{}, fmt.Errorf("unknown device %q", where)
	}
	return d.dev.View(ctx)
}

func labelsOf(mb *clients.Mailbox) []string {
	if mb == nil {
		return nil
	}
	var out []string
	for _, m := range mb.Messages {
		out = append(out, m.Label)
	}
	sort.Strings(out)
	return out
}

// cleanFlags returns flags without \Recent, sorted, keywords in lower case: flag and
// keyword names are case-insensitive (RFC 3501 §2.3.2), and a device may keep the user's
// `$Label1` where the server stores `$label1`.
func cleanFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if !strings.EqualFold(f, `\Recent`) {
			if strings.HasPrefix(f, `\`) && len(f) > 1 {
				f = strings.ToUpper(f[:2]) + strings.ToLower(f[2:]) // \SEEN is \Seen
			} else {
				f = strings.ToLower(f)
			}
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func sameFlags(a, b []string) bool {
	a, b = cleanFlags(a), cleanFlags(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

func whereName(w string) string {
	if w == "" {
		return "server"
	}
	return w
}

// evaluate returns a failure, or nil when the expectation holds.
func (r *runner) evaluate(ctx context.Context, st *scenarios.Step) (*reports.Failure, error) {
	e := st.Expect
	where := whereName(e.Where)
	switch e.Kind {
	case "converged":
		return r.expectConverged(ctx)
	case "idempotent":
		return r.expectIdempotent(ctx)
	case "contents", "count":
		v, err := r.view(ctx, e.Where)
		if err != nil {
			return nil, err
		}
		got := labelsOf(v.Find(e.Mailbox))
		if e.Kind == "count" {
			if len(got) == e.N {
				return nil, nil
			}
			return &reports.Failure{Devices: devs(where), Message: fmt.Sprintf("%s has %d messages in %s, want %d", where, len(got), e.Mailbox, e.N),
				Table: &reports.Table{Columns: []string{"mailbox", "expected", where}, Rows: [][]string{{e.Mailbox, strconv.Itoa(e.N), strconv.Itoa(len(got))}}}}, nil
		}
		want := append([]string(nil), e.Labels...)
		sort.Strings(want)
		if slices.Equal(got, want) {
			return nil, nil
		}
		return &reports.Failure{Devices: devs(where), Labels: want,
			Message: fmt.Sprintf("%s %s holds %s, want %s", where, e.Mailbox, listOrNone(got), listOrNone(want)),
			Table:   &reports.Table{Columns: []string{"mailbox", "expected", where}, Rows: [][]string{{e.Mailbox, listOrNone(want), listOrNone(got)}}}}, nil
	case "flags":
		v, err := r.view(ctx, e.Where)
		if err != nil {
			return nil, err
		}
		mb := v.Find(e.Mailbox)
		for _, label := range e.Labels {
			found := false
			if mb != nil {
				for _, m := range mb.Messages {
					if m.Label != label {
						continue
					}
					found = true
					if !sameFlags(m.Flags, e.Flags) {
						return &reports.Failure{Devices: devs(where), Labels: []string{label},
							Message: fmt.Sprintf("%s %s %s has flags %s, want %s", where, e.Mailbox, label, flagList(m.Flags), flagList(e.Flags)),
							Table: &reports.Table{Columns: []string{"label", "mailbox", "expected", where},
								Rows: [][]string{{label, e.Mailbox, flagList(e.Flags), flagList(m.Flags)}}}}, nil
					}
				}
			}
			if !found {
				return &reports.Failure{Devices: devs(where), Labels: []string{label},
					Message: fmt.Sprintf("%s %s has no message %s", where, e.Mailbox, label)}, nil
			}
		}
		return nil, nil
	case "missing":
		places := []string{"server"}
		if e.Where == "" {
			for _, d := range r.devices {
				places = append(places, d.name)
			}
		} else {
			places = []string{e.Where}
		}
		for _, p := range places {
			v, err := r.view(ctx, p)
			if err != nil {
				return nil, err
			}
			for _, mb := range v.Mailboxes {
				for _, m := range mb.Messages {
					if slices.Contains(e.Labels, m.Label) {
						return &reports.Failure{Devices: devs(p), Labels: []string{m.Label},
							Message: fmt.Sprintf("%s is still in %s on %s", m.Label, mb.Name, p)}, nil
					}
				}
			}
		}
		return nil, nil
	case "mailboxes":
		v, err := r.view(ctx, e.Where)
		if err != nil {
			return nil, err
		}
		var got []string
		for _, mb := range v.Mailboxes {
			got = append(got, mb.Name)
		}
		want := append([]string(nil), e.Mailboxes...)
		if !slices.Contains(want, "INBOX") {
			want = append(want, "INBOX")
		}
		sort.Strings(got)
		sort.Strings(want)
		if slices.Equal(got, want) {
			return nil, nil
		}
		return &reports.Failure{Devices: devs(where), Message: fmt.Sprintf("%s has mailboxes %s, want %s", where, strings.Join(got, " "), strings.Join(want, " "))}, nil
	case "quarantined":
		d := r.byName[e.Where]
		if d == nil {
			return nil, fmt.Errorf("expect quarantined needs a device, got %q", e.Where)
		}
		ss, ok := d.dev.(clients.SyncStater)
		if !ok {
			return nil, skipError{reason: fmt.Sprintf("device %s cannot show its sync state", d.name)}
		}
		state, err := ss.SyncState(ctx)
		if err != nil {
			return nil, err
		}
		got := append([]string(nil), state.Quarantined...)
		want := append([]string(nil), e.Labels...)
		sort.Strings(got)
		sort.Strings(want)
		if slices.Equal(got, want) {
			return nil, nil
		}
		return &reports.Failure{Devices: devs(d.name), Labels: want,
			Message: fmt.Sprintf("%s quarantined %s, want %s", d.name, listOrNone(got), listOrNone(want))}, nil
	}
	return nil, fmt.Errorf("unknown expectation %q", e.Kind)
}

func devs(where string) []string {
	if where == "server" {
		return nil
	}
	return []string{where}
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, " ")
}

func flagList(f []string) string {
	f = cleanFlags(f)
	if len(f) == 0 {
		return "(none)"
	}
	return strings.Join(f, " ")
}

// expectConverged settles and compares every device's view with the server's.
func (r *runner) expectConverged(ctx context.Context) (*reports.Failure, error) {
	rounds, ok, last := r.settle(ctx)
	if !ok {
		return &reports.Failure{Message: fmt.Sprintf("the devices did not settle within %d rounds (last: %s)", rounds, last)}, nil
	}
	server, err := r.view(ctx, "server")
	if err != nil {
		return nil, err
	}
	for _, d := range r.devices {
		v, err := d.dev.View(ctx)
		if err != nil {
			return nil, err
		}
		// Content counts too (a draft saved again keeps its label), where the device shows it.
		content := showsContent(v)
		want, got := replicaKeys(server, content), replicaKeys(v, content)
		if diff := diffKeys(want, got); len(diff) > 0 {
			t := &reports.Table{Columns: []string{"mailbox", "label", "flags", "server", d.name}}
			if content {
				t.Columns = []string{"mailbox", "label", "flags", "content", "server", d.name}
			}
			for _, k := range diff {
				row := []string{k.mailbox, k.label, k.flags}
				if content {
					row = append(row, shortContent(k.hash))
				}
				t.Rows = append(t.Rows, append(row, strconv.Itoa(want[k]), strconv.Itoa(got[k])))
			}
			return &reports.Failure{Devices: []string{d.name},
				Message: fmt.Sprintf("%s differs from the server in %d places", d.name, len(diff)), Table: t}, nil
		}
	}
	return nil, nil
}

type replicaKey struct{ mailbox, label, flags, hash string }

// replicaKeys counts v's mailboxes and messages, these with their content hash if content.
func replicaKeys(v clients.Replica, content bool) map[replicaKey]int {
	out := map[replicaKey]int{}
	for _, mb := range v.Mailboxes {
		out[replicaKey{mb.Name, "", "(mailbox)", ""}]++
		for _, m := range mb.Messages {
			k := replicaKey{mb.Name, m.Label, flagList(m.Flags), ""}
			if content {
				k.hash = m.Hash
			}
			out[k]++
		}
	}
	return out
}

// showsContent reports whether a view gives every message's content hash.
func showsContent(v clients.Replica) bool {
	for _, mb := range v.Mailboxes {
		for _, m := range mb.Messages {
			if m.Hash == "" {
				return false
			}
		}
	}
	return true
}

func shortContent(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

func diffKeys(a, b map[replicaKey]int) []replicaKey {
	var out []replicaKey
	for k, n := range a {
		if b[k] != n {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].mailbox != out[j].mailbox {
			return out[i].mailbox < out[j].mailbox
		}
		return out[i].label < out[j].label
	})
	return out
}

// expectIdempotent runs one more round on every device: nothing may change.
func (r *runner) expectIdempotent(ctx context.Context) (*reports.Failure, error) {
	for _, d := range r.devices {
		before, err := d.dev.View(ctx)
		if err != nil {
			return nil, err
		}
		stats, err := d.dev.Sync(ctx)
		if err != nil {
			return &reports.Failure{Devices: []string{d.name}, Message: fmt.Sprintf("%s: sync failed: %v", d.name, err)}, nil
		}
		after, err := d.dev.View(ctx)
		if err != nil {
			return nil, err
		}
		if stats.Mutations > 0 || len(diffKeys(replicaKeys(before, true), replicaKeys(after, true))) > 0 {
			return &reports.Failure{Devices: []string{d.name},
				Message: fmt.Sprintf("%s: one more round sent %d mutating commands and changed %d local items", d.name, stats.Mutations, stats.LocalChanges)}, nil
		}
	}
	return nil, nil
}

// pollInterval is how often an expectation with within= is evaluated again: often for a
// device's view, which is local and cheap; less often where each look reads the server.
func pollInterval(e *scenarios.Expect) time.Duration {
	local := e.Where != "" && e.Where != "server" && e.Kind != "converged" && e.Kind != "idempotent"
	if local {
		return 2 * time.Millisecond
	}
	return 20 * time.Millisecond
}
