package harness

import (
	"context"
	"fmt"
	"strings"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/external"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// ExternalDevice returns the DeviceFactory of an external engine described by an engine
// profile (see clients/external and docs/engines.md): each device is a Maildir tree that
// the engine's command keeps in sync.
func ExternalDevice(p *external.Profile) DeviceFactory {
	return func(ctx context.Context, cfg DeviceConfig) (clients.Device, error) {
		return external.New(external.Config{Name: cfg.Name, Profile: p, Dial: cfg.Dial,
			Username: cfg.Username, Password: cfg.Password, Dir: cfg.Dir})
	}
}

// RunAllSkipping is RunAll, except that a scenario for which skip gives a reason is not run
// but reported as skipped with that reason (an external engine's unclaimed features, see
// ExternalSkip). Results keep the order of list. As with RunScenario, the checks that need
// an engine's sync state (I2, I9, I10, I11), which an external device does not show, are
// in each report's NotApplicable, never passed.
func RunAllSkipping(ctx context.Context, list []*scenarios.Scenario, opts RunOptions, skip func(*scenarios.Scenario) string) (*reports.Run, []*Result) {
	var torun []*scenarios.Scenario
	reasons := make([]string, len(list))
	for i, scn := range list {
		if skip != nil {
			reasons[i] = skip(scn)
		}
		if reasons[i] == "" {
			torun = append(torun, scn)
		}
	}
	run, ran := RunAll(ctx, torun, opts)
	results := make([]*Result, 0, len(list))
	run.Scenarios = run.Scenarios[:0]
	for i, scn := range list {
		var res *Result
		if reasons[i] != "" {
			res = &Result{Report: &reports.Scenario{Name: scn.Name, File: scn.File, Category: scn.Category,
				Description: scn.Description, Seed: opts.Seed, Source: string(scn.Source),
				Reproduce: ReproduceCommand(scn, opts.Seed, opts.ReproduceFlags),
				Status:    reports.Skipped, SkipReason: reasons[i]}}
			if opts.OnDone != nil {
				opts.OnDone(res)
			}
		} else {
			if len(ran) == 0 {
				break // the run was cancelled
			}
			res, ran = ran[0], ran[1:]
		}
		if res == nil {
			continue
		}
		results = append(results, res)
		run.Scenarios = append(run.Scenarios, res.Report)
	}
	return run, results
}

// ExternalSkip returns why a scenario needs what the engine profile does
// not claim, or "" when the profile claims everything the scenario does.
func ExternalSkip(p *external.Profile) func(*scenarios.Scenario) string {
	return func(scn *scenarios.Scenario) string {
		return unclaimed(p, scn.Steps)
	}
}

func unclaimed(p *external.Profile, steps []*scenarios.Step) string {
	c := p.Claims
	why := func(line int, what string) string {
		return fmt.Sprintf("engine %s does not claim %s (line %d)", p.Name, what, line)
	}
	for _, st := range steps {
		if r := unclaimed(p, st.Body); r != "" {
			return r
		}
		var flags []string
		switch st.Verb {
		case "flag", "unflag":
			flags = append(flags, st.Flag)
		case "deliver", "append", "resave":
			flags = append(flags, st.Flags...)
		case "forward":
			flags = append(flags, "$Forwarded")
		case "reply":
			flags = append(flags, `\Answered`)
		case "expect":
			if st.Expect != nil {
				flags = append(flags, st.Flags...)
			}
		case "watch":
			if !c.Push {
				return why(st.Line, "push (IDLE)")
			}
		case "create":
			if !c.CreateFolder {
				return why(st.Line, "folder creation")
			}
		case "rename":
			if !c.RenameFolder {
				return why(st.Line, "folder renaming")
			}
		case "remove":
			if !c.DeleteFolder {
				return why(st.Line, "folder deletion")
			}
		case "delete":
			if st.Actor != scenarios.ActorServer && !c.Expunge {
				return why(st.Line, "expunge")
			}
		}
		for _, f := range flags {
			if f == "" || strings.EqualFold(f, `\Recent`) {
				continue
			}
			if !claimsFlag(c, f) {
				return why(st.Line, "the flag "+f)
			}
		}
	}
	return ""
}

func claimsFlag(c external.Claims, flag string) bool {
	if c.Keywords && !strings.HasPrefix(flag, `\`) {
		return true
	}
	for _, f := range c.Flags {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}
