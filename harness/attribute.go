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

// attribute decides whether a scenario that did not pass is a server finding, from the
// server invariants its run found on the wire (Result.ServerFindings: judged once, with the
// transcripts' clock and the scenario's server steps, by the same check that gave the
// verdict its server failures):
//   - every failure is a server finding; or
//   - the first server finding came before the states diverged (before the end of the
//     first sync from the step after which they diverged, or from a device's later step
//     on a message of the failures: see divergenceEnd; when no step is known, any time),
//     and the same
//     scenario with the same seed passes on a correct server: the in-process fake server
//     without bug modes, run once more here. It costs one more run of the scenario, in
//     process, only for scenarios that failed with server findings.
//
// Otherwise the status stays and Attribution says why the server findings did not count.
// A scenario that fails on the correct fake server too is the engine's, whatever the
// server did.
func attribute(ctx context.Context, scn *scenarios.Scenario, opts Options, res *Result) {
	rep := res.Report
	found := res.ServerFindings
	if len(found) == 0 || rep.Status != reports.Failed && rep.Status != reports.Errored {
		return
	}
	first := time.Duration(math.MaxInt64)
	var firstID string
	for _, r := range found {
		if r.At < first {
			first, firstID = r.At, r.Invariant
		}
	}
	engine := 0
	for _, f := range rep.Failures {
		if !f.Server {
			engine++
		}
	}
	if engine == 0 && rep.Status != reports.Errored {
		rep.Status = reports.ServerFinding
		rep.Attribution = "every failure is a server finding"
		return
	}
	div, from := divergenceEnd(rep)
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
	if from > 0 && div < time.Duration(math.MaxInt64) {
		where = fmt.Sprintf("the states diverged (the sync carrying line %d ended at %s)", from, seconds(div))
	}
	rep.Attribution = fmt.Sprintf("%s at %s came before %s, and the same scenario and seed pass on the fake server (%v)", firstID, seconds(first), where, cost)
}

func seconds(d time.Duration) string { return fmt.Sprintf("+%.3fs", d.Seconds()) }

// divergenceEnd is when the divergence was first carried to the server or read from it:
// the end of the first sync at or after the step from which the states diverged; with no
// such step known, the end of time.
//
// The step from which they diverged is the line after which a wrong cell took its final
// value (DivergedAt), unless a device's later step acted on a message of the failures: a
// cell that kept the value it took at a delivery, say, was right until a device moved or
// changed that message, and a device's change reaches the server only with its next sync.
// So the divergence starts at the first such step: a finding in the exchange of the sync
// that carried the diverging work precedes it.
func divergenceEnd(rep *reports.Scenario) (end time.Duration, from int) {
	if rep.DivergedAt <= 0 {
		return time.Duration(math.MaxInt64), 0
	}
	from = rep.DivergedAt
	labels := failingLabels(rep)
	for _, st := range rep.Steps {
		if st.Line >= rep.DivergedAt && st.Actor != "" && st.Actor != reports.ServerLane && !isSync(st) && namesAny(st.Text, labels) {
			from = st.Line
			break
		}
	}
	for i, st := range rep.Steps {
		if st.Line < from || !isSync(st) {
			continue
		}
		if st.Line != rep.DivergedAt || st.Text != "sync" {
			return st.Start + st.Duration, from
		}
		// The states diverged in a sync of every device in turn: a device that synced
		// before another carried its work sees that work only in its next sync, so the
		// divergence is final only once that sync (the next sync step, or the settling
		// of expect converged or of the scenario's end) is over.
		for _, next := range rep.Steps[i+1:] {
			if isSync(next) || strings.HasPrefix(next.Text, "expect converged") {
				return next.Start + next.Duration, from
			}
		}
		return time.Duration(math.MaxInt64), from
	}
	return time.Duration(math.MaxInt64), from
}

func isSync(st reports.Step) bool {
	for _, w := range strings.Fields(st.Text) {
		if w == "sync" {
			return true
		}
	}
	return false
}

// failingLabels returns the message labels the scenario's failures name, server findings
// left out.
func failingLabels(rep *reports.Scenario) map[string]bool {
	out := map[string]bool{}
	for _, f := range rep.Failures {
		if f.Server {
			continue
		}
		for _, l := range f.Labels {
			out[l] = true
		}
	}
	return out
}

// namesAny reports whether a step's words name one of labels.
func namesAny(text string, labels map[string]bool) bool {
	for _, w := range strings.Fields(text) {
		if labels[w] {
			return true
		}
	}
	return false
}

func injected(h []check.Op) bool {
	for _, op := range h {
		if op.Actor == "server" && op.Kind == "fail" {
			return true
		}
	}
	return false
}
