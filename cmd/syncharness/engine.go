package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/syncharness/syncharness/clients/external"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/scenarios"
)

// engineFlags pick the sync engine the devices run: ours (go), a built-in engine profile,
// or a profile file.
type engineFlags struct {
	engine  string
	profile string
}

func (f *engineFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.engine, "engine", "go", "sync engine of the devices: go (syncharness's own), "+strings.Join(external.Builtin(), ", ")+" (external engines through their built-in profiles, docs/engines.md)")
	fl.StringVar(&f.profile, "engine-profile", "", "engine profile file (TOML) of an external engine to test (docs/engines.md); overrides --engine")
}

// deviceEngine is what a run needs to build devices of the chosen engine.
type deviceEngine struct {
	name     string                // for reports; "" for ours
	profile  *external.Profile     // nil for ours
	factory  harness.DeviceFactory // nil for ours
	skip     func(*scenarios.Scenario) string
	policies check.Policies
}

// external reports whether the devices run an external engine.
func (e deviceEngine) external() bool { return e.profile != nil }

// resolve loads the chosen engine. A profile that does not parse, or an engine that is not
// installed, is a usage error naming the file or the binary.
func (f engineFlags) resolve() (deviceEngine, error) {
	var p *external.Profile
	var err error
	switch {
	case f.profile != "":
		p, err = external.LoadFile(f.profile)
		if err != nil {
			return deviceEngine{}, usagef("--engine-profile: %v", err)
		}
	case f.engine == "" || f.engine == "go":
		return deviceEngine{}, nil
	default:
		p, err = external.LoadBuiltin(f.engine)
		if err != nil {
			return deviceEngine{}, usagef("--engine: %v", err)
		}
	}
	return engineOf(p)
}

func engineOf(p *external.Profile) (deviceEngine, error) {
	if _, err := p.LookBinary(); err != nil {
		return deviceEngine{}, usagef("%v", err)
	}
	pol, err := check.ParsePolicies(strings.Join(p.Policies, ","))
	if err != nil {
		return deviceEngine{}, usagef("engine profile %s: policies: %v", p.Name, err)
	}
	name := p.Name
	if v, err := p.Version(); err == nil && v != "" {
		name = fmt.Sprintf("%s (%s)", p.Name, v)
	}
	return deviceEngine{name: name, profile: p, factory: harness.ExternalDevice(p), skip: harness.ExternalSkip(p), policies: pol}, nil
}

// label names the engine in a matrix column: "go" or the profile's name.
func (e deviceEngine) label() string {
	if e.profile == nil {
		return "go"
	}
	return e.profile.Name
}
