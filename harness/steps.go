package harness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// exec runs one step. It returns an error only when the scenario cannot go on (a setup
// error, a skip); a step that merely fails is recorded as a failure.
func (r *runner) exec(ctx context.Context, st *scenarios.Step, group int) error {
	ok, err := r.guardsHold(ctx, st)
	if err != nil || !ok {
		return err
	}
	if r.gate != nil && group == 0 {
		var done func()
		ctx, done = r.pushStep(ctx, st)
		defer done()
		r.gate.Tick()
	}
	if t := threadOf(ctx); t != nil {
		t.at(r.participant(st))
	}
	begin := r.since()
	if r.gate != nil && group == 0 {
		r.gate.Unhold()
	}
	stepErr := r.dispatch(ctx, st, group)
	r.stepEvent(st, begin, r.since()-begin, stepErr)
	rs := reports.Step{Line: st.Line, Text: r.lineText(st.Line), Actor: st.Actor, Start: begin, Duration: r.since() - begin}
	var skip skipError
	if errors.As(stepErr, &skip) {
		return stepErr
	}
	if errors.Is(stepErr, ErrUnsupported) {
		return skipError{reason: fmt.Sprintf("line %d: %v", st.Line, stepErr)}
	}
	var fatal fatalError
	if errors.As(stepErr, &fatal) {
		rs.Error = fatal.err.Error()
		r.addStep(rs)
		return fmt.Errorf("%s:%d: %s: %w", r.scn.File, st.Line, st.Verb, fatal.err)
	}
	if stepErr != nil {
		rs.Error = stepErr.Error()
	}
	if st.Verb != "concurrently" && st.Verb != "repeat" {
		r.addStep(rs)
	}
	return nil
}

// fatalError ends the scenario with an error: the harness could not do what the scenario
// asks (a setup step failed, a device could not be built).
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }

// Unwrap lets a setup step that needs what the target cannot do (ErrUnsupported) skip the
// scenario instead of failing it.
func (e fatalError) Unwrap() error { return e.err }

func fatal(err error) error {
	if err == nil {
		return nil
	}
	return fatalError{err}
}

func (r *runner) addStep(s reports.Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, s)
}

func (r *runner) guardsHold(ctx context.Context, st *scenarios.Step) (bool, error) {
	for _, g := range st.Guards {
		var holds bool
		switch g.Name {
		case "fake", "remote":
			holds = r.target.Kind() == g.Name
		case "cap":
			caps, err := r.caps(ctx)
			if err != nil {
				return false, err
			}
			holds = caps[strings.ToUpper(g.Arg)]
		default:
			return false, fmt.Errorf("%s:%d: unknown guard %q", r.scn.File, st.Line, g.Name)
		}
		if holds == g.Not {
			return false, nil
		}
	}
	return true, nil
}

func (r *runner) dispatch(ctx context.Context, st *scenarios.Step, group int) error {
	switch {
	case st.Actor == "server":
		return r.serverStep(ctx, st, group)
	case st.Actor != "":
		d := r.byName[st.Actor]
		if d == nil {
			return fatal(fmt.Errorf("unknown device %q", st.Actor))
		}
		return r.deviceStep(ctx, d, st, group)
	}
	switch st.Verb {
	case "devices":
		for _, name := range st.Devices {
			d, err := r.newDevice(ctx, name)
			if err != nil {
				return fatal(err)
			}
			r.devices = append(r.devices, d)
			r.byName[name] = d
		}
		return nil
	case "mailbox":
		err := r.server.Do(ctx, ServerOp{Kind: "create", Mailbox: st.Mailbox, SpecialUse: st.SpecialUse})
		r.record(check.Op{Line: st.Line, Actor: "setup", Kind: "create", Mailbox: st.Mailbox})
		return fatal(err)
	case "caps":
		r.record(check.Op{Line: st.Line, Actor: "setup", Kind: "caps", Flags: st.Caps})
		r.maskedCaps = nil
		for _, c := range st.Caps {
			if name, ok := strings.CutPrefix(c, "-"); ok {
				r.maskedCaps = append(r.maskedCaps, strings.ToUpper(name))
			}
		}
		for _, d := range r.devices {
			d.proxy.MaskCaps(r.maskedCaps...)
		}
		r.forgetCaps()
		return nil
	case "deliver":
		op, err := r.deliverOp(st)
		if err != nil {
			return fatal(err)
		}
		err = r.server.Do(ctx, op)
		r.record(check.Op{Line: st.Line, Actor: "setup", Kind: "deliver", Mailbox: st.Mailbox, Labels: st.Labels, Flags: st.Flags})
		return fatal(err)
	case "sync":
		var errs []string
		for _, d := range r.devices {
			err := r.syncDevice(ctx, d, st, group)
			var skip skipError
			if errors.As(err, &skip) {
				return err
			}
			if err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return errors.New(strings.Join(errs, "; "))
		}
		return nil
	case "concurrently":
		r.mu.Lock()
		r.group++
		g := r.group
		r.mu.Unlock()
		var wg sync.WaitGroup
		errs := make([]error, len(st.Body))
		if t := threadOf(ctx); t != nil {
			t.at("")
		}
		// Every child is active at the scheduler before any starts, so the first command of
		// one cannot pass before the others reach the gate.
		threads := make([]*thread, len(st.Body))
		if r.gate != nil {
			for i, child := range st.Body {
				threads[i] = &thread{gate: r.gate}
				threads[i].at(r.participant(child))
			}
		}
		for i, child := range st.Body {
			cctx, t := ctx, threads[i]
			if t != nil {
				cctx = withThread(ctx, t)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = r.exec(cctx, child, g)
				if t != nil {
					t.done()
				}
			}()
		}
		wg.Wait()
		return fatal(errors.Join(errs...))
	case "repeat":
		for i := 0; i < st.N; i++ {
			for _, child := range st.Body {
				if err := r.exec(ctx, child, group); err != nil {
					return fatal(err)
				}
			}
		}
		return nil
	case "expect":
		return r.expect(ctx, st)
	}
	return fatal(fmt.Errorf("the harness does not know the command %q", st.Verb))
}

// messageEpoch dates the messages a scenario makes: a fixed time, so that a seed
// reproduces a run byte for byte.
var messageEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// nextMessage makes the raw message for label, and its date.
func (r *runner) nextMessage(label string, noID bool, size int) ([]byte, time.Time) {
	r.mu.Lock()
	r.msgIndex++
	idx := r.msgIndex
	r.mu.Unlock()
	date := messageEpoch.Add(time.Duration(idx) * time.Minute)
	return clients.MakeMessage(clients.MessageSpec{Label: label, Run: r.runID, NoMessageID: noID, Size: size, Seed: r.seed + idx, Date: date}), date
}

func (r *runner) deliverOp(st *scenarios.Step) (ServerOp, error) {
	op := ServerOp{Kind: "deliver", Mailbox: st.Mailbox}
	for _, label := range st.Labels {
		var body []byte
		date := messageEpoch
		if st.File != "" {
			b, ok := r.scn.Files[st.File]
			if !ok {
				return op, fmt.Errorf("no attached file %q", st.File)
			}
			body = toCRLF(b)
		} else {
			size := 0
			if v, ok := st.Options["size"]; ok {
				size, _ = strconv.Atoi(v)
			}
			body, date = r.nextMessage(label, st.NoMessageID, size)
		}
		op.Messages = append(op.Messages, ServerMessage{Label: label, Body: body, Flags: st.Flags, Date: date})
	}
	return op, nil
}

func toCRLF(b []byte) []byte {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func (r *runner) serverStep(ctx context.Context, st *scenarios.Step, group int) error {
	op := ServerOp{Kind: st.Verb, Mailbox: st.Mailbox, Dest: st.Dest, Labels: st.Labels, Flag: st.Flag,
		SpecialUse: st.SpecialUse, N: st.N, Response: st.Response, Command: st.Options["command"],
		Duration: st.Duration, Caps: st.Caps}
	hist := check.Op{Line: st.Line, Actor: "server", Kind: st.Verb, Mailbox: st.Mailbox, Dest: st.Dest,
		Labels: st.Labels, Flag: st.Flag, Flags: st.Flags, Group: group}
	switch st.Verb {
	case "deliver":
		var err error
		if op, err = r.deliverOp(st); err != nil {
			return fatal(err)
		}
	case "read", "unread":
		op.Kind, op.Flag = map[string]string{"read": "flag", "unread": "unflag"}[st.Verb], `\Seen`
		hist.Kind, hist.Flag = op.Kind, `\Seen`
	case "caps":
		r.forgetCaps()
		hist.Flags = st.Caps
	}
	if threadOf(ctx) != nil {
		// A server step inside a concurrently block takes its turn with the devices.
		if err := r.gate.Wait(ctx, ServerParticipant, r.lineText(st.Line)); err != nil {
			return fatal(err)
		}
	}
	if folderStep(op.Kind) {
		r.readAround(ctx, fmt.Sprintf("before line %d", st.Line))
	}
	err := r.server.Do(ctx, op)
	if err != nil {
		hist.Err = err.Error()
	} else if folderStep(op.Kind) {
		r.readAround(ctx, fmt.Sprintf("after line %d", st.Line))
	}
	r.record(hist)
	if errors.Is(err, ErrUnsupported) {
		return err
	}
	if reason, ok := limitation(op, err); ok {
		return skipError{reason: fmt.Sprintf("line %d: %s", st.Line, reason)}
	}
	return fatal(err)
}

func (r *runner) deviceStep(ctx context.Context, d *device, st *scenarios.Step, group int) error {
	hist := check.Op{Line: st.Line, Actor: d.name, Kind: st.Verb, Mailbox: st.Mailbox, Dest: st.Dest,
		Labels: st.Labels, Flag: st.Flag, Flags: st.Flags, Group: group}
	var err error
	switch st.Verb {
	case "sync":
		return r.syncDevice(ctx, d, st, group)
	case "offline", "online":
		d.offline = st.Verb == "offline"
		d.proxy.SetOffline(d.offline)
	case "latency":
		d.proxy.SetLatency(st.Duration)
	case "drop":
		d.proxy.Drop()
	case "crash":
		d.stopWatch()
		err = d.dev.Crash()
	case "wipe":
		d.stopWatch()
		d.dev.Close()
		d.wiped = true
		if err := r.incarnate(ctx, d); err != nil {
			return fatal(err)
		}
	case "watch":
		err = d.startWatch(ctx, st.Mailbox)
		if errors.Is(err, ErrUnsupported) {
			return err
		}
	case "unwatch":
		d.stopWatch()
	case "read", "unread", "flag", "unflag", "move", "copy", "delete", "trash", "create", "remove", "rename":
		a := clients.Action{Kind: clients.ActionKind(st.Verb), Mailbox: st.Mailbox, Labels: st.Labels, Flag: st.Flag, Dest: st.Dest}
		switch st.Verb {
		case "read", "unread":
			hist.Flag = `\Seen`
		case "trash":
			// The scenario's \Trash mailbox, for a device that knows its trash by name (a
			// Maildir reader); one that reads special use from the server may ignore it.
			hist.Trash = r.trash
			a.Dest = r.trash
		}
		err = d.dev.Do(ctx, a)
	case "append":
		label := st.Labels[0]
		body, date := r.nextMessage(label, st.NoMessageID, 0)
		err = d.dev.Do(ctx, clients.Action{Kind: clients.ActAppend, Mailbox: st.Mailbox, Labels: []string{label},
			Message: body, Flags: st.Flags, Date: date})
	case "resave":
		// Deleted, then a new text appended in its place: the same label (so the same
		// Message-ID) and size, a later Date. The history has both steps.
		size := 0
		if v, ok := st.Options["size"]; ok {
			size, _ = strconv.Atoi(v)
		}
		hist.Kind = "delete"
		if err = d.dev.Do(ctx, clients.Action{Kind: clients.ActDelete, Mailbox: st.Mailbox, Labels: st.Labels}); err == nil {
			r.record(hist)
			hist = check.Op{Line: st.Line, Actor: d.name, Kind: "append", Mailbox: st.Mailbox, Labels: st.Labels,
				Flags: st.Flags, Group: group}
			body, date := r.nextMessage(st.Labels[0], false, size)
			err = d.dev.Do(ctx, clients.Action{Kind: clients.ActAppend, Mailbox: st.Mailbox, Labels: st.Labels,
				Message: body, Flags: st.Flags, Date: date})
		}
	case "reply", "forward":
		flag := `\Answered`
		if st.Verb == "forward" {
			flag = "$Forwarded"
		}
		hist.Sent, hist.Flag = r.sent, flag
		err = d.dev.Do(ctx, clients.Action{Kind: clients.ActFlag, Mailbox: st.Mailbox, Labels: st.Labels, Flag: flag})
		if err == nil {
			body, date := r.nextMessage(st.Dest, false, 0)
			err = d.dev.Do(ctx, clients.Action{Kind: clients.ActAppend, Mailbox: r.sent, Labels: []string{st.Dest},
				Message: body, Flags: []string{`\Seen`}, Date: date})
		}
	default:
		return fatal(fmt.Errorf("the harness does not know the device command %q", st.Verb))
	}
	if err != nil {
		hist.Err = err.Error()
		r.fail(reports.Failure{Invariant: "step", Title: "step succeeds", Line: st.Line, Devices: []string{d.name},
			Labels: st.Labels, Message: fmt.Sprintf("line %d: %s %s: %v", st.Line, d.name, st.Verb, err)})
	}
	r.record(hist)
	return err
}

// syncDevice runs one sync round of d, with the interrupt or crash the step asks for.
func (r *runner) syncDevice(ctx context.Context, d *device, st *scenarios.Step, group int) error {
	cut, crash, lose := 0, false, false
	for _, o := range []struct {
		name        string
		crash, lose bool
	}{{"interrupt-after", false, false}, {"crash-after", true, false}, {"lose-answer", false, true}, {"crash-lose-answer", true, true}} {
		if v, ok := st.Options[o.name]; ok {
			cut, _ = strconv.Atoi(v)
			crash, lose = o.crash, o.lose
		}
	}
	if t := threadOf(ctx); t != nil {
		t.at(d.name)
	}
	switch {
	case cut > 0 && lose:
		d.proxy.LoseAnswerOffline(cut)
	case cut > 0:
		// Once cut, the device stays off the network until this round returns: an
		// interrupted round cannot quietly reconnect and finish behind the cut, and a
		// crash happens where the cut fell.
		d.proxy.CutAfterOffline(cut)
	}
	begin, from := r.since(), len(d.proxy.Transcript())
	_, err := d.dev.Sync(ctx)
	if cut > 0 {
		d.proxy.CutAfter(0)
		d.proxy.SetOffline(d.offline)
	}
	text := d.name + " sync"
	for _, o := range []string{"interrupt-after", "crash-after", "lose-answer", "crash-lose-answer"} {
		if v, ok := st.Options[o]; ok {
			text += " " + o + "=" + v
		}
	}
	r.syncEvent(d, st.Line, text, begin, from, err)
	hist := check.Op{Line: st.Line, Actor: d.name, Kind: "sync", Group: group}
	if err != nil {
		hist.Err = err.Error()
	}
	r.record(hist)
	if err != nil {
		if reason := r.deviceLimitation(d, from); reason != "" {
			return skipError{reason: reason}
		}
	}
	if crash {
		if cerr := d.dev.Crash(); cerr != nil {
			return fatal(fmt.Errorf("crash %s: %w", d.name, cerr))
		}
		r.record(check.Op{Line: st.Line, Actor: d.name, Kind: "crash", Group: group})
		r.event(reports.TimelineEvent{Time: r.since(), Lane: d.name, Kind: reports.EventFault, Line: st.Line, Text: d.name + " crashed"})
	}
	// A failed sync is part of what scenarios exercise (offline devices, injected server
	// failures, interrupts): it is in the history and the step's report, not a failure.
	return err
}

// participant is who a step acts as at the deterministic scheduler: its device, the
// server, the first device for a sync of every device, the first participant of a block's
// body, or "" for a step that sends nothing to the server.
func (r *runner) participant(st *scenarios.Step) string {
	switch {
	case st.Actor == scenarios.ActorServer:
		return ServerParticipant
	case st.Actor != "":
		return st.Actor
	case st.Verb == "sync" && len(r.devices) > 0:
		return r.devices[0].name
	case st.Verb == "repeat" || st.Verb == "concurrently":
		for _, c := range st.Body {
			if p := r.participant(c); p != "" {
				return p
			}
		}
	}
	return ""
}
