package reports

import (
	"slices"
	"strings"
	"time"
)

// MergeRuns combines the results of several runs, typically shards of one catalogue run in
// CI, into one run. The scenarios are deep copies, in the order of the runs and then of
// their scenarios; nil runs are ignored. Started is the earliest start and Duration spans
// from it to the latest end. Target, Engine, Store and Command are kept when all runs agree
// and otherwise list the distinct values joined by ", " (Command by newlines); Seed is kept
// when all runs agree and is 0 otherwise (each scenario keeps its own seed). The inputs are
// not changed.
func MergeRuns(runs ...*Run) *Run {
	out := &Run{SchemaVersion: SchemaVersion}
	var targets, engines, stores, commands []string
	var seeds []int64
	var end time.Time
	for _, r := range runs {
		if r == nil {
			continue
		}
		targets = appendDistinct(targets, r.Target)
		engines = appendDistinct(engines, r.Engine)
		stores = appendDistinct(stores, r.Store)
		commands = appendDistinct(commands, r.Command)
		if !slices.Contains(seeds, r.Seed) {
			seeds = append(seeds, r.Seed)
		}
		if !r.Started.IsZero() {
			if out.Started.IsZero() || r.Started.Before(out.Started) {
				out.Started = r.Started
			}
			if e := r.Started.Add(r.Duration); e.After(end) {
				end = e
			}
		} else if r.Duration > out.Duration {
			out.Duration = r.Duration
		}
		for _, s := range r.Scenarios {
			out.Scenarios = append(out.Scenarios, s.clone())
		}
	}
	if !out.Started.IsZero() {
		out.Duration = max(out.Duration, end.Sub(out.Started))
	}
	out.Target = strings.Join(targets, ", ")
	out.Engine = strings.Join(engines, ", ")
	out.Store = strings.Join(stores, ", ")
	out.Command = strings.Join(commands, "\n")
	if len(seeds) == 1 {
		out.Seed = seeds[0]
	}
	return out
}

func appendDistinct(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// clone returns a deep copy of s; nil stays nil.
func (s *Scenario) clone() *Scenario {
	if s == nil {
		return nil
	}
	c := *s
	c.Devices = slices.Clone(s.Devices)
	c.Steps = slices.Clone(s.Steps)
	c.Transcript = slices.Clone(s.Transcript)
	if s.Failures != nil {
		c.Failures = make([]Failure, len(s.Failures))
		for i, f := range s.Failures {
			f.Devices = slices.Clone(f.Devices)
			f.Labels = slices.Clone(f.Labels)
			if f.Table != nil {
				t := &Table{Columns: slices.Clone(f.Table.Columns)}
				if f.Table.Rows != nil {
					t.Rows = make([][]string, len(f.Table.Rows))
					for j, row := range f.Table.Rows {
						t.Rows[j] = slices.Clone(row)
					}
				}
				f.Table = t
			}
			c.Failures[i] = f
		}
	}
	return &c
}
