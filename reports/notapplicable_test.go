package reports_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

var _ = Describe("Checks that were not applicable", func() {
	passed := func() *reports.Scenario {
		return &reports.Scenario{Name: "flags_concurrent_read", Status: reports.Passed,
			NotApplicable: []string{"I2", "I9", "I10"}}
	}
	failed := func() *reports.Scenario {
		s := failedScenario()
		s.NotApplicable = []string{"I2", "I9", "I10", "I11"}
		return s
	}

	It("are written to JSON and read back, for passed and failed scenarios alike", func() {
		run := &reports.Run{Scenarios: []*reports.Scenario{passed(), failed()}}
		b := writeJSON(run)
		Expect(string(b)).To(ContainSubstring(`"not_applicable": [`))
		back := readJSON(b)
		Expect(back.Scenarios[0].NotApplicable).To(Equal([]string{"I2", "I9", "I10"}))
		Expect(back.Scenarios[1].NotApplicable).To(Equal([]string{"I2", "I9", "I10", "I11"}))
	})

	It("are left out of the JSON when every invariant was judged", func() {
		s := passed()
		s.NotApplicable = nil
		Expect(string(writeJSON(&reports.Run{Scenarios: []*reports.Scenario{s}}))).NotTo(ContainSubstring("not_applicable"))
	})

	It("are named on a passed scenario's line and in a failed scenario's block of the text report", func() {
		Expect(scenarioText(passed(), reports.TextOptions{})).To(
			Equal("PASS flags_concurrent_read (0.00s) not applicable: I2, I9, I10\n"))
		text := scenarioText(failed(), reports.TextOptions{})
		Expect(text).To(ContainSubstring("\n  not applicable: I2, I9, I10, I11\n"))
		s := passed()
		s.NotApplicable = nil
		Expect(strings.Contains(scenarioText(s, reports.TextOptions{}), "not applicable")).To(BeFalse())
	})

	It("are shown in the HTML report, in the passed table and in a failed scenario's section", func() {
		page := string(writeHTML(&reports.Run{Scenarios: []*reports.Scenario{passed(), failed()}}))
		Expect(page).To(ContainSubstring(`<p class="na" id="s1-na"`))
		Expect(page).To(ContainSubstring(`>not applicable: I2, I9, I10</p>`))
		Expect(page).To(ContainSubstring(`<h3>Not applicable</h3>`))
		Expect(page).To(ContainSubstring(`<p class="na" id="s2-na"`))
		Expect(page).To(ContainSubstring(`>not applicable: I2, I9, I10, I11</p>`))
		s := passed()
		s.NotApplicable = nil
		Expect(string(writeHTML(&reports.Run{Scenarios: []*reports.Scenario{s}}))).NotTo(ContainSubstring("not applicable"))
	})
})
