package enginecatalog_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/external"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
)

// expectationOf is a scenario's result as an expectations file keeps it.
func expectationOf(rep *reports.Scenario) external.Expectation {
	e := external.Expectation{Scenario: rep.Name, Status: string(rep.Status)}
	seen := map[string]bool{}
	for _, f := range rep.Failures {
		if !seen[f.Invariant] {
			seen[f.Invariant] = true
			e.Invariants = append(e.Invariants, f.Invariant)
		}
	}
	sort.Strings(e.Invariants)
	return e
}

// The whole catalogue against each external engine on the fake server must give the
// results committed in clients/external/expectations/ENGINE.txt: an engine's regression,
// or a harness change that alters a verdict, shows here at once. After a deliberate change,
// regenerate with SYNCHARNESS_UPDATE_EXPECTATIONS=1 (make expectations) and explain each
// new finding in its note.
var _ = Describe("The catalogue against external engines", Label("external", "external-catalog"), func() {
	for _, engine := range []string{"mbsync", "offlineimap"} {
		It("gives "+engine+"'s committed expectations on the fake server", func(ctx SpecContext) {
			p, err := external.LoadBuiltin(engine)
			Expect(err).NotTo(HaveOccurred())
			if _, err := exec.LookPath(p.Binary); err != nil {
				if os.Getenv("SYNCHARNESS_REQUIRE_ENGINES") == "1" {
					Fail(engine + " is not installed and SYNCHARNESS_REQUIRE_ENGINES=1")
				}
				Skip(engine + " is not installed")
			}
			list, err := harness.Catalog()
			Expect(err).NotTo(HaveOccurred())
			// Each sync is a process start, and mbsync waits for the clock's next second
			// after it delivers: more scenarios at once than cores keeps both busy.
			_, results := harness.RunAllSkipping(ctx, list, harness.RunOptions{
				Options:  harness.Options{Seed: 1, NewDevice: harness.ExternalDevice(p), EngineName: p.Name},
				Parallel: 8,
			}, harness.ExternalSkip(p))
			Expect(results).To(HaveLen(len(list)))
			got := map[string]external.Expectation{}
			for _, res := range results {
				got[res.Report.Name] = expectationOf(res.Report)
			}
			path := filepath.Join("..", "..", external.ExpectationsPath(engine))
			if os.Getenv("SYNCHARNESS_UPDATE_EXPECTATIONS") == "1" {
				old, _ := external.BuiltinExpectations(engine)
				for name, e := range got {
					if o, ok := old[name]; ok && o.Same(e) {
						e.Note = o.Note
						got[name] = e
					}
				}
				var b bytes.Buffer
				Expect(external.WriteExpectations(&b, fmt.Sprintf(`Results of the built-in catalogue against %s on the fake server, seed 1: one line a
scenario, NAME STATUS [FAILED INVARIANTS…] [-- the finding, for the matrix notes].
The catalogue spec (harness/enginecatalog/catalog_test.go) fails when a result changes;
regenerate after a deliberate change with: make expectations`, engine), got)).To(Succeed())
				Expect(os.WriteFile(path, b.Bytes(), 0o644)).To(Succeed())
				return
			}
			want, err := external.BuiltinExpectations(engine)
			Expect(err).NotTo(HaveOccurred())
			var changed []string
			for name, e := range got {
				w, ok := want[name]
				switch {
				case !ok && (e.Status == string(reports.Passed) || e.Status == string(reports.Skipped)):
					// A scenario added to the catalogue since is expected to pass (or be
					// skipped for what the engine does not claim), as browser suites expect
					// a new test to; only a failure asks for a note.
				case !ok:
					changed = append(changed, "new:     "+e.Line())
				case !w.Same(e):
					changed = append(changed, fmt.Sprintf("changed: %s (expected %s)", e.Line(), w.Line()))
				}
			}
			for name, w := range want {
				if _, ok := got[name]; !ok {
					changed = append(changed, "gone:    "+w.Line())
				}
			}
			sort.Strings(changed)
			Expect(changed).To(BeEmpty(), "%s's results differ from %s; if the change is meant, run make expectations:\n%s",
				engine, path, strings.Join(changed, "\n"))
		})
	}
})
