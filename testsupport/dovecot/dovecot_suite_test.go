package dovecot_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestDovecot(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Dovecot launcher Suite")
}
