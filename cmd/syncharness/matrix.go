package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/clients/external"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

type matrixFlags struct {
	remote   remoteFlags
	label    string
	out      string
	filter   string
	parallel int
	seed     int64
	engines  string
}

func newMatrixCmd() *cobra.Command {
	var f matrixFlags
	cmd := &cobra.Command{
		Use:   "matrix [--server URL]",
		Short: "Run the catalogue on the fake server and a real one, and write the conformance table",
		Long: `Run the built-in catalogue on the embedded fake server and, with --server, on a real
IMAP server (the same flags as "syncharness run"), and write a Markdown table: one row per
scenario, one column per target, each cell pass, server finding (the server invariants the
server broke, with their RFC sections), FAIL, error or skipped with the reason; a summary
counts each per target and names the server invariants broken.
"make matrix" regenerates docs/conformance.md this way against a private Dovecot.

With --engine go,mbsync,offlineimap there is a column per engine and target: the devices
run each engine in turn (external ones through their profiles, docs/engines.md), and the
notes under the table explain each failure of an external engine in one line.

The exit status is 0 once the table is written, whatever the scenarios did; 2 for a usage
or connection error.`,
		Example: `  SYNCHARNESS_PASSWORD=secret syncharness matrix --server imap://alice@127.0.0.1:1143 \
      --admin dovecot --label "Dovecot 2.3" --out docs/conformance.md

  # our engine, mbsync and OfflineIMAP side by side on the fake server
  syncharness matrix --engine go,mbsync,offlineimap --out matrix.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMatrix(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.label, "label", "", "column title of the --server target (default: its URL)")
	fl.StringVar(&f.out, "out", "", "write the table to this file instead of standard output")
	fl.StringVar(&f.filter, "filter", "", "only scenarios whose name or category matches this regular expression")
	intVar(fl, &f.parallel, "parallel", 0, 1, 0, "scenarios run at once, at least 1 (default: number of CPUs)")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the runs")
	fl.StringVar(&f.engines, "engine", "go", "sync engines of the devices, comma-separated: a column per engine and target (go, mbsync, offlineimap; docs/engines.md)")
	f.remote.register(cmd, true)
	return cmd
}

func init() { rootCmd.AddCommand(newMatrixCmd()) }

// matrixColumn is one target's results.
type matrixColumn struct {
	title    string
	engine   *external.Profile // nil for the go engine
	results  map[string]*reports.Scenario
	duration time.Duration
}

func runMatrix(cmd *cobra.Command, f matrixFlags) error {
	list, err := loadScenarios(nil)
	if err != nil {
		return err
	}
	if list, err = filterScenarios(list, f.filter); err != nil {
		return err
	}
	if len(list) == 0 {
		return usagef("no scenario matches")
	}
	if f.out != "" {
		if err := os.MkdirAll(filepath.Dir(f.out), 0o755); err != nil {
			return usagef("%v", err)
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := cmd.ErrOrStderr()
	targets := []struct {
		title  string
		target harness.Target
	}{{"fake server", harness.FakeTarget{}}}
	if f.remote.server != "" {
		rt, err := f.remote.target(ctx)
		if err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := rt.Close(cctx); err != nil {
				fmt.Fprintf(stderr, "syncharness: removing %s: %v\n", rt.Root(), err)
			}
		}()
		title := f.label
		if title == "" {
			title = rt.Name()
		}
		targets = append(targets, struct {
			title  string
			target harness.Target
		}{title, rt})
	}
	var engines []deviceEngine
	for _, name := range strings.Split(f.engines, ",") {
		eng, err := engineFlags{engine: strings.TrimSpace(name)}.resolve()
		if err != nil {
			return err
		}
		engines = append(engines, eng)
	}
	var cols []matrixColumn
	for _, eng := range engines {
		for _, t := range targets {
			title := t.title
			if len(engines) > 1 || eng.external() {
				title = eng.label() + " on " + t.title
			}
			fmt.Fprintf(stderr, "running %d scenario(s): %s\n", len(list), title)
			opts := harness.Options{Seed: f.seed, Target: t.target}
			if eng.external() {
				opts.NewDevice, opts.EngineName, opts.Policies = eng.factory, eng.name, eng.policies
			}
			run, _ := harness.RunAllSkipping(ctx, list, harness.RunOptions{Options: opts, Parallel: f.parallel}, eng.skip)
			if ctx.Err() != nil {
				return usagef("interrupted")
			}
			col := matrixColumn{title: title, engine: eng.profile, results: map[string]*reports.Scenario{}, duration: run.Duration}
			for _, s := range run.Scenarios {
				col.results[s.Name] = s
			}
			cols = append(cols, col)
		}
	}
	var w io.Writer = cmd.OutOrStdout()
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return usagef("%v", err)
		}
		defer file.Close()
		w = file
	}
	if err := writeMatrix(w, list, cols); err != nil {
		return err
	}
	if f.out != "" {
		fmt.Fprintf(stderr, "wrote %s\n", f.out)
	}
	return nil
}

// writeMatrix writes the conformance table in Markdown. It holds no times or ports, so
// regenerating it changes it only when a result changes.
func writeMatrix(w io.Writer, list []*scenarios.Scenario, cols []matrixColumn) error {
	var b strings.Builder
	b.WriteString("# Conformance matrix\n\n")
	b.WriteString("The built-in catalogue, scenario by scenario, on each target. Generated by `make matrix`\n")
	b.WriteString("(`syncharness matrix`); do not edit by hand. A skipped scenario needs something the\n")
	b.WriteString("target cannot do, and says what. A scenario file explains each exception of a server\n")
	b.WriteString("with the evidence.\n\n")
	b.WriteString("To add your own server: `SYNCHARNESS_PASSWORD=… syncharness matrix --server\n")
	b.WriteString("imap://USER@HOST:PORT --label NAME` (see `syncharness run --help` for TLS and the admin\n")
	b.WriteString("profiles; a local Dovecot takes `--admin dovecot --admin-doveadm \"doveadm -c\n")
	b.WriteString("/path/to/dovecot.conf\"`). Every run works inside a fresh folder `syncharness-RUNID` of the\n")
	b.WriteString("account and removes it afterwards.\n\n")
	b.WriteString("A **server finding** is a scenario whose failures follow from what the server did\n")
	b.WriteString("wrong on the wire (the server invariants S1–S13, each with its RFC section, listed in\n")
	b.WriteString("[design-notes.md](design-notes.md)): every failure is such a finding, or the first finding\n")
	b.WriteString("came before the states diverged and the same scenario and seed pass on the fake\n")
	b.WriteString("server. It is the server's to fix, not the engine's.\n\n")
	b.WriteString("| target | passed | server findings | failed | errored | skipped | server invariants broken |\n|---|---|---|---|---|---|---|\n")
	for _, c := range cols {
		n := map[reports.Status]int{}
		broken := map[string]bool{}
		for _, s := range c.results {
			n[s.Status]++
			for _, f := range s.Failures {
				if f.Server {
					broken[f.Invariant] = true
				}
			}
		}
		ids := make([]string, 0, len(broken))
		for _, id := range check.ServerInvariants() {
			if broken[id.ID] {
				ids = append(ids, id.ID+" "+id.Title)
			}
		}
		if len(ids) == 0 {
			ids = append(ids, "none")
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s |\n", cell(c.title), n[reports.Passed], n[reports.ServerFinding],
			n[reports.Failed], n[reports.Errored], n[reports.Skipped], cell(strings.Join(ids, ", ")))
	}
	b.WriteString("\n| scenario |")
	for _, c := range cols {
		b.WriteString(" " + cell(c.title) + " |")
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, scn := range list {
		fmt.Fprintf(&b, "| `%s` |", scn.Name)
		for _, c := range cols {
			b.WriteString(" " + cell(matrixCell(c.results[scn.Name])) + " |")
		}
		b.WriteString("\n")
	}
	writeEngineNotes(&b, list, cols)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeEngineNotes explains each failure of an external engine in one line, from the
// notes of its committed expectations (clients/external/expectations).
func writeEngineNotes(b *strings.Builder, list []*scenarios.Scenario, cols []matrixColumn) {
	done := map[string]bool{}
	for _, c := range cols {
		if c.engine == nil || done[c.engine.Name] {
			continue
		}
		done[c.engine.Name] = true
		exp, err := external.BuiltinExpectations(c.engine.Name)
		if err != nil {
			continue
		}
		var lines []string
		for _, scn := range list {
			s := c.results[scn.Name]
			if e, ok := exp[scn.Name]; ok && e.Note != "" && s != nil && s.Status != reports.Passed && s.Status != reports.Skipped {
				lines = append(lines, fmt.Sprintf("- `%s`: %s\n", scn.Name, e.Note))
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n## Notes: %s\n\nEach failure of %s on the fake server, in one line (the findings of\n[engines.md](engines.md)); from %s.\n\n",
			c.engine.Name, c.engine.Name, external.ExpectationsPath(c.engine.Name))
		for _, l := range lines {
			b.WriteString(l)
		}
	}
}

func matrixCell(s *reports.Scenario) string {
	if s == nil {
		return "not run"
	}
	switch s.Status {
	case reports.Passed:
		return "pass"
	case reports.Failed:
		var inv []string
		seen := map[string]bool{}
		for _, f := range s.Failures {
			name := f.Invariant
			if f.Server {
				name = "server finding " + name
			}
			if !seen[name] {
				seen[name] = true
				inv = append(inv, name)
			}
		}
		return "**FAIL** (" + strings.Join(inv, ", ") + ")"
	case reports.ServerFinding:
		var inv []string
		seen := map[string]bool{}
		for _, f := range s.Failures {
			if f.Server && !seen[f.Invariant] {
				seen[f.Invariant] = true
				inv = append(inv, f.Invariant+" "+check.ServerRFC(f.Invariant))
			}
		}
		return "**server finding** (" + strings.Join(inv, ", ") + ")"
	case reports.Skipped:
		return "skipped: " + s.SkipReason
	default:
		return "**error**: " + s.Error
	}
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}
