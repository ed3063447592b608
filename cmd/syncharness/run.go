package main

import (
	"context"
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
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

type runFlags struct {
	seed       int64
	filter     string
	parallel   int
	store      string
	json       string
	junit      string
	html       string
	reportDir  string
	verbose    bool
	rounds     int
	broken     string
	serverBug  string
	serverMode string
	idleWait   bool
	remote     remoteFlags
	skip       string
	strict     bool
	engine     engineFlags
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
scenario's name, so the same seed reproduces the same run.

With --server, the scenarios run against a real IMAP server instead. Everything happens
under a fresh folder syncharness-RUNID of the account: each scenario's INBOX and mailboxes
are mapped below it, nothing outside it can be named, and the folder is removed at the
end (also after a failure or Ctrl-C; "syncharness clean" removes what a killed run left).
The password comes from SYNCHARNESS_PASSWORD or --password-file, never the command line,
and is never sent to a server that advertises LOGINDISABLED, nor in clear (imap:// without
?starttls) to a server that is not on this machine unless --allow-plaintext: use imaps://
or add ?starttls (or --starttls). --connect-timeout bounds each connection's TCP connect,
TLS handshake and greeting. The run folder holds a marker that the run refreshes every
minute, by which "syncharness clean" tells a killed run's folder from anything else.
Faults that need the administrator (UIDVALIDITY bump) run through --admin; a UIDVALIDITY
reset is made over IMAP by re-creating the mailbox, unless --admin-cmd gives one. Every
admin command is checked with STATUS before and after: one that changes nothing fails the
step. Scenarios that need a fault the server cannot do are skipped with the reason.

Push scenarios expect a change within a few seconds. The server's IDLE latency (how long
an idling client waits to hear of a new message) is measured once per run; where it is
longer than a scenario's within=, the scenario is skipped with the measured latency (RFC
2177 sets no bound: a server that polls every minute is no engine's fault), unless
--idle-wait makes every within= wait that much longer.

--server-mode makes the fake server behave as some real servers do: special uses on
top-level folders only, UIDVALIDITY from the clock (shared and kept by RENAME), MAILBOXID
(RFC 8474), IDLE updates only every DURATION.

With --engine mbsync or --engine offlineimap (or --engine-profile FILE for an engine of
your own), each device is a Maildir tree kept by that external engine: local actions are
file operations a mail reader would do, each sync runs the engine's command (bounded by
the profile's timeout, its output in the report directory). Scenarios that need what the
profile does not claim are skipped with the reason; I2, I9 and I10 need an engine's
internal state and are not applicable (docs/engines.md).

Every failure prints the command line that reproduces it: the scenario, the seed and every
flag that changed what the run did, quoted for the shell.

Exit status: 0 when every scenario passed (or was skipped), 1 when one failed, 2 for a
usage or setup error (a malformed scenario, an unwritable report file) or an interrupted
run, 4 when nothing failed but server findings (scenarios marked SERVER: the server broke
an IMAP rule, and the same scenario and seed pass on the fake server).`,
		Example: `  # the built-in catalogue, against the embedded fake server
  syncharness run

  # one file, reproducibly
  syncharness run scenarios/catalog/move_read_while_archived.scn --seed 7

  # the catalogue against mbsync, then against your own engine's profile
  syncharness run --engine mbsync
  syncharness run --engine-profile myengine.toml --report-dir report/

  # only the UIDVALIDITY scenarios, with disk stores, reports for CI
  syncharness run --filter uidvalidity --store disk --junit junit.xml --report-dir report/

  # see a failure: a deliberately broken engine, and its HTML report
  syncharness run --broken-engine plain-expunge --filter delete_ --html report.html

  # the catalogue against a local Dovecot, with its admin profile
  SYNCHARNESS_PASSWORD=secret syncharness run --server imap://alice@127.0.0.1:143 \
      --admin dovecot --admin-doveadm "doveadm -c /etc/dovecot/dovecot.conf"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, args, f, reproduceFlags(cmd.Flags(), runNotReplayed))
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&f.seed, "seed", 1, "seed of the run: the same seed reproduces the same run on the fake server")
	fl.StringVar(&f.filter, "filter", "", "run only scenarios whose name or category matches this regular expression")
	intVar(fl, &f.parallel, "parallel", 0, 1, 0, "scenarios run at once, at least 1 (default: number of CPUs)")
	fl.StringVar(&f.store, "store", "memory", "device store: memory or disk")
	fl.StringVar(&f.json, "json", "", "write the results as JSON to this file")
	fl.StringVar(&f.junit, "junit", "", "write the results as JUnit XML to this file")
	fl.StringVar(&f.html, "html", "", "write a self-contained HTML report (timelines and state diffs of failures) to this file")
	fl.StringVar(&f.reportDir, "report-dir", "", "write a report directory (results, and transcripts, history and replicas of failed scenarios)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print every scenario, not only failures, with its final state (each lane's mailboxes, messages and flags, and what the checker expects)")
	fl.StringVar(&f.broken, "broken-engine", "", "run a deliberately broken engine, to see what the checker reports: "+quirkNames())
	fl.StringVar(&f.serverBug, "server-bug", "", "switch on known-bad modes of the fake server, comma-separated: "+serverBugNames())
	fl.StringVar(&f.serverMode, "server-mode", "", "make the fake server behave as some real servers do, comma-separated: "+serverModeNames())
	fl.BoolVar(&f.idleWait, "idle-wait", false, "wait for a server whose IDLE updates come later than a scenario's within= (measured once per run), instead of skipping its push scenarios")
	intVar(fl, &f.rounds, "settle-rounds", 8, 1, 0, "sync rounds allowed for the devices to settle before \"did not converge\"")
	f.remote.register(cmd, true)
	fl.BoolVar(&f.strict, "strict", false, "judge with the checker's protocol relaxations only, none of the engine's policies (help relaxations): shows where a choice of the engine is doing the work")
	fl.StringVar(&f.skip, "skip", "", "leave out scenarios whose name matches this regular expression (known exceptions of a server, listed as not run)")
	f.engine.register(fl)
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

// runNotReplayed are the flags of run that do not change what a scenario does: where the
// results go, how much is printed, how many scenarios run at once, which scenarios run (the
// reproduce line names its one scenario itself) and the seed (always written). Every other
// flag a user sets is repeated in the reproduce line of each scenario.
var runNotReplayed = map[string]bool{
	"json": true, "junit": true, "html": true, "report-dir": true, "verbose": true, "parallel": true,
	"filter": true, "skip": true, "seed": true,
	// A fresh folder name for the replay: the old one is removed after the run.
	"run-id": true,
}

// reproduceFlags returns the flags set on fs that are not in notReplayed, as arguments
// ("--store", "disk"), in the flag set's order: what a reproduce line must repeat.
func reproduceFlags(fs *pflag.FlagSet, notReplayed map[string]bool) []string {
	var out []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if !fl.Changed || notReplayed[fl.Name] {
			return
		}
		switch v := fl.Value.(type) {
		case pflag.SliceValue:
			for _, x := range v.GetSlice() {
				out = append(out, "--"+fl.Name, x)
			}
		default:
			if fl.Value.Type() == "bool" {
				if fl.Value.String() == "true" {
					out = append(out, "--"+fl.Name)
				} else {
					out = append(out, "--"+fl.Name+"=false")
				}
				return
			}
			out = append(out, "--"+fl.Name, fl.Value.String())
		}
	})
	return out
}

func runRun(cmd *cobra.Command, args []string, f runFlags, replay []string) error {
	if f.store != "memory" && f.store != "disk" {
		return usagef("--store %q: want memory or disk", f.store)
	}
	eng, err := f.engine.resolve()
	if err != nil {
		return err
	}
	factory, engineName := eng.factory, eng.name
	if eng.external() && (f.broken != "" || f.store != "memory") {
		return usagef("--broken-engine and --store apply to the go engine, not to %s", eng.profile.Name)
	}
	if f.broken != "" {
		q, err := harness.ParseQuirks(f.broken)
		if err != nil {
			return usagef("--broken-engine: %v", err)
		}
		factory = harness.BrokenEngineDevice(q)
		engineName = "syncharness-engine (broken: " + f.broken + ")"
	}
	var fake *harness.FakeTarget
	if f.serverBug != "" || f.serverMode != "" {
		if f.remote.server != "" {
			return usagef("--server-bug and --server-mode switch on modes of the fake server; they cannot be used with --server")
		}
		t, err := parseServerBugs(f.serverBug)
		if err != nil {
			return err
		}
		if t.Modes, err = parseServerModes(f.serverMode); err != nil {
			return err
		}
		fake = &t
	}
	list, err := loadScenarios(args)
	if err != nil {
		return err
	}
	if list, err = filterScenarios(list, f.filter); err != nil {
		return err
	}
	if f.skip != "" {
		re, err := regexp.Compile(f.skip)
		if err != nil {
			return usagef("--skip: %v", err)
		}
		kept := list[:0:0]
		var left []string
		for _, s := range list {
			if re.MatchString(s.Name) {
				left = append(left, s.Name)
			} else {
				kept = append(kept, s)
			}
		}
		if len(left) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "not run (--skip): %s\n", strings.Join(left, ", "))
		}
		list = kept
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
	var target harness.Target
	if f.remote.server != "" {
		rt, err := f.remote.target(ctx)
		if err != nil {
			return err
		}
		// Removes the run's folder after the run, also after a failure or an interrupt.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := rt.Close(cctx); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "syncharness: removing %s: %v (remove it with: syncharness clean --server %s)\n", rt.Root(), err, f.remote.server)
			}
		}()
		target = rt
	}
	if fake != nil {
		target = *fake
	}

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
	// The server's IDLE latency, measured once: push scenarios expecting a change sooner
	// than it comes are skipped with it (or, with --idle-wait, wait for it).
	var idle harness.IdleLatency
	if most := harness.MaxWithin(list); most > 0 {
		idle, err = harness.MeasureIdleLatency(ctx, target, harness.IdleProbeLimit(most, f.idleWait))
		if err != nil {
			// A server without IDLE, say: its push scenarios say so themselves.
			fmt.Fprintf(stderr, "syncharness: the server's IDLE latency could not be measured: %v\n", err)
			idle = harness.IdleLatency{}
		} else if idle.Over || idle.D > most {
			what := "push scenarios with a shorter within= are skipped (--idle-wait waits instead)"
			if f.idleWait {
				what = "every within= waits that much longer"
			}
			fmt.Fprintf(stderr, "the server's IDLE latency: %s, measured once for this run; %s\n", idle, what)
		}
	}
	policies := policiesOf(f.strict)
	if eng.external() && !f.strict {
		policies = eng.policies
	}
	run, results := harness.RunAllSkipping(ctx, list, harness.RunOptions{
		Options: harness.Options{
			Seed:           f.seed,
			Store:          f.store,
			SettleRounds:   f.rounds,
			Command:        harness.ShellJoin(os.Args),
			ReproduceFlags: replay,
			KeepArtifacts:  f.reportDir != "",
			NewDevice:      factory,
			EngineName:     engineName,
			Target:         target,
			Policies:       policies,
			IdleLatency:    idle,
			IdleWait:       f.idleWait,
		},
		Parallel: f.parallel,
		OnStart:  progress.Start,
		OnDone:   func(res *harness.Result) { progress.Done(res.Report) },
	}, eng.skip)
	progress.Finish()
	run.Interrupted = ctx.Err() != nil
	if err := reports.WriteText(out, run, reports.TextOptions{Color: color, Verbose: f.verbose}); err != nil {
		return err
	}
	if err := writeOutputs(run, results, f); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return usagef("interrupted")
	}
	return runStatus(run)
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

// remoteFlags are the flags that name a remote server (run, clean, matrix).
type remoteFlags struct {
	server       string
	passwordFile string
	ca           string
	insecure     bool
	starttls     bool
	user2        string
	password2    string
	dedicated    bool
	admin        string
	doveadm      string
	adminCmds    []string
	runID        string
	timeout      time.Duration
	plaintext    bool
}

// register adds the remote server flags to cmd; run adds the flags of a run too.
func (f *remoteFlags) register(cmd *cobra.Command, run bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "run against this IMAP server: imap://USER@HOST:PORT (add ?starttls for STARTTLS) or imaps://USER@HOST:PORT; the password comes from SYNCHARNESS_PASSWORD or --password-file")
	fl.StringVar(&f.passwordFile, "password-file", "", "read the account's password from the first line of this file")
	fl.StringVar(&f.ca, "ca", "", "trust the PEM certificates in this file for TLS")
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "accept any TLS certificate (test servers only)")
	fl.BoolVar(&f.starttls, "starttls", false, "upgrade imap:// connections with STARTTLS")
	durationVar(fl, &f.timeout, "connect-timeout", 10*time.Second, time.Millisecond, "bound on each connection's TCP connect, TLS handshake and greeting together")
	fl.BoolVar(&f.plaintext, "allow-plaintext", false, "send the password without TLS to a server that is not on this machine (imap:// without ?starttls); refused otherwise")
	if !run {
		return
	}
	fl.StringVar(&f.user2, "user2", "", "a second account on the same server, for scenarios that need one (password: SYNCHARNESS_PASSWORD2 or --password2-file)")
	fl.StringVar(&f.password2, "password2-file", "", "read the second account's password from this file")
	fl.BoolVar(&f.dedicated, "dedicated-account", false, "the account is for testing only and holds nothing (checked): scenarios that must use its real INBOX may run")
	fl.StringVar(&f.admin, "admin", "", "admin profile for faults that need the administrator: dovecot (doveadm on this machine) or generic (--admin-cmd)")
	fl.StringVar(&f.doveadm, "admin-doveadm", "doveadm", "with --admin dovecot: the doveadm command line, e.g. \"doveadm -c /etc/dovecot/test.conf\"")
	fl.StringArrayVar(&f.adminCmds, "admin-cmd", nil, "with --admin generic: FAULT=COMMAND, a shell command per fault ("+strings.Join(harness.AdminFaults, ", ")+"); {user} and {mailbox} are replaced, quoted")
	fl.StringVar(&f.runID, "run-id", "", "name the run's folder syncharness-RUNID (default: time and random)")
}

func readSecret(file, env, what string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("%s file: %v", what, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	return os.Getenv(env), nil
}

// options turns the flags into RemoteOptions.
func (f *remoteFlags) options() (harness.RemoteOptions, error) {
	pass, err := readSecret(f.passwordFile, "SYNCHARNESS_PASSWORD", "--password-file")
	if err != nil {
		return harness.RemoteOptions{}, err
	}
	opts := harness.RemoteOptions{URL: f.server, Password: pass, StartTLS: f.starttls, CAFile: f.ca,
		InsecureSkipVerify: f.insecure, DedicatedAccount: f.dedicated, RunID: f.runID, DialTimeout: f.timeout,
		User2: f.user2, AllowPlaintext: f.plaintext}
	if f.user2 != "" {
		if opts.Password2, err = readSecret(f.password2, "SYNCHARNESS_PASSWORD2", "--password2-file"); err != nil {
			return opts, err
		}
		if opts.Password2 == "" {
			return opts, usagef("--user2: no password (set SYNCHARNESS_PASSWORD2 or use --password2-file)")
		}
	}
	switch f.admin {
	case "":
		if len(f.adminCmds) > 0 {
			return opts, usagef("--admin-cmd needs --admin generic")
		}
	case "dovecot":
		argv := strings.Fields(f.doveadm)
		if len(argv) == 0 {
			return opts, usagef("--admin-doveadm: empty command")
		}
		opts.Admin = harness.DovecotAdmin{Doveadm: argv}
	case "generic":
		g := harness.GenericAdmin{Commands: map[string]string{}}
		for _, c := range f.adminCmds {
			kind, tmpl, err := harness.ParseAdminCommand(c)
			if err != nil {
				return opts, usagef("--admin-cmd: %v", err)
			}
			g.Commands[kind] = tmpl
		}
		if len(g.Commands) == 0 {
			return opts, usagef("--admin generic needs at least one --admin-cmd FAULT=COMMAND")
		}
		opts.Admin = g
	default:
		return opts, usagef("--admin %q: want dovecot or generic", f.admin)
	}
	return opts, nil
}

// target builds the remote target and checks that the server and the account work. Every
// problem is one line and a usage error (exit 2).
func (f *remoteFlags) target(ctx context.Context) (*harness.RemoteTarget, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	t, err := harness.NewRemoteTarget(opts)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	if err := t.Check(ctx); err != nil {
		return nil, usagef("--server: %v", err)
	}
	return t, nil
}
