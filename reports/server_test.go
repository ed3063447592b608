package reports_test

import (
	"bytes"
	"encoding/json"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

// serverRun is a run whose only non-pass is a server finding.
func serverRun() *reports.Run {
	return &reports.Run{SchemaVersion: 1, Target: "imap://127.0.0.1:1143", Seed: 7, Scenarios: []*reports.Scenario{
		{Name: "flags_ok", Category: "flags", Status: reports.Passed, Seed: 7},
		{Name: "folder_swap_names", Category: "folder", Status: reports.ServerFinding, Seed: 7,
			Attribution: "S9 at +0.412s precedes the divergence; the same scenario and seed pass on the fake server",
			Failures: []reports.Failure{
				{Invariant: "S9", Title: "no internal errors", Message: "the server reported an internal failure ([SERVERBUG])", Server: true},
				{Invariant: "settle", Title: "settles", Message: "the devices did not settle"},
			}},
	}}
}

var _ = Describe("A server finding", func() {
	It("is counted apart and exits 4, not 1, when nothing else failed", func() {
		r := serverRun()
		Expect(r.Counts()).To(Equal(reports.Counts{Passed: 1, Server: 1, Total: 2}))
		Expect(r.OK()).To(BeTrue())
		Expect(r.ExitStatus()).To(Equal(reports.ExitServer))
		r.Scenarios = append(r.Scenarios, &reports.Scenario{Name: "x", Status: reports.Failed})
		Expect(r.ExitStatus()).To(Equal(reports.ExitFailed))
	})

	It("shows as SERVER with its attribution and in the summary line", func() {
		var b bytes.Buffer
		Expect(reports.WriteText(&b, serverRun(), reports.TextOptions{})).To(Succeed())
		Expect(b.String()).To(ContainSubstring("SERVER folder_swap_names"))
		Expect(b.String()).To(ContainSubstring("attribution: S9 at +0.412s precedes"))
		Expect(b.String()).To(ContainSubstring("1 server findings, 1 passed"))
	})

	It("has its count and status in JSON and survives a round trip", func() {
		var doc struct {
			Counts    map[string]int `json:"counts"`
			Exit      int            `json:"exit_status"`
			Scenarios []struct {
				Status      string `json:"status"`
				Attribution string `json:"attribution"`
			} `json:"scenarios"`
		}
		var b bytes.Buffer
		Expect(reports.WriteJSON(&b, serverRun())).To(Succeed())
		Expect(json.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect(doc.Counts["server"]).To(Equal(1))
		Expect(doc.Exit).To(Equal(4))
		Expect(doc.Scenarios[1].Status).To(Equal("server"))
		back, err := reports.ReadJSON(&b)
		Expect(err).NotTo(HaveOccurred())
		Expect(back.Scenarios[1].Attribution).To(Equal(serverRun().Scenarios[1].Attribution))
		Expect(back.Scenarios[1].Status).To(Equal(reports.ServerFinding))
	})

	It("is a JUnit failure of type server finding, counted in a property", func() {
		var b bytes.Buffer
		Expect(reports.WriteJUnit(&b, serverRun())).To(Succeed())
		Expect(b.String()).To(ContainSubstring(`type="server finding S9`))
		Expect(b.String()).To(ContainSubstring(`<property name="server_findings" value="1">`))
	})

	It("has its own count, badge and section in the HTML page", func() {
		var b bytes.Buffer
		Expect(reports.WriteHTML(&b, serverRun())).To(Succeed())
		html := b.String()
		Expect(html).To(ContainSubstring(`<span class="count server">1 server findings</span>`))
		Expect(html).To(ContainSubstring(`<section class="scenario server"`))
		Expect(strings.Count(html, "precedes the divergence; the same scenario")).To(Equal(1))
	})
})
