package reports_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

var _ = Describe("The relaxations a passed scenario relied on", func() {
	passed := func() *reports.Scenario {
		return &reports.Scenario{Name: "move_chain", Status: reports.Passed, Relaxations: []reports.Relaxation{
			{ID: "R2", Name: "in-flight-early", Kind: "protocol"},
			{ID: "R15", Name: "fold-moves", Kind: "policy"},
		}}
	}

	It("are written to JSON and read back", func() {
		run := &reports.Run{Scenarios: []*reports.Scenario{passed()}}
		b := writeJSON(run)
		Expect(string(b)).To(ContainSubstring(`"relaxations": [`))
		Expect(string(b)).To(ContainSubstring(`"id": "R15"`))
		Expect(readJSON(b).Scenarios[0].Relaxations).To(Equal(passed().Relaxations))
	})

	It("are left out of the JSON when there are none", func() {
		s := passed()
		s.Relaxations = nil
		Expect(string(writeJSON(&reports.Run{Scenarios: []*reports.Scenario{s}}))).NotTo(ContainSubstring("relaxations"))
	})

	It("are named by -v, policies marked", func() {
		Expect(scenarioText(passed(), reports.TextOptions{Verbose: true})).To(
			ContainSubstring("accepted under R2 in-flight-early, R15 fold-moves (policy)\n"))
		Expect(strings.Contains(scenarioText(passed(), reports.TextOptions{}), "accepted under")).To(BeFalse())
	})
})
