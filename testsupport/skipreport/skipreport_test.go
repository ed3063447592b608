package skipreport_test

import (
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/testsupport/skipreport"
)

func spec(node types.NodeType, state types.SpecState, msg string) types.SpecReport {
	r := types.SpecReport{LeafNodeType: node, State: state}
	if state == types.SpecStateSkipped && msg != "-" {
		r.Failure = types.Failure{Message: msg, Location: types.CodeLocation{FileName: "x_test.go", LineNumber: 3}}
	}
	return r
}

var _ = Describe("The summary of skipped specs", func() {
	It("counts every skipped spec and gives each reason once, the most frequent first", func() {
		r := Report{SuiteDescription: "harness", SpecReports: types.SpecReports{
			spec(types.NodeTypeIt, types.SpecStatePassed, ""),
			spec(types.NodeTypeIt, types.SpecStateSkipped, "needs chromium"),
			spec(types.NodeTypeIt, types.SpecStateSkipped, "Dovecot cannot run here: not root\nmore detail"),
			spec(types.NodeTypeIt, types.SpecStateSkipped, "Dovecot cannot run here: not root"),
			spec(types.NodeTypeIt, types.SpecStateSkipped, "-"),
			spec(types.NodeTypeIt, types.SpecStateFailed, ""),
			spec(types.NodeTypeBeforeSuite, types.SpecStatePassed, ""),
		}}
		Expect(skipreport.Summary(r)).To(Equal("\nskipped: 4 specs (harness)\n" +
			"     2  Dovecot cannot run here: not root\n" +
			"     1  needs chromium\n" +
			"     1  " + skipreport.NotSelected + "\n"))
	})

	It("says nothing when nothing was skipped", func() {
		r := Report{SuiteDescription: "harness", SpecReports: types.SpecReports{
			spec(types.NodeTypeIt, types.SpecStatePassed, ""),
			spec(types.NodeTypeIt, types.SpecStatePending, ""),
		}}
		Expect(skipreport.Summary(r)).To(BeEmpty())
	})

	It("names a Skip without a message as such", func() {
		r := Report{SuiteDescription: "s", SpecReports: types.SpecReports{spec(types.NodeTypeIt, types.SpecStateSkipped, "")}}
		Expect(skipreport.Summary(r)).To(Equal("\nskipped: 1 spec (s)\n     1  (Skip without a reason)\n"))
	})

	It("reads the reason of a real Skip (checked after the suite)", func() {
		Skip(realSkip)
	})
})

const realSkip = "a fixture: this spec skips itself"

// The report Ginkgo itself builds for the spec above gives its reason, or NotSelected when
// the command line filtered it out.
var _ = ReportAfterSuite("the summary of a real report", func(r Report) {
	want := realSkip
	for _, s := range r.SpecReports {
		if s.LeafNodeText == "reads the reason of a real Skip (checked after the suite)" && s.Failure.Message == "" {
			want = skipreport.NotSelected
		}
	}
	Expect(skipreport.Summary(r)).To(MatchRegexp(`(?m)^skipped: \d+ specs? \(skipreport\)\n(.*\n)*\s+\d+  ` + regexp.QuoteMeta(want) + "$"))
})
