package harness

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
	"github.com/syncharness/syncharness/scenarios/catalog"
)

// RunOptions configure RunAll.
type RunOptions struct {
	Options
	// Parallel is how many scenarios run at once; 0 means the number of CPUs.
	Parallel int
	// OnStart and OnDone, when set, are called as scenarios start and finish (from several
	// goroutines at once).
	OnStart func(name string)
	OnDone  func(res *Result)
}

// RunAll runs scenarios, up to Parallel at a time, and returns the run's results in the
// order of list. A scenario's outcome does not depend on what runs beside it.
func RunAll(ctx context.Context, list []*scenarios.Scenario, opts RunOptions) (*reports.Run, []*Result) {
	par := opts.Parallel
	if par <= 0 {
		par = runtime.NumCPU()
	}
	target := opts.Target
	if target == nil {
		target = FakeTarget{}
	}
	engine := opts.EngineName
	if engine == "" {
		engine = "syncharness-engine"
	}
	store := opts.Store
	if store == "" {
		store = "memory"
	}
	run := &reports.Run{SchemaVersion: 1, Target: target.Name(), Engine: engine, Store: store,
		Seed: opts.Seed, Started: time.Now(), Command: opts.Command}
	results := make([]*Result, len(list))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, scn := range list {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if opts.OnStart != nil {
				opts.OnStart(scn.Name)
			}
			res := RunScenario(ctx, scn, opts.Options)
			results[i] = res
			if opts.OnDone != nil {
				opts.OnDone(res)
			}
		}()
	}
	wg.Wait()
	for _, res := range results {
		if res != nil {
			run.Scenarios = append(run.Scenarios, res.Report)
		}
	}
	run.Duration = time.Since(run.Started)
	return run, results
}

// CatalogScenario returns the built-in scenario called name.
func CatalogScenario(name string) (*scenarios.Scenario, error) {
	list, err := Catalog()
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no catalogue scenario %q", name)
}

// Catalog returns the built-in conformance catalogue, parsed.
func Catalog() ([]*scenarios.Scenario, error) {
	list, err := scenarios.ParseFS(catalog.FS, ".")
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		s.File = "catalog:" + s.Name + ".scn"
	}
	return list, nil
}
