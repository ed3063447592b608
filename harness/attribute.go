package harness

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// attribute judges every line the server sent against the server invariants (with the
// transcripts' clock and the scenario's server steps, so that S7, S8, S12 and S13 can be
// judged across devices) and decides whether a scenario that did not pass is a server
// finding:
//   - every failure is a server finding; or
//   - the first server finding came before the states diverged (before the end of the
//     step after which they diverged; when that step is unknown, any time), and the same
//     scenario with the same seed passes on a correct server: the in-process fake server
//     without bug modes, run once more here. It costs one more run of the scenario, in
//     process, only for scenarios that failed with server findings.
//
// Otherwise the status stays and Attribution says why the server findings did not count.
// A scenario that fails on the correct fake server too is the engine's, whatever the
// server did.
func attribute(ctx context.Context, scn *scenarios.Scenario, opts Options, res *Result) {
	rep := res.Report
	if rep.Status != reports.Failed && rep.Status != reports.Errored && rep.Status != reports.Passed {
		return
	}
	found := check.CheckWireWith(wireLines(res), check.WireOptions{Injected: injected(res.History)})
	var engine []reports.Failure
	for _, f := range rep.Failures {
		if !f.Server {
			engine = append(engine, f)
		}
	}
	if len(found) == 0 {
		return
	}
	first := time.Duration(math.MaxInt64)
	var firstID string
	var server []reports.Failure
	for _, r := range found {
		if r.At < first {
			first, firstID = r.At, r.Invariant
		}
		server = append(server, reports.Failure{Invariant: r.Invariant, Title: r.Title, Message: r.Message,
			Devices: r.Devices, Labels: r.Labels, Table: convertTable(r.Table), Server: true})
	}
	rep.Failures = append(engine, server...)
	if len(engine) == 0 && rep.Status != reports.Errored {
		rep.Status = reports.ServerFinding
		rep.Attribution = "every failure is a server finding"
		return
	}
	div := divergenceEnd(rep)
	if first > div {
		rep.Attribution = fmt.Sprintf("not the server's: its first finding (%s at %s) came after the states diverged", firstID, seconds(first))
		return
	}
	if ft, ok := opts.Target.(FakeTarget); ok && ft.correct() || opts.Target == nil {
		return // the correct server itself: nothing to compare with
	}
	again := opts
	again.Target = FakeTarget{}
	again.KeepArtifacts = false
	start := time.Now()
	other := RunScenario(ctx, scn, again)
	cost := time.Since(start).Round(time.Millisecond)
	if other.Report.Status != reports.Passed {
		rep.Attribution = fmt.Sprintf("not the server's alone: %s at %s came before the states diverged, but the same scenario and seed end %s on the fake server too (%v)", firstID, seconds(first), other.Report.Status, cost)
		return
	}
	rep.Status = reports.ServerFinding
	where := "the states diverged"
	if rep.DivergedAt > 0 {
		where = fmt.Sprintf("the states diverged (after line %d)", rep.DivergedAt)
	}
	rep.Attribution = fmt.Sprintf("%s at %s came before %s, and the same scenario and seed pass on the fake server (%v)", firstID, seconds(first), where, cost)
}

func seconds(d time.Duration) string { return fmt.Sprintf("+%.3fs", d.Seconds()) }

// divergenceEnd is when the divergence was first carried to the server or read from it:
// the end of the first sync at or after the step after which the states diverged (a local
// change diverges at once, and only its sync shows what the server did with it); with no
// such step known, the end of time.
func divergenceEnd(rep *reports.Scenario) time.Duration {
	if rep.DivergedAt > 0 {
		for _, st := range rep.Steps {
			if st.Line >= rep.DivergedAt && strings.Contains(st.Text, "sync") {
				return st.Start + st.Duration
			}
		}
	}
	return time.Duration(math.MaxInt64)
}

// wireLines is every device's transcript on the scenario's clock, with the server steps
// as spans in which the state changed outside the transcripts.
func wireLines(res *Result) []check.WireLine {
	var out []check.WireLine
	for _, dev := range res.Report.Devices {
		for _, l := range res.Transcripts[dev] {
			out = append(out, check.WireLine{Device: dev, Conn: l.Conn, Dir: l.Dir, Text: l.Text, Time: l.Time})
		}
	}
	for _, st := range res.Report.Steps {
		if st.Actor == "server" {
			out = append(out, check.WireLine{Device: reports.ServerLane, Dir: 'M', Text: st.Text, Time: st.Start, End: st.Start + st.Duration})
		}
	}
	return out
}

func injected(h []check.Op) bool {
	for _, op := range h {
		if op.Actor == "server" && op.Kind == "fail" {
			return true
		}
	}
	return false
}
