package skipreport_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/testsupport/skipreport"
)

func TestSkipreport(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "skipreport")
}

var _ = ReportAfterSuite("skipped specs", skipreport.Print)
