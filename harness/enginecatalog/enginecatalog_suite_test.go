// Package enginecatalog_test runs the whole built-in catalogue against each external sync
// engine (mbsync, OfflineIMAP) on the fake server and compares the results with the
// expectations committed in clients/external/expectations. It is a package of its own so
// that go test runs it beside the harness package's specs: each sync is a process start,
// and the two together would take longer than either alone.
package enginecatalog_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/testsupport/skipreport"
)

func TestEngineCatalog(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "engine catalogue")
}

// The specs this suite skipped, with their reasons, show without -ginkgo.v too.
var _ = ReportAfterSuite("skipped specs", skipreport.Print)
