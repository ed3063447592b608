package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

type runFlags struct {
	seed      int64
	filter    string
	parallel  int
	store     string
	json      string
	junit     string
	html      string
	reportDir string
	verbose   bool
	rounds    int
	broken    string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [FILE|DIR]...",
		Short: "Run scenarios and check that every device converged",
		Long: `Run scenario files (or every *.scn file in the given directories) and check that
all devices converged with the server without losing, duplicating or resurrecting mail.
Without arguments, run the built-in conformance catalogue.

Each scenario gets a fresh in-process fake IMAP server, seeded from --seed and the
scenario's name, so the same seed reproduces the same run. Every failure prints the
command line that reproduces it.

Exit status: 0 when every scenario passed (or was skipped), 1 when one failed, 2 for a
usage or setup error (a malformed scenario, an unwritable report file).`,
		Example: `  # the built-in catalogue, against the embedded fake server
  syncharness run

  # one file, reproducibly
  syncharness run scenarios/catalog/move_concurrent_reads.scn --seed 7

  # only the UIDVALIDITY scenarios, with disk stores, reports for CI
  syncharness run --filter uidvalidity --store disk --junit junit.xml --report-dir report/

  # see a failure: a deliberately broken engine, and its HTML report
  syncharness run --broken-engine plain-expunge --filter delete_ --html report.html`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&f.seed, "seed", 1, "seed of the run: the same seed reproduces the same run on the fake server")
	fl.StringVar(&f.filter, "filter", "", "run only scenarios whose name or category matches this regular expression")
	fl.IntVar(&f.parallel, "parallel", 0, "scenarios run at once (default: number of CPUs)")
	fl.StringVar(&f.store, "store", "memory", "device store: memory or disk")
	fl.StringVar(&f.json, "json", "", "write the results as JSON to this file")
	fl.StringVar(&f.junit, "junit", "", "write the results as JUnit XML to this file")
	fl.StringVar(&f.html, "html", "", "write a self-contained HTML report (timelines and state diffs of failures) to this file")
	fl.StringVar(&f.reportDir, "report-dir", "", "write a report directory (results, and transcripts, history and replicas of failed scenarios)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print every scenario, not only failures")
	fl.StringVar(&f.broken, "broken-engine", "", "run a deliberately broken engine, to see what the checker reports: "+quirkNames())
	fl.IntVar(&f.rounds, "settle-rounds", 8, "sync rounds allowed for the devices to settle before \"did not converge\"")
	return cmd
}

func init() { rootCmd.AddCommand(newRunCmd()) }

// loadScenarios parses the scenarios named by args, or the built-in catalogue.
func loadScenarios(args []string) ([]*scenarios.Scenario, error) {
	if len(args) == 0 {
		list, err := harness.Catalog()
		if err != nil {
			return nil, usageError{fmt.Errorf("built-in catalogue: %w", err)}
		}
		return list, nil
	}
	var list []*scenarios.Scenario
	var errs []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		files := []string{arg}
		if info.IsDir() {
			if files, err = filepath.Glob(filepath.Join(arg, "*.scn")); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if len(files) == 0 {
				errs = append(errs, fmt.Sprintf("%s: no *.scn files", arg))
			}
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			s, err := scenarios.Parse(file, data)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			list = append(list, s)
		}
	}
	if len(errs) > 0 {
		return nil, usageError{errors.New(strings.Join(errs, "\n"))}
	}
	return list, nil
}

func filterScenarios(list []*scenarios.Scenario, expr string) ([]*scenarios.Scenario, error) {
	if expr == "" {
		return list, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, usagef("--filter: %v", err)
	}
	var out []*scenarios.Scenario
	for _, s := range list {
		if re.MatchString(s.Name) || re.MatchString(s.Category) {
			out = append(out, s)
		}
	}
	return out, nil
}

func runRun(cmd *cobra.Command, args []string, f runFlags) error {
	if f.store != "memory" && f.store != "disk" {
		return usagef("--store %q: want memory or disk", f.store)
	}
	var factory harness.DeviceFactory
	engineName := ""
	if f.broken != "" {
		q, err := harness.ParseQuirks(f.broken)
		if err != nil {
			return usagef("--broken-engine: %v", err)
		}
		factory = harness.BrokenEngineDevice(q)
		engineName = "syncharness-engine (broken: " + f.broken + ")"
	}
	list, err := loadScenarios(args)
	if err != nil {
		return err
	}
	if list, err = filterScenarios(list, f.filter); err != nil {
		return err
	}
	if len(list) == 0 {
		return usagef("no scenario matches")
	}
	// Check that the outputs can be written before spending time on the run.
	for _, p := range []string{f.json, f.junit, f.html} {
		if p == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return usagef("%v", err)
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := cmd.OutOrStdout()
	color := false
	if f, ok := out.(*os.File); ok {
		color = reports.UseColor(f)
	}
	stderr := cmd.ErrOrStderr()
	live := false
	if f, ok := stderr.(*os.File); ok {
		live = isTerminal(f)
	}
	progress := reports.NewProgress(stderr, len(list), live && len(list) > 1)
	fmt.Fprintf(stderr, "running %d scenario(s), seed %d\n", len(list), f.seed)
	run, results := harness.RunAll(ctx, list, harness.RunOptions{
		Options: harness.Options{
			Seed:          f.seed,
			Store:         f.store,
			SettleRounds:  f.rounds,
			Command:       strings.Join(os.Args, " "),
			KeepArtifacts: f.reportDir != "",
			NewDevice:     factory,
			EngineName:    engineName,
		},
		Parallel: f.parallel,
		OnStart:  progress.Start,
		OnDone:   func(res *harness.Result) { progress.Done(res.Report) },
	})
	progress.Finish()
	if err := reports.WriteText(out, run, reports.TextOptions{Color: color, Verbose: f.verbose}); err != nil {
		return err
	}
	if err := writeOutputs(run, results, f); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return usagef("interrupted")
	}
	if !run.OK() {
		return failedError{}
	}
	return nil
}

func writeOutputs(run *reports.Run, results []*harness.Result, f runFlags) error {
	write := func(path string, fn func(*os.File) error) error {
		file, err := os.Create(path)
		if err != nil {
			return usagef("%v", err)
		}
		if err := fn(file); err != nil {
			file.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		return file.Close()
	}
	if f.json != "" {
		if err := write(f.json, func(w *os.File) error { return reports.WriteJSON(w, run) }); err != nil {
			return err
		}
	}
	if f.junit != "" {
		if err := write(f.junit, func(w *os.File) error { return reports.WriteJUnit(w, run) }); err != nil {
			return err
		}
	}
	if f.html != "" {
		if err := write(f.html, func(w *os.File) error { return reports.WriteHTML(w, run) }); err != nil {
			return err
		}
	}
	if f.reportDir != "" {
		a := reports.Artifacts{Files: map[string]map[string][]byte{}}
		for _, res := range results {
			if res != nil && res.Artifacts != nil {
				a.Files[res.Report.Name] = res.Artifacts
			}
		}
		if err := reports.WriteDir(f.reportDir, run, a); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return usagef("%v", err)
			}
			return err
		}
	}
	return nil
}

func quirkNames() string {
	names := make([]string, 0, len(harness.Quirks))
	for n := range harness.Quirks {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
