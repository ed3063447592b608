package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/reports"
)

type exploreFlags struct {
	seed        int64
	devices     int
	steps       int
	runs        int
	duration    time.Duration
	faults      string
	shard       string
	parallel    int
	out         string
	json        string
	store       string
	broken      string
	serverBug   string
	serverMode  string
	idleWait    bool
	budget      int
	maxFailures int
	engine      engineFlags
}

// serverBugs are the fake server's known-bad modes, by the names --server-bug takes.
var serverBugs = map[string]func(*harness.FakeTarget){
	"reuse-expunged-uids":        func(t *harness.FakeTarget) { t.ReuseExpungedUIDs = true },
	"omit-expunge-notifications": func(t *harness.FakeTarget) { t.OmitExpungeNotifications = true },
}

func init() {
	for _, name := range fakeserver.WireBugNames() {
		serverBugs[name] = func(t *harness.FakeTarget) { t.Bugs = append(t.Bugs, name) }
	}
}

func serverBugNames() string {
	names := make([]string, 0, len(serverBugs))
	for n := range serverBugs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func serverModeNames() string {
	var names []string
	for _, n := range fakeserver.ModeNames() {
		if n == "idle-every" {
			n += "=DURATION"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// parseServerModes reads --server-mode: behaviours of real servers for the fake server,
// comma-separated (fakeserver.ParseMode).
func parseServerModes(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if _, err := fakeserver.ParseMode(m); err != nil {
			return nil, usagef("--server-mode: %v", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseServerBugs reads --server-bug: known-bad modes of the fake server, comma-separated.
func parseServerBugs(s string) (harness.FakeTarget, error) {
	var target harness.FakeTarget
	if s == "" {
		return target, nil
	}
	for _, name := range strings.Split(s, ",") {
		set, ok := serverBugs[strings.TrimSpace(name)]
		if !ok {
			return target, usagef("--server-bug %q: want one of %s", name, serverBugNames())
		}
		set(&target)
	}
	return target, nil
}

// exploreOnly are the flags of explore that shape the exploration, not a run: the replay
// line of a written scenario leaves them out. Every other flag explore has is also a flag
// of run, and the replay line repeats it when it is set.
var exploreOnly = map[string]bool{
	"seed": true, "devices": true, "steps": true, "runs": true, "duration": true, "faults": true, "shard": true,
	"parallel": true, "out": true, "json": true, "shrink-budget": true, "max-failures": true,
}

func newExploreCmd() *cobra.Command {
	var f exploreFlags
	cmd := &cobra.Command{
		Use:   "explore",
		Short: "Generate random scenarios, find invariant failures and shrink them to small scenario files",
		Long: `Generate random scenarios from a seed over the whole scenario language (device
actions on messages and mailboxes, server changes, UIDVALIDITY bumps and resets, dropped
connections, interrupted and crashing syncs, answers lost after the server carried a
command out (lose-answer, crash-lose-answer), offline periods, wiped devices, concurrently
blocks, mailbox names that differ only in case, are not ASCII or have spaces), run each
against the embedded fake server in deterministic mode and check every invariant.

A failing scenario is shrunk (steps, blocks, devices, messages, mailboxes and options are
removed while the same invariant still fails), run again from its formatted text to confirm
it, and only then written to --out as NAME.scn, whose first comment lines name the
invariant, the seed and the command that replays it exactly: "syncharness run FILE --seed S"
with every flag that changed the runs (--store, --broken-engine, --server-bug).

Without --seed a seed is picked from the clock and printed, so any exploration can be
repeated. --shard K/N explores the K-th of N interleaved shares of the same runs, so that
N machines or CI jobs explore side by side without overlap; "syncharness report merge"
combines their --json results.

With --broken-engine or --server-bug the exploration is differential: a run counts only if
the correct engine on a correct server does not break the same invariant.

A failure whose shrunk scenario, run again from its file with the same seed, does not
fail the same way is not confirmed: the harness was not deterministic. It is reported as
UNCONFIRMED, counted apart, kept in --json with the status "unconfirmed", and no file is
written for it.

With --engine mbsync or --engine offlineimap (or --engine-profile FILE) the devices run
that external engine (docs/engines.md): a generated scenario that needs what the profile
does not claim is skipped (counted apart), the checker follows the engine's declared
policies, and a failure is confirmed only when its shrunk file fails the same way five
times out of five; the replay line repeats --engine. Each sync starts the engine's
process, so expect a few runs per second rather than dozens.

Push episodes expect a change within 500ms. As in run, the server's IDLE latency (how
long an idling client waits to hear of a new message) is measured once, before the first
run; where it is longer, each run with a push episode is skipped with the measured
latency and counted apart ("N skipped for the server's IDLE latency"; in --json as
skipped, with the reason): RFC 2177 sets no bound, so a server that polls every minute is
no engine's fault. Such runs are neither shrunk nor written. --idle-wait makes every
within= wait that much longer instead, and the replay line repeats it. --server-mode
idle-every=60s makes the fake server tell IDLE clients of changes only every minute.

A live progress line shows runs, failures and rate on a terminal; Ctrl-C stops cleanly
with a summary. Exit status: 0 when nothing failed, 1 when a confirmed failure was found,
2 for a usage error, 3 when the only failures found were not confirmed (a defect of the
harness, not of the engine).`,
		Example: `  # five minutes of exploration, three devices, thirty steps each
  syncharness explore --duration 5m

  # a fixed amount of work, reproducible
  syncharness explore --seed 42 --runs 2000 --devices 2 --steps 20 --faults crash,offline

  # shard 3 of 8 in a CI matrix; merge the shards' JSON afterwards
  syncharness explore --seed 42 --runs 40000 --shard 3/8 --json explore-3.json
  syncharness report merge explore-*.json -o explore.json

  # explore mbsync instead of the syncharness engine
  syncharness explore --engine mbsync --seed 7 --runs 200 --devices 2 --steps 12

  # see it find a deliberately broken engine
  syncharness explore --seed 1 --runs 100 --broken-engine reupload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExplore(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&f.seed, "seed", 0, "seed of the exploration (default: picked from the clock and printed)")
	intVar(fl, &f.devices, "devices", 3, 2, 4, "devices per scenario, 2 to 4")
	intVar(fl, &f.steps, "steps", 30, 1, 0, "steps per scenario after the setup")
	intVar(fl, &f.runs, "runs", 0, 1, 0, "runs over all shards (default: until --duration or Ctrl-C; 1000 when neither is given)")
	durationVar(fl, &f.duration, "duration", 0, time.Millisecond, "stop after this long")
	fl.StringVar(&f.faults, "faults", strings.Join(explore.AllFaults, ","), "faults the scenarios may use, comma-separated, or \"none\"")
	fl.StringVar(&f.shard, "shard", "", "explore only shard K of N (K/N, from 1/N to N/N)")
	intVar(fl, &f.parallel, "parallel", 0, 1, 0, "scenarios run at once, at least 1 (default: number of CPUs)")
	fl.StringVar(&f.out, "out", "explore-failures", "directory for the shrunk failing scenarios")
	fl.StringVar(&f.json, "json", "", "write the failures' results, and the runs skipped for the server's IDLE latency, as JSON to this file (for report merge)")
	fl.StringVar(&f.store, "store", "memory", "device store: memory or disk")
	fl.StringVar(&f.broken, "broken-engine", "", "explore a deliberately broken engine: "+quirkNames())
	fl.StringVar(&f.serverBug, "server-bug", "", "switch on known-bad modes of the fake server, comma-separated: "+serverBugNames())
	fl.StringVar(&f.serverMode, "server-mode", "", "make the fake server behave as some real servers do, comma-separated: "+serverModeNames())
	fl.BoolVar(&f.idleWait, "idle-wait", false, "wait for a server whose IDLE updates come later than a push episode's within= (measured once per exploration), instead of skipping those runs")
	intVar(fl, &f.budget, "shrink-budget", 400, 0, 0, "runs spent at most on shrinking one failure (0: report failures unshrunk)")
	intVar(fl, &f.maxFailures, "max-failures", 0, 1, 0, "stop after this many confirmed failures; unconfirmed ones do not count (default: no limit)")
	f.engine.register(fl)
	return cmd
}

func init() { rootCmd.AddCommand(newExploreCmd()) }

// parseShard reads "K/N".
func parseShard(s string) (k, n int, err error) {
	if s == "" {
		return 1, 1, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	if ok {
		k, err = strconv.Atoi(ks)
		if err == nil {
			n, err = strconv.Atoi(ns)
		}
	}
	if !ok || err != nil || n < 1 || k < 1 || k > n {
		return 0, 0, usagef("--shard %q: want K/N with 1 <= K <= N, e.g. 3/8", s)
	}
	return k, n, nil
}

func parseFaults(s string) ([]string, error) {
	if strings.TrimSpace(s) == "none" {
		return []string{}, nil
	}
	known := map[string]bool{}
	for _, f := range explore.AllFaults {
		known[f] = true
	}
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !known[f] {
			return nil, usagef("--faults: unknown fault %q (known: %s, or none)", f, strings.Join(explore.AllFaults, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// runExplore runs the exploration f describes. The numeric flags' ranges (--devices,
// --steps, --runs, --duration, --parallel…) were checked as they were read (see intVar in
// flags.go); what is left to check here is what a range cannot say.
func runExplore(cmd *cobra.Command, f exploreFlags) error {
	if f.store != "memory" && f.store != "disk" {
		return usagef("--store %q: want memory or disk", f.store)
	}
	shard, shards, err := parseShard(f.shard)
	if err != nil {
		return err
	}
	faults, err := parseFaults(f.faults)
	if err != nil {
		return err
	}
	seed := f.seed
	if !cmd.Flags().Changed("seed") {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	runs := f.runs
	if runs == 0 && f.duration == 0 {
		runs = 1000
	}
	eng, err := f.engine.resolve()
	if err != nil {
		return err
	}
	if eng.external() && (f.broken != "" || f.store != "memory") {
		return usagef("--broken-engine and --store apply to the go engine, not to %s", eng.profile.Name)
	}
	opts := harness.Options{Store: f.store, Command: strings.Join(os.Args, " "), IdleWait: f.idleWait}
	engineName := "syncharness-engine"
	confirmations := 1
	if eng.external() {
		// The devices run the engine's own process: its scenarios are skipped where it does
		// not claim what they need, it is judged with its declared policies, and a failure
		// counts only when it replays five times out of five.
		opts.NewDevice, opts.EngineName, opts.Policies, opts.Skip = eng.factory, eng.name, eng.policies, eng.skip
		engineName = eng.name
		confirmations = 5
	}
	differential := false
	if f.broken != "" {
		q, err := harness.ParseQuirks(f.broken)
		if err != nil {
			return usagef("--broken-engine: %v", err)
		}
		opts.NewDevice = harness.BrokenEngineDevice(q)
		engineName += " (broken: " + f.broken + ")"
		differential = true
	}
	if f.serverBug != "" || f.serverMode != "" {
		target, err := parseServerBugs(f.serverBug)
		if err != nil {
			return err
		}
		if target.Modes, err = parseServerModes(f.serverMode); err != nil {
			return err
		}
		opts.Target = target
		differential = true
	}
	budget := f.budget
	if budget <= 0 {
		budget = -1
	}
	cfg := explore.Config{
		Seed:         seed,
		Gen:          explore.GenOptions{Devices: f.devices, Steps: f.steps, Faults: faults},
		Runs:         runs,
		Duration:     f.duration,
		Shard:        shard,
		Shards:       shards,
		Parallel:     f.parallel,
		Options:      opts,
		Dir:          f.out,
		ShrinkBudget: budget,
		MaxFailures:  f.maxFailures,
	}
	cfg.Confirmations = confirmations
	if differential {
		// The same engine on a correct server; ours, correct, for a broken one.
		cfg.Baseline = &harness.Options{Store: f.store, NewDevice: eng.factory, EngineName: eng.name,
			Policies: eng.policies, Skip: eng.skip}
	}
	if f.json != "" {
		if err := os.MkdirAll(filepath.Dir(f.json), 0o755); err != nil {
			return usagef("%v", err)
		}
	}

	// The flags that make `run` replay the exploration's runs.
	cfg.ReplayFlags = reproduceFlags(cmd.Flags(), exploreOnly)

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	live := false
	if file, ok := stderr.(*os.File); ok {
		live = isTerminal(file)
	}
	limit := "until Ctrl-C"
	switch {
	case runs > 0 && f.duration > 0:
		limit = fmt.Sprintf("%d runs or %s", runs, f.duration)
	case runs > 0:
		limit = fmt.Sprintf("%d runs", runs)
	case f.duration > 0:
		limit = f.duration.String()
	}
	shardText := ""
	if shards > 1 {
		shardText = fmt.Sprintf(", shard %d/%d", shard, shards)
	}
	fmt.Fprintf(stderr, "exploring with seed %d%s: %d devices, %d steps, %s (repeat with --seed %d)\n",
		seed, shardText, f.devices, f.steps, limit, seed)
	line := &progressLine{w: stderr, live: live}
	cfg.Progress = line.show
	cfg.IdleMeasured = func(lat harness.IdleLatency, err error) { printIdleLatency(stderr, lat, err, f.idleWait) }
	started := time.Now().UTC()
	sum, err := explore.Explore(ctx, cfg)
	line.clear()
	if err != nil {
		return err
	}
	for _, fl := range sum.Failures {
		printFailure(out, fl)
	}
	for _, fl := range sum.Unconfirmed {
		printUnconfirmed(out, fl)
	}
	verdict := "ok  "
	switch {
	case len(sum.Failures) > 0:
		verdict = "FAIL"
	case len(sum.Unconfirmed) > 0:
		verdict = "UNCONFIRMED"
	}
	interrupted := ""
	if ctx.Err() != nil && (f.duration == 0 || time.Since(started) < f.duration) {
		interrupted = " (interrupted)"
	}
	fmt.Fprintf(out, "%s %s in %s%s  (seed %d%s)\n", verdict, sum.Progress, sum.Elapsed.Round(time.Millisecond), interrupted, seed, shardText)
	for _, e := range sum.ErroredRuns {
		fmt.Fprintf(out, "  errored: %s\n", e)
	}
	if f.json != "" {
		run := &reports.Run{SchemaVersion: reports.SchemaVersion, Target: "fake", Engine: engineName, Store: f.store,
			Seed: seed, Started: started, Duration: sum.Elapsed, Command: opts.Command, Scenarios: sum.Reports()}
		file, err := os.Create(f.json)
		if err != nil {
			return usagef("%v", err)
		}
		if err := reports.WriteJSON(file, run); err != nil {
			file.Close()
			return fmt.Errorf("write %s: %w", f.json, err)
		}
		if err := file.Close(); err != nil {
			return err
		}
	}
	switch {
	case len(sum.Failures) > 0:
		return failedError{}
	case len(sum.Unconfirmed) > 0:
		return failedError{code: reports.ExitUnconfirmed,
			msg: fmt.Sprintf("syncharness: %d failure(s) not confirmed by a second run: the harness was not deterministic (nothing written)", len(sum.Unconfirmed))}
	}
	return nil
}

// printIdleLatency says, as run does, what the server's IDLE latency measured before the
// first run does to the push episodes: nothing when it is within their within=.
func printIdleLatency(w io.Writer, lat harness.IdleLatency, err error, wait bool) {
	switch {
	case err != nil:
		// A server without IDLE, say: its push episodes say so themselves.
		fmt.Fprintf(w, "syncharness: the server's IDLE latency could not be measured: %v\n", err)
	case lat.Over || lat.D > explore.PushWithin:
		what := fmt.Sprintf("runs with a push episode (within=%s) are skipped (--idle-wait waits instead)", explore.PushWithin)
		if wait {
			what = "every within= waits that much longer"
		}
		fmt.Fprintf(w, "the server's IDLE latency: %s, measured once for this exploration; %s\n", lat, what)
	}
}

func printFailure(w io.Writer, f *explore.Failure) {
	fmt.Fprintf(w, "FAIL %s %s (run %d): %s\n", f.Invariant, f.Title, f.Run, f.Message)
	again := "a second run"
	if n := f.Confirmations; n > 1 {
		again = fmt.Sprintf("%d runs out of %d", n, n)
	}
	fmt.Fprintf(w, "  shrunk from %d to %d steps in %d runs, confirmed by %s\n", f.OriginalSteps, f.ShrunkSteps, f.ShrinkRuns, again)
	if f.File != "" {
		fmt.Fprintf(w, "  wrote %s\n", f.File)
	}
	for _, l := range strings.Split(strings.TrimRight(string(f.Shrunk), "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", l)
	}
	fmt.Fprintf(w, "  reproduce: %s\n", f.Reproduce)
}

// printUnconfirmed reports a failure that did not replay: a defect of the harness (it was
// not deterministic), not a finding about the engine, so nothing was written for it.
func printUnconfirmed(w io.Writer, f *explore.Failure) {
	fmt.Fprintf(w, "UNCONFIRMED %s %s (run %d): %s\n", f.Invariant, f.Title, f.Run, f.Message)
	fmt.Fprintf(w, "  shrunk from %d to %d steps in %d runs; the shrunk scenario did not fail again with the same seed:\n",
		f.OriginalSteps, f.ShrunkSteps, f.ShrinkRuns)
	fmt.Fprintf(w, "  the harness was not deterministic. Not a finding; no file written. The scenario:\n")
	for _, l := range strings.Split(strings.TrimRight(string(f.Shrunk), "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

// progressLine redraws one status line on a terminal; elsewhere it prints nothing.
type progressLine struct {
	w     io.Writer
	live  bool
	mu    sync.Mutex
	drawn int
	last  time.Time
}

func (p *progressLine) show(pr explore.Progress) {
	if !p.live {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	text := "exploring: " + pr.String()
	pad := max(p.drawn-len(text), 0)
	fmt.Fprintf(p.w, "\r%s%s", text, strings.Repeat(" ", pad))
	p.drawn = len(text)
}

func (p *progressLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live && p.drawn > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.drawn))
		p.drawn = 0
	}
}
