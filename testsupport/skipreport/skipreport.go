// Package skipreport prints, after a Ginkgo suite, how many specs were skipped and why, so
// that a skip shows in the normal output of `go test -v` and `make test`, not only with
// -ginkgo.v. Every suite of the project registers it:
//
//	var _ = ReportAfterSuite("skipped specs", skipreport.Print)
package skipreport

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// NotSelected is the reason given for specs that the command line left out.
const NotSelected = "not selected by -ginkgo.focus, -ginkgo.skip or -ginkgo.label-filter"

// Print writes Summary to standard output, where `go test -v` shows it (GinkgoWriter
// would show it only for a failed suite or with -ginkgo.v). It prints nothing when no
// spec was skipped.
func Print(r ginkgo.Report) {
	Write(os.Stdout, r)
}

// Write writes Summary(r) to w.
func Write(w io.Writer, r ginkgo.Report) {
	_, _ = io.WriteString(w, Summary(r))
}

// Summary returns "skipped: N specs (suite)", after an empty line, and below it each reason once, with how many
// specs it skipped, the most frequent first; "" when no spec was skipped. Specs that
// skipped themselves (Skip) give their message's first line; specs left out by the
// command line's filters are counted as NotSelected.
func Summary(r ginkgo.Report) string {
	count := map[string]int{}
	total := 0
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt || s.State != types.SpecStateSkipped {
			continue
		}
		total++
		reason := NotSelected
		if s.Failure.Message != "" || s.Failure.Location.FileName != "" {
			reason, _, _ = strings.Cut(strings.TrimSpace(s.Failure.Message), "\n")
			if reason == "" {
				reason = "(Skip without a reason)"
			}
		}
		count[reason]++
	}
	if total == 0 {
		return ""
	}
	reasons := make([]string, 0, len(count))
	for r := range count {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if count[reasons[i]] != count[reasons[j]] {
			return count[reasons[i]] > count[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	var b strings.Builder
	noun := "specs"
	if total == 1 {
		noun = "spec"
	}
	fmt.Fprintf(&b, "\nskipped: %d %s (%s)\n", total, noun, r.SuiteDescription)
	for _, reason := range reasons {
		fmt.Fprintf(&b, "  %4d  %s\n", count[reason], reason)
	}
	return b.String()
}
