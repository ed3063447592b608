package external_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/testsupport/skipreport"
)

func TestExternal(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "External Engine Suite")
}

// The specs this suite skipped, with their reasons, show without -ginkgo.v too.
var _ = ReportAfterSuite("skipped specs", skipreport.Print)
