package maildir_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestMaildir(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Maildir Suite")
}
