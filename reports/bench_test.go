package reports_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/syncharness/syncharness/reports"
)

// bigRun is a catalogue-sized run: n scenarios, every tenth failed with a table and a
// transcript excerpt.
func bigRun(n int) *reports.Run {
	r := sampleRun()
	r.Scenarios = nil
	for i := range n {
		var s *reports.Scenario
		if i%10 == 0 {
			s = failedScenario()
		} else {
			s = &reports.Scenario{Category: "flags", Status: reports.Passed, Seed: 7, Devices: []string{"phone", "laptop"},
				Steps: failedScenario().Steps}
		}
		s.Name = fmt.Sprintf("scenario_%03d", i)
		r.Scenarios = append(r.Scenarios, s)
	}
	return r
}

func BenchmarkWriteText(b *testing.B) {
	r := bigRun(100)
	for b.Loop() {
		if err := reports.WriteText(io.Discard, r, reports.TextOptions{Color: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteJSON(b *testing.B) {
	r := bigRun(100)
	for b.Loop() {
		if err := reports.WriteJSON(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteJUnit(b *testing.B) {
	r := bigRun(100)
	for b.Loop() {
		if err := reports.WriteJUnit(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProgressLive(b *testing.B) {
	p := reports.NewProgress(io.Discard, 1000, true)
	s := &reports.Scenario{Name: "flags_read_on_two_devices", Status: reports.Passed}
	for b.Loop() {
		p.Start(s.Name)
		p.Done(s)
	}
	p.Finish()
}
