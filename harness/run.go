package harness

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/harness/proxy"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// Result is the outcome of one scenario.
type Result struct {
	Report *reports.Scenario
	// Artifacts are kept for failed scenarios when Options.KeepArtifacts is set: file name →
	// content (per-device transcripts, the history as JSON lines, replicas, server state).
	Artifacts map[string][]byte
	// History is the scenario's history as the checker saw it (every step and server
	// change, in order).
	History []check.Op
	// Transcripts holds each device's IMAP transcript (protocol lines), by device name.
	Transcripts map[string][]proxy.Line
	// Interleaving lists the commands the deterministic scheduler ordered inside
	// concurrently blocks, as "device: command" (nil with Options.FreeInterleaving).
	Interleaving []string
	// GateFallbacks counts commands the scheduler let go because a device stalled (see
	// SchedulerOptions.Stall); nonzero means this run may not replay exactly.
	GateFallbacks int
	// ServerReads are the server's states as the harness read them itself (after each
	// step on the fake server, the final read), on the transcripts' clock: the server
	// invariants judge them with the transcripts (check.ServerRead).
	ServerReads []check.ServerRead
	// ServerFindings are the server invariants broken on the wire (S1–S13), each with the
	// time of its first line: the findings the report's server failures list and the
	// attribution weighs, from one check of the transcripts with their times.
	ServerFindings []check.Result
}

// skipError ends a scenario as skipped.
type skipError struct{ reason string }

func (e skipError) Error() string { return "skipped: " + e.reason }

// runner executes one scenario.
type runner struct {
	scn     *scenarios.Scenario
	opts    Options
	target  Target
	server  Server
	seed    int64
	runID   string
	start   time.Time
	tempDir string
	gate    *Scheduler // nil with Options.FreeInterleaving

	devices    []*device
	byName     map[string]*device
	maskedCaps []string
	capsMu     sync.Mutex      // guards serverCaps
	serverCaps map[string]bool // capabilities devices see; nil: ask again
	sent       string          // the \Sent mailbox
	trash      string          // the \Trash mailbox
	lines      []string

	mu       sync.Mutex // guards everything below
	history  []check.Op
	steps    []reports.Step
	failures []reports.Failure
	group    int
	msgIndex int64
	timeline []reports.TimelineEvent
	states   []reports.StateSnapshot
	final    *reports.StateTable // after settling, for reports
	relied   []check.Relaxation  // the relaxations the checker's verdict needed
	notAppl  []string            // the invariants the checker could not judge on these devices
	reads    []check.ServerRead  // the harness's own reads of the server
	// findings are the server invariants' results on the wire, with their times, once
	// wireJudged: the one check the verdict and the attribution share.
	findings   []check.Result
	wireJudged bool
}

// read records a read of the server's state by the harness itself, for the server
// invariants.
func (r *runner) read(what string, st check.ServerState) {
	at := r.since()
	r.mu.Lock()
	r.reads = append(r.reads, check.ServerRead{Time: at, What: what, State: st})
	r.mu.Unlock()
}

// ScenarioSeed derives a scenario's seed from the run seed and its name, so that a scenario
// behaves the same whatever else runs beside it.
func ScenarioSeed(runSeed int64, name string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", runSeed, name)
	return int64(h.Sum64() >> 1)
}

// RunScenario runs one scenario and returns its result. It never panics on a bad scenario
// or a misbehaving device: every problem ends up in the result. Its server findings are
// judged on the proxy's clock and the scenario attributed to the server where they explain
// its failures (attribute), as in RunAll.
func RunScenario(ctx context.Context, scn *scenarios.Scenario, opts Options) *Result {
	target := opts.Target
	if target == nil {
		target = FakeTarget{}
	}
	seed := ScenarioSeed(opts.Seed, scn.Name)
	r := &runner{
		scn:    scn,
		opts:   opts,
		target: target,
		seed:   seed,
		runID:  fmt.Sprintf("%x", uint64(seed)&0xffffffff),
		start:  time.Now(),
		byName: map[string]*device{},
		sent:   "Sent",
		trash:  "Trash",
		lines:  strings.Split(string(scn.Source), "\n"),
	}
	rep := &reports.Scenario{
		Name:        scn.Name,
		File:        scn.File,
		Category:    scn.Category,
		Description: scn.Description,
		Seed:        opts.Seed,
		Source:      string(scn.Source),
		Reproduce:   ReproduceCommand(scn, opts.Seed, opts.ReproduceFlags),
	}
	if !opts.FreeInterleaving {
		r.gate = NewScheduler(SchedulerOptions{Seed: seed, Stall: opts.GateStall})
	}
	res := &Result{Report: rep}
	err := r.run(ctx)
	err = r.limitedBy(err)
	rep.Duration = time.Since(r.start)
	rep.Steps = r.steps
	rep.Failures = r.failures
	for _, d := range r.devices {
		rep.Devices = append(rep.Devices, d.name)
	}
	var skip skipError
	switch {
	case errors.As(err, &skip):
		rep.Status = reports.Skipped
		rep.SkipReason = skip.reason
	case err != nil:
		rep.Status = reports.Errored
		rep.Error = err.Error()
	case len(r.failures) > 0:
		rep.Status = reports.Failed
	default:
		rep.Status = reports.Passed
	}
	// Every scenario that got to its end shows its final state, passed ones too: what
	// happened is worth seeing without writing a wrong expect line to learn it.
	rep.FinalState = r.final
	// The checks the devices could not show the state for (an external engine's I2, I9,
	// I10, I11) are neither passed nor failed, whatever the verdict.
	rep.NotApplicable = r.notAppl
	if rep.Status == reports.Passed {
		for _, x := range r.relied {
			rep.Relaxations = append(rep.Relaxations, reports.Relaxation{ID: x.ID, Name: x.Name, Kind: string(x.Kind)})
		}
	}
	if rep.Status == reports.Failed || rep.Status == reports.Errored {
		rep.Transcript = r.transcriptExcerpt(40)
		sort.SliceStable(r.timeline, func(i, j int) bool { return r.timeline[i].Time < r.timeline[j].Time })
		rep.Timeline = r.timeline
		rep.States = r.states
		rep.DivergedAt = divergedAt(r.states, r.final)
		if opts.KeepArtifacts {
			res.Artifacts = r.artifacts()
		}
	}
	r.mu.Lock()
	res.History = append([]check.Op(nil), r.history...)
	res.ServerReads = r.reads
	r.mu.Unlock()
	res.Transcripts = map[string][]proxy.Line{}
	for _, d := range r.devices {
		res.Transcripts[d.name] = d.proxy.Transcript()
	}
	if r.gate != nil {
		res.Interleaving = r.gate.Order()
		res.GateFallbacks = r.gate.Fallbacks()
	}
	r.judgeWire(rep)
	res.ServerFindings = r.findings
	r.cleanup()
	attribute(ctx, scn, opts, res)
	return res
}

// judgeWire checks the server invariants on the wire for a scenario that ended before its
// verdict (an error): finish judges them with the other invariants otherwise. A skipped
// scenario is not judged.
func (r *runner) judgeWire(rep *reports.Scenario) {
	if r.wireJudged || rep.Status != reports.Errored {
		return
	}
	r.mu.Lock()
	h, reads := append([]check.Op(nil), r.history...), append([]check.ServerRead(nil), r.reads...)
	r.mu.Unlock()
	r.findings = check.CheckWireWith(r.wireLines(), check.WireOptions{Injected: injected(h), Reads: reads})
	r.wireJudged = true
	for _, f := range r.findings {
		rep.Failures = append(rep.Failures, serverFailure(f))
	}
}

// wireLines is every device's transcript on the scenario's clock, with the server steps
// as spans in which the state changed outside the transcripts.
func (r *runner) wireLines() []check.WireLine {
	var out []check.WireLine
	for _, d := range r.devices {
		for _, l := range d.proxy.Transcript() {
			out = append(out, check.WireLine{Device: d.name, Conn: l.Conn, Dir: l.Dir, Text: l.Text, Time: l.Time})
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.steps {
		if st.Actor == "server" {
			out = append(out, check.WireLine{Device: reports.ServerLane, Dir: 'M', Text: st.Text, Time: st.Start, End: st.Start + st.Duration})
		}
	}
	return out
}

// serverFailure is a server invariant's result as a report's failure.
func serverFailure(f check.Result) reports.Failure {
	return reports.Failure{Invariant: f.Invariant, Title: f.Title, Message: f.Message,
		Devices: f.Devices, Labels: f.Labels, Table: convertTable(f.Table), Server: true}
}

// since is the time since the scenario started: the scheduler's logical clock in
// deterministic mode on the fake server, else the wall clock. A remote server's history
// cannot be replayed anyway, and its waits (an expectation's within=, a slow IDLE) are
// real: on the logical clock a wait of seconds would show as nothing.
func (r *runner) since() time.Duration {
	if r.gate != nil && r.logicalClock() {
		return r.gate.Now()
	}
	return time.Since(r.start)
}

// logicalClock reports whether times are on the scheduler's logical clock: deterministic
// mode on the fake server.
func (r *runner) logicalClock() bool {
	switch r.target.(type) {
	case FakeTarget, *FakeTarget:
		return r.gate != nil
	}
	return false
}

// ReproduceCommand is the command line that runs scn again with seed and flags: a
// catalogue scenario by name (--filter '^NAME$'), any other by its file. Every argument is
// quoted for a POSIX shell.
func ReproduceCommand(scn *scenarios.Scenario, seed int64, flags []string) string {
	args := []string{"syncharness", "run"}
	if strings.HasPrefix(scn.File, "catalog:") || scn.File == "" {
		args = append(args, "--filter", "^"+regexp.QuoteMeta(scn.Name)+"$")
	} else {
		args = append(args, scn.File)
	}
	args = append(args, "--seed", strconv.FormatInt(seed, 10))
	return ShellJoin(append(args, flags...))
}

// ShellJoin joins args into one POSIX shell command line, quoting each argument that
// needs it.
func ShellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = ShellQuote(a)
	}
	return strings.Join(out, " ")
}

// ShellQuote quotes s for a POSIX shell: unchanged when it holds only characters no shell
// treats specially, else in single quotes, a single quote inside closed, escaped and reopened.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

func (r *runner) cleanup() {
	for _, d := range r.devices {
		d.close()
	}
	if r.server != nil {
		r.server.Close()
	}
	if r.tempDir != "" && r.opts.TempDir == "" {
		os.RemoveAll(r.tempDir)
	}
}

func (r *runner) run(ctx context.Context) error {
	if r.opts.Skip != nil {
		if reason := r.opts.Skip(r.scn); reason != "" {
			return skipError{reason: reason}
		}
	}
	var err error
	if r.opts.TempDir != "" {
		r.tempDir, err = os.MkdirTemp(r.opts.TempDir, r.scn.Name+"-")
	} else {
		r.tempDir, err = os.MkdirTemp("", "syncharness-"+r.scn.Name+"-")
	}
	if err != nil {
		return err
	}
	if reason := r.idleSkip(); reason != "" {
		return skipError{reason: reason}
	}
	r.server, err = r.target.Open(ctx, ServerConfig{Scenario: r.scn.Name, Seed: r.seed, RunID: r.runID})
	if err != nil {
		return fmt.Errorf("open %s server: %w", r.target.Name(), err)
	}
	if fs := r.fakeServer(); fs != nil && r.logicalClock() {
		fs.SetClock(r.gate.Now) // the date of each change a watcher is told of
	}
	// Special-use names come from the setup lines.
	for _, st := range r.scn.Steps {
		if st.Actor == "" && st.Verb == "mailbox" {
			switch strings.ToLower(st.SpecialUse) {
			case `\sent`:
				r.sent = st.Mailbox
			case `\trash`:
				r.trash = st.Mailbox
			}
		}
	}
	for _, st := range r.scn.Steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.exec(ctx, st, 0); err != nil {
			return err
		}
		r.snapshotStates(ctx, st.Line)
	}
	return r.finish(ctx)
}

// finish settles every device and runs the invariants.
func (r *runner) finish(ctx context.Context) error {
	if r.gate != nil {
		r.gate.Unhold()
	}
	rounds, ok, last := r.settle(ctx)
	if !ok {
		r.fail(reports.Failure{
			Invariant: "settle",
			Title:     "settles",
			Message:   fmt.Sprintf("the devices did not settle within %d sync rounds (last: %s)", rounds, last),
		})
	}
	in := check.Input{}
	for _, d := range r.devices {
		before, err := d.dev.View(ctx)
		if err != nil {
			return fmt.Errorf("device %s: view: %w", d.name, err)
		}
		begin, from := r.since(), len(d.proxy.Transcript())
		stats, err := d.dev.Sync(ctx)
		r.syncEvent(d, 0, "idempotence round", begin, from, err)
		if err != nil {
			r.fail(reports.Failure{Invariant: "I8", Title: "idempotent", Devices: []string{d.name},
				Message: fmt.Sprintf("%s: the round after settling failed: %v", d.name, err)})
		}
		after, err := d.dev.View(ctx)
		if err != nil {
			return fmt.Errorf("device %s: view: %w", d.name, err)
		}
		cd := check.Device{Name: d.name, View: after, Wiped: d.wiped,
			Extra: &check.ExtraRound{Stats: stats, Before: before, After: after}}
		if ss, ok := d.dev.(clients.SyncStater); ok {
			st, err := ss.SyncState(ctx)
			if err != nil {
				return fmt.Errorf("device %s: sync state: %w", d.name, err)
			}
			cd.State = &st
		}
		in.Devices = append(in.Devices, cd)
	}
	state, err := r.server.State(ctx)
	if err != nil {
		return fmt.Errorf("read server state: %w", err)
	}
	r.read("at the end", state)
	in.Server = state
	r.mu.Lock()
	in.History = append([]check.Op(nil), r.history...)
	in.Reads = append([]check.ServerRead(nil), r.reads...)
	r.mu.Unlock()
	// The server invariants are judged here once, on the proxy's clock: the verdict and the
	// attribution (attribute.go) use the same findings.
	in.Wire = r.wireLines()
	verdict := check.Judge(in, r.opts.Policies)
	results := verdict.Results
	r.relied = verdict.Relied
	r.wireJudged = true
	for _, res := range results {
		if res.Server {
			r.findings = append(r.findings, res)
		}
	}
	r.final = finalState(in.Devices, in.Server, check.ExpectedUnder(in, r.opts.Policies))
	for _, res := range results {
		if res.NotApplicable {
			if !slices.Contains(r.notAppl, res.Invariant) {
				r.notAppl = append(r.notAppl, res.Invariant)
			}
			continue
		}
		r.fail(reports.Failure{
			Invariant: res.Invariant,
			Title:     res.Title,
			Message:   res.Message,
			Devices:   res.Devices,
			Labels:    res.Labels,
			Table:     convertTable(res.Table),
			Server:    res.Server,
		})
	}
	return nil
}

func convertTable(t *check.Table) *reports.Table {
	if t == nil {
		return nil
	}
	return &reports.Table{Columns: t.Columns, Rows: t.Rows}
}

// settle makes every device sync, in turn, until a whole round changes nothing.
func (r *runner) settle(ctx context.Context) (rounds int, ok bool, last string) {
	for _, d := range r.devices {
		d.stopWatch()
		d.offline = false
		d.proxy.SetOffline(false)
		d.proxy.SetLatency(0)
		d.proxy.CutAfter(0)
	}
	max := r.opts.settleRounds()
	for rounds = 1; rounds <= max; rounds++ {
		quiet := true
		for _, d := range r.devices {
			begin, from := r.since(), len(d.proxy.Transcript())
			stats, err := d.dev.Sync(ctx)
			r.syncEvent(d, 0, fmt.Sprintf("settle round %d", rounds), begin, from, err)
			switch {
			case err != nil:
				quiet = false
				last = fmt.Sprintf("%s: %v", d.name, err)
			case stats.Changed():
				quiet = false
				last = fmt.Sprintf("%s changed %d local items and sent %d mutating commands", d.name, stats.LocalChanges, stats.Mutations)
			}
		}
		if quiet {
			return rounds, true, ""
		}
		if ctx.Err() != nil {
			return rounds, false, ctx.Err().Error()
		}
	}
	return max, false, last
}

func (r *runner) fail(f reports.Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, f)
}

func (r *runner) record(op check.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Seq = len(r.history) + 1
	r.history = append(r.history, op)
}

func (r *runner) lineText(line int) string {
	if line >= 1 && line <= len(r.lines) {
		return strings.TrimSpace(r.lines[line-1])
	}
	return ""
}

func (r *runner) transcriptExcerpt(n int) []reports.TranscriptLine {
	var all []reports.TranscriptLine
	for _, d := range r.devices {
		for _, l := range d.proxy.Transcript() {
			all = append(all, reports.TranscriptLine{Device: d.name, Time: l.Time, Dir: string(l.Dir), Text: l.Text})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time < all[j].Time })
	// The state first changes with a mutating command: centre the excerpt there. Without
	// one, the end of the run is the most telling part.
	start := len(all) - n
	for i, l := range all {
		if l.Dir == "C" && isMutating(l.Text) {
			start = i - n/4
			break
		}
	}
	start = max(0, min(start, len(all)-n))
	return all[start:min(len(all), start+n)]
}

// isMutating reports whether a client command line changes the server's state.
func isMutating(line string) bool {
	f := strings.Fields(strings.ToUpper(line))
	if len(f) < 2 {
		return false
	}
	verb := f[1]
	if verb == "UID" && len(f) > 2 {
		verb = f[2]
	}
	switch verb {
	case "APPEND", "STORE", "COPY", "MOVE", "EXPUNGE", "CREATE", "DELETE", "RENAME":
		return true
	}
	return false
}
