package harness_test

import (
	"bytes"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
)

// The built-in catalogue runs as one spec per scenario file, labelled by category, so
// `ginkgo --label-filter=uidvalidity ./harness` runs one category.
var _ = Describe("The conformance catalogue", func() {
	list, err := harness.Catalog()
	It("parses", func() {
		Expect(err).NotTo(HaveOccurred())
		Expect(len(list)).To(BeNumerically(">=", 40))
	})
	for _, store := range []string{"memory", "disk"} {
		Context("with "+store+" stores", func() {
			for _, scn := range list {
				first, _, _ := strings.Cut(scn.Description, "\n")
				It(scn.Name+": "+first, Label(scn.Category, "catalogue", store), func(ctx SpecContext) {
					res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1, Store: store})
					var out bytes.Buffer
					Expect(reports.WriteScenarioText(&out, res.Report, reports.TextOptions{Verbose: true})).To(Succeed())
					Expect(res.Report.Status).To(Equal(reports.Passed), out.String())
				})
			}
		})
	}
})
