// Package explore finds sync bugs nobody wrote a scenario for. It generates random
// scenarios from a seed over the whole scenario language (device actions, server changes,
// UIDVALIDITY changes, drops, interrupts, crashes, offline periods, wipes, concurrently
// blocks), runs each with harness.RunScenario in deterministic mode and checks every
// invariant. A failing scenario is shrunk, by delta debugging, to a small one that still
// breaks the same invariant, written as a formatted .scn file whose first comment line names
// the invariant and the seed, and run once more to confirm it before it is reported. `syncharness
// run FILE --seed S` replays it exactly.
//
// Runs are numbered from 0; run i's scenario depends only on the seed and i, so a shard
// K of N (runs with i mod N = K-1) explores its share of the same sequence on any machine.
package explore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// Config configures an exploration.
type Config struct {
	// Seed decides every generated scenario and every interleaving.
	Seed int64
	// Gen shapes the generated scenarios.
	Gen GenOptions
	// Runs is the number of runs over all shards; 0 means no limit (Duration or the
	// context ends the exploration).
	Runs int
	// Duration ends the exploration after this long; 0 means no limit.
	Duration time.Duration
	// Shard and Shards split the runs: this exploration does the runs i with
	// i mod Shards = Shard-1. Shards 0 or 1 means all runs.
	Shard, Shards int
	// Parallel is how many scenarios run at once; 0 means the number of CPUs.
	Parallel int
	// Options are the harness options of every run (device factory, target, store). Seed
	// is set by the exploration, and so is IdleLatency, measured once before the first run
	// when the scenarios may have push episodes (unless set already); with IdleWait every
	// within= waits that much longer instead of the push episodes being skipped.
	Options harness.Options
	// Baseline, if set, makes the exploration differential: a run counts as a failure only
	// when the same scenario does not break the same invariant with these options (say, a
	// correct engine where Options has a broken one). Shrinking keeps both conditions.
	Baseline *harness.Options
	// Dir, if not "", receives each shrunk failing scenario as NAME.scn.
	Dir string
	// ShrinkBudget bounds the runs spent shrinking one failure; 0 means 400, a negative
	// value reports failures as generated, unshrunk.
	ShrinkBudget int
	// MaxFailures ends the exploration after this many confirmed failures; 0 means no
	// limit. Unconfirmed ones do not count. Runs under way when the limit is reached
	// finish, so a parallel exploration may report a few more.
	MaxFailures int
	// ReplayFlags are the arguments added to the replay command written in each file and
	// in Failure.Reproduce, one argument per element (say "--broken-engine", "reupload");
	// they are quoted for a POSIX shell.
	ReplayFlags []string
	// Confirmations is how many runs of the shrunk file, one after the other, must each
	// break the same invariant for a failure to be confirmed; 0 means 1. An external
	// engine is a process with its own timing, so explore --engine asks for 5.
	Confirmations int
	// Progress, if set, is called after every run, from several goroutines but never at
	// the same time.
	Progress func(Progress)
	// IdleMeasured, if set, is called once, before the first run, with the server's IDLE
	// latency Explore measured, or the error that kept it from measuring it (the runs then
	// go on without it, as in `syncharness run`). It is not called when nothing was
	// measured.
	IdleMeasured func(harness.IdleLatency, error)
}

// Progress is the state of an exploration, for a live progress line.
type Progress struct {
	Run      int // the number of the run that just finished
	Runs     int // runs finished
	Failures int // runs that broke an invariant, confirmed by a second run
	Errored  int // runs that could not run to the end (reported, not failures)
	// Skipped counts runs not run because the devices cannot do what the scenario needs
	// (Options.Skip: an external engine's unclaimed features).
	Skipped int
	Elapsed time.Duration // since the exploration started
	// Unconfirmed counts runs that broke an invariant once but not when run again from the
	// shrunk file: the harness was not deterministic. They are not failures of the engine.
	Unconfirmed int
	// IdleSkipped counts runs skipped because a push episode's within= is shorter than the
	// server's IDLE latency, IdleLatency (harness.IdleSkipReason): the server's slowness,
	// which RFC 2177 allows, not the engine's failure. They are neither shrunk nor written.
	IdleSkipped int
	// IdleLatency is the server's IDLE latency, measured once for the exploration; zero
	// when it was not measured.
	IdleLatency harness.IdleLatency
}

// Rate is the number of runs per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Runs) / p.Elapsed.Seconds()
}

// A Failure is one failing run, shrunk.
type Failure struct {
	Run       int    // the run's number
	Name      string // the scenario's name; the written file is Name + ".scn"
	Invariant string // the invariant it breaks ("I3", "S2", "settle"…)
	Title     string // the invariant's title
	Message   string // what the first failure of that invariant said
	// Original and Shrunk are the generated scenario and the shrunk one, as source.
	Original, Shrunk []byte
	OriginalSteps    int // steps after the setup
	ShrunkSteps      int
	ShrinkRuns       int    // runs spent shrinking
	File             string // where Shrunk was written ("" when Config.Dir is "")
	// Confirmed is true when the shrunk file, parsed from its formatted text, broke the same
	// invariant again, in each of Config.Confirmations runs; Report is the first one's report. An unconfirmed failure is a defect of
	// the harness (a run that did not replay), not a finding: it is not written to Dir,
	// and Report is the first failing run's, with the status reports.Unconfirmed.
	Confirmed bool
	// Confirmations is how many runs of the shrunk file confirmed it.
	Confirmations int
	Report        *reports.Scenario
	// Reproduce is the command line that replays a confirmed failure ("" when unconfirmed).
	Reproduce string
}

// Summary is the outcome of an exploration.
type Summary struct {
	Progress
	Failures []*Failure // confirmed failures, in run order
	// Unconfirmed are the failures a second run did not confirm, in run order.
	Unconfirmed []*Failure
	// ErroredRuns names the first few runs that errored, with the error.
	ErroredRuns []string
	// IdleSkippedRuns are the reports of the runs skipped for the server's IDLE latency
	// (Progress.IdleSkipped), in run order, each with its reason and the latency; without
	// their source, which Generate gives again from the seed and the run's number.
	IdleSkippedRuns []*reports.Scenario
	// IdleErr is why the server's IDLE latency could not be measured, nil when it was or
	// did not need to be.
	IdleErr error
}

// RunName is the name of run i's scenario for seed: "explore_S_I" (a negative seed is
// written with an "n" for its sign, so the name stays one word).
func RunName(seed int64, i int) string {
	s := strconv.FormatInt(seed, 10)
	if seed < 0 {
		s = "n" + s[1:]
	}
	return fmt.Sprintf("explore_%s_%d", s, i)
}

// runSeed is the generator seed of run i.
func runSeed(seed int64, i int) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "explore/%d/%d", seed, i)
	return int64(h.Sum64() >> 1)
}

// Generate returns run i's scenario of an exploration with seed and opts: what Explore
// runs, as checked scenario source.
func Generate(seed int64, i int, opts GenOptions) (*scenarios.Scenario, error) {
	s := generate(runSeed(seed, i), opts)
	return s.repair(RunName(seed, i))
}

// Explore runs the exploration until Runs, Duration, MaxFailures or ctx ends it. Ending by
// ctx is not an error: the summary says what was done. The error is for a configuration
// that cannot run or a failure to write a file.
func Explore(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Shards > 1 && (cfg.Shard < 1 || cfg.Shard > cfg.Shards) {
		return nil, fmt.Errorf("explore: shard %d/%d: K must be between 1 and N", cfg.Shard, cfg.Shards)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("explore: %w", err)
		}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	par := cfg.Parallel
	if par <= 0 {
		par = runtime.NumCPU()
	}
	shards, shard := max(cfg.Shards, 1), max(cfg.Shard, 1)
	start := time.Now()
	idleErr := measureIdle(ctx, &cfg)

	var (
		mu      sync.Mutex
		sum     = &Summary{Progress: Progress{IdleLatency: cfg.Options.IdleLatency}, IdleErr: idleErr}
		idle    []skippedRun
		werr    error
		next    = shard - 1
		stopped bool
		// pending counts failing runs still being shrunk and confirmed. Only confirmed
		// failures count towards MaxFailures; while the pending ones could reach it, no new
		// run starts, and if some of them turn out unconfirmed, exploring goes on.
		pending int
	)
	// wake is signalled when a pending run ends; a run ends soon after ctx does, so no
	// one waits on a finished exploration.
	wake := sync.NewCond(&mu)
	// claim hands out the next run of this shard, or false when the exploration is over.
	claim := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		for {
			if stopped || ctx.Err() != nil || (cfg.Runs > 0 && next >= cfg.Runs) ||
				(cfg.MaxFailures > 0 && len(sum.Failures) >= cfg.MaxFailures) {
				return 0, false
			}
			if cfg.MaxFailures == 0 || len(sum.Failures)+pending < cfg.MaxFailures {
				break
			}
			wake.Wait()
		}
		i := next
		next += shards
		return i, true
	}
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := claim()
				if !ok {
					return
				}
				found := false
				o, err := exploreOne(ctx, cfg, i, func() {
					mu.Lock()
					pending++
					found = true
					mu.Unlock()
				})
				mu.Lock()
				if found {
					pending--
					wake.Broadcast()
				}
				sum.Run = i
				f, errored := o.failure, o.errored
				if ctx.Err() != nil && f == nil && errored != "" {
					// Interrupted part-way: neither a pass nor a failure.
					mu.Unlock()
					return
				}
				sum.Runs++
				switch {
				case err != nil:
					werr = errors.Join(werr, err)
					stopped = true
					wake.Broadcast()
				case f != nil && f.Confirmed:
					sum.Failures = append(sum.Failures, f)
				case f != nil:
					sum.Unconfirmed = append(sum.Unconfirmed, f)
				case o.idleSkip != nil:
					sum.IdleSkipped++
					idle = append(idle, skippedRun{i, o.idleSkip})
				case o.skipped:
					sum.Skipped++
				case errored != "":
					sum.Errored++
					if len(sum.ErroredRuns) < 10 {
						sum.ErroredRuns = append(sum.ErroredRuns, errored)
					}
				}
				sum.Progress.Failures = len(sum.Failures)
				sum.Progress.Unconfirmed = len(sum.Unconfirmed)
				sum.Elapsed = time.Since(start)
				if cfg.Progress != nil {
					cfg.Progress(sum.Progress)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sum.Elapsed = time.Since(start)
	sort.Slice(sum.Failures, func(i, j int) bool { return sum.Failures[i].Run < sum.Failures[j].Run })
	sort.Slice(sum.Unconfirmed, func(i, j int) bool { return sum.Unconfirmed[i].Run < sum.Unconfirmed[j].Run })
	sort.Slice(idle, func(i, j int) bool { return idle[i].run < idle[j].run })
	for _, s := range idle {
		sum.IdleSkippedRuns = append(sum.IdleSkippedRuns, s.rep)
	}
	return sum, werr
}

// skippedRun is a run skipped for the server's IDLE latency, with its report.
type skippedRun struct {
	run int
	rep *reports.Scenario
}

// measureIdle measures the server's IDLE latency once, as `syncharness run` does, when the
// generated scenarios may expect a change within= (push episodes) and cfg does not give
// it, and sets it in cfg.Options for every run. The error is kept for the summary: the
// runs go on without the latency, and a server without IDLE shows in its push episodes.
func measureIdle(ctx context.Context, cfg *Config) error {
	if !cfg.Gen.allows(FaultPush) || cfg.Options.IdleLatency != (harness.IdleLatency{}) {
		return nil
	}
	lat, err := harness.MeasureIdleLatency(ctx, cfg.Options.Target, harness.IdleProbeLimit(PushWithin, cfg.Options.IdleWait))
	if err != nil {
		lat = harness.IdleLatency{}
	}
	cfg.Options.IdleLatency = lat
	if cfg.IdleMeasured != nil {
		cfg.IdleMeasured(lat, err)
	}
	return err
}

// outcome is what one run of an exploration came to: at most one of its fields is set.
type outcome struct {
	failure *Failure // an invariant broke (confirmed or not)
	errored string   // the run could not run to its end: why
	skipped bool     // the devices cannot do what the scenario needs (Options.Skip)
	// idleSkip is the report of a run skipped for the server's IDLE latency.
	idleSkip *reports.Scenario
}

// exploreOne runs run i; on a failure it shrinks, writes and confirms it.
// onFound is called as soon as the run is known to fail, before shrinking.
func exploreOne(ctx context.Context, cfg Config, i int, onFound func()) (outcome, error) {
	name := RunName(cfg.Seed, i)
	s := generate(runSeed(cfg.Seed, i), cfg.Gen)
	scn, err := s.repair(name)
	if err != nil {
		return outcome{errored: fmt.Sprintf("run %d: %v", i, err)}, nil
	}
	opts := cfg.Options
	opts.Seed = cfg.Seed
	res := harness.RunScenario(ctx, scn, opts)
	if res.Report.Status == reports.Skipped {
		if why := harness.IdleSkipReason(scn, opts.IdleLatency, opts.IdleWait); why != "" && res.Report.SkipReason == why {
			return outcome{idleSkip: idleSkipReport(res.Report)}, nil
		}
		return outcome{skipped: true}, nil
	}
	inv := brokenInvariant(res.Report)
	var base harness.Options
	if cfg.Baseline != nil {
		base = *cfg.Baseline
		base.Seed = cfg.Seed
		if inv != nil && breaks(harness.RunScenario(ctx, scn, base).Report, inv.Invariant) {
			return outcome{}, nil // not a difference from the baseline
		}
	}
	if inv == nil {
		if res.Report.Status == reports.Errored {
			return outcome{errored: fmt.Sprintf("run %d: %s", i, res.Report.Error)}, nil
		}
		return outcome{}, nil
	}
	onFound()
	f := &Failure{Run: i, Name: name, Invariant: inv.Invariant, Title: inv.Title, Message: inv.Message,
		Original: []byte(s.text()), OriginalSteps: s.steps()}
	stillFails := func(c *script) bool {
		if ctx.Err() != nil {
			return false
		}
		scn, err := c.parse(name)
		if err != nil {
			return false
		}
		if !breaks(harness.RunScenario(ctx, scn, opts).Report, f.Invariant) {
			return false
		}
		return cfg.Baseline == nil || !breaks(harness.RunScenario(ctx, scn, base).Report, f.Invariant)
	}
	budget := cfg.ShrinkBudget
	if budget == 0 {
		budget = 400
	}
	sh := &shrinker{fails: stillFails, budget: max(budget, 0)}
	small := s
	if budget > 0 {
		small = sh.shrink(s)
	}
	f.ShrinkRuns = sh.tries
	f.ShrunkSteps = small.steps()
	file := name + ".scn"
	if cfg.Dir != "" {
		file = filepath.Join(cfg.Dir, name+".scn")
	}
	replay := harness.ShellJoin(append([]string{"syncharness", "run", file, "--seed", strconv.FormatInt(cfg.Seed, 10)}, cfg.ReplayFlags...))
	small.header = []string{
		fmt.Sprintf("%s %s: found by syncharness explore --seed %d (run %d), shrunk from %d steps to %d.",
			f.Invariant, f.Title, cfg.Seed, i, f.OriginalSteps, f.ShrunkSteps),
		"Replay: " + harness.ShellJoin(append([]string{"syncharness", "run", name + ".scn", "--seed", strconv.FormatInt(cfg.Seed, 10)}, cfg.ReplayFlags...)),
	}
	shrunk, err := small.parse(name)
	if err != nil {
		return outcome{}, err
	}
	f.Shrunk = scenarios.Format(shrunk)
	// Confirm from the text as written, exactly as `syncharness run FILE --seed S` reads it,
	// before writing anything: a failure that does not replay is not a finding.
	again, err := scenarios.Parse(file, f.Shrunk)
	if err != nil {
		return outcome{}, fmt.Errorf("explore: the shrunk scenario %s does not parse: %w", name, err)
	}
	f.Confirmed = true
	for range max(cfg.Confirmations, 1) {
		rep := harness.RunScenario(ctx, again, opts).Report
		if f.Report == nil {
			f.Report = rep
		}
		if !breaks(rep, f.Invariant) {
			f.Confirmed = false
			break
		}
	}
	if f.Confirmed && cfg.Baseline != nil {
		f.Confirmed = !breaks(harness.RunScenario(ctx, again, base).Report, f.Invariant)
	}
	if !f.Confirmed {
		first := *res.Report
		first.Status = reports.Unconfirmed
		first.Reproduce = ""
		f.Report = &first
		return outcome{failure: f}, nil
	}
	f.Confirmations = max(cfg.Confirmations, 1)
	f.Reproduce = replay
	if cfg.Dir != "" {
		f.File = file
		if err := os.WriteFile(f.File, f.Shrunk, 0o644); err != nil {
			return outcome{}, fmt.Errorf("explore: write %s: %w", f.File, err)
		}
	}
	return outcome{failure: f}, nil
}

// idleSkipReport is rep, of a run skipped for the server's IDLE latency, as the JSON
// results keep it: its name, seed and reason, which names the latency. Its source is left
// out (Generate gives it again): a slow server may skip thousands of runs. So is its
// replay line, which names the catalogue, where a generated scenario is not.
func idleSkipReport(rep *reports.Scenario) *reports.Scenario {
	return &reports.Scenario{Name: rep.Name, Category: rep.Category, Status: rep.Status,
		SkipReason: rep.SkipReason, Seed: rep.Seed, Duration: rep.Duration}
}

// ignored are failures that say a step could not be done, not that a guarantee broke: a
// generated scenario may ask a device to act on a message it has not seen yet. (The only
// expect lines a generated scenario has are those of push episodes, which must hold.)
var ignored = map[string]bool{"step": true}

// brokenInvariant returns the first failure of an invariant in rep, or nil.
func brokenInvariant(rep *reports.Scenario) *reports.Failure {
	if rep.Status != reports.Failed {
		return nil
	}
	for i := range rep.Failures {
		if !ignored[rep.Failures[i].Invariant] {
			return &rep.Failures[i]
		}
	}
	return nil
}

// breaks reports whether rep failed invariant.
func breaks(rep *reports.Scenario, invariant string) bool {
	if rep.Status != reports.Failed {
		return false
	}
	for _, f := range rep.Failures {
		if f.Invariant == invariant {
			return true
		}
	}
	return false
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

// Reports returns the reports of the failures, confirmed ones first, then the unconfirmed
// ones (status reports.Unconfirmed), then the runs skipped for the server's IDLE latency
// (status reports.Skipped, the latency in the reason), for JSON output.
func (s *Summary) Reports() []*reports.Scenario {
	var out []*reports.Scenario
	for _, f := range append(append([]*Failure(nil), s.Failures...), s.Unconfirmed...) {
		if f.Report != nil {
			out = append(out, f.Report)
		}
	}
	return append(out, s.IdleSkippedRuns...)
}

// String summarises the exploration in one line.
func (p Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d runs, %d failures", p.Runs, p.Failures)
	if p.Unconfirmed > 0 {
		fmt.Fprintf(&b, ", %d unconfirmed", p.Unconfirmed)
	}
	if p.Errored > 0 {
		fmt.Fprintf(&b, ", %d errored", p.Errored)
	}
	if p.Skipped > 0 {
		fmt.Fprintf(&b, ", %d skipped", p.Skipped)
	}
	if p.IdleSkipped > 0 {
		fmt.Fprintf(&b, ", %d skipped for the server's IDLE latency (%s, longer than within=%s)", p.IdleSkipped, p.IdleLatency, PushWithin)
	}
	fmt.Fprintf(&b, ", %.1f runs/s", p.Rate())
	return b.String()
}
