package main

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

var _ = Describe("The conformance matrix", func() {
	It("counts server findings apart and names the server invariants each target broke", func() {
		list := []*scenarios.Scenario{{Name: "folder_swap_names"}, {Name: "delete_beats_flag"}, {Name: "flags_concurrent_read"}}
		fake := matrixColumn{title: "fake server", results: map[string]*reports.Scenario{
			"folder_swap_names":     {Name: "folder_swap_names", Status: reports.Passed},
			"delete_beats_flag":     {Name: "delete_beats_flag", Status: reports.Passed},
			"flags_concurrent_read": {Name: "flags_concurrent_read", Status: reports.Passed},
		}}
		dovecot := matrixColumn{title: "Dovecot 2.3.19", results: map[string]*reports.Scenario{
			"folder_swap_names": {Name: "folder_swap_names", Status: reports.ServerFinding, Failures: []reports.Failure{
				{Invariant: "settle"}, {Invariant: "S9", Server: true}, {Invariant: "S9", Server: true}}},
			"delete_beats_flag": {Name: "delete_beats_flag", Status: reports.Failed, Failures: []reports.Failure{
				{Invariant: "I6"}, {Invariant: "S10", Server: true}}},
			"flags_concurrent_read": {Name: "flags_concurrent_read", Status: reports.Passed},
		}}
		var b strings.Builder
		Expect(writeMatrix(&b, list, []matrixColumn{fake, dovecot})).To(Succeed())
		out := b.String()
		Expect(out).To(ContainSubstring("| target | passed | server findings | failed | errored | skipped | server invariants broken |"))
		Expect(out).To(ContainSubstring("| fake server | 3 | 0 | 0 | 0 | 0 | none |"))
		Expect(out).To(ContainSubstring("| Dovecot 2.3.19 | 1 | 1 | 1 | 0 | 0 | S9 no internal errors, S10 UID commands on expunged UIDs succeed |"))
		Expect(out).To(ContainSubstring("| `folder_swap_names` | pass | **server finding** (S9 RFC 5530 §3) |"))
		Expect(out).To(ContainSubstring("| `delete_beats_flag` | pass | **FAIL** (I6, server finding S10) |"))
	})
})
