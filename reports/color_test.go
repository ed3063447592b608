package reports_test

import (
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

var _ = Describe("Choosing colour", func() {
	var tty *os.File

	BeforeEach(func() {
		GinkgoT().Setenv("NO_COLOR", "")
		GinkgoT().Setenv("TERM", "xterm-256color")
		// The master side of a new pseudo-terminal is a terminal for isatty.
		f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
		if err != nil {
			Skip("no pseudo-terminal on this system: " + err.Error())
		}
		DeferCleanup(f.Close)
		tty = f
	})

	It("colours a terminal", func() {
		Expect(reports.UseColor(tty)).To(BeTrue())
	})

	It("does not colour a file or a pipe", func() {
		r, w, err := os.Pipe()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(r.Close)
		DeferCleanup(w.Close)
		Expect(reports.UseColor(w)).To(BeFalse())
		f, err := os.Create(GinkgoT().TempDir() + "/out.txt")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(f.Close)
		Expect(reports.UseColor(f)).To(BeFalse())
		Expect(reports.UseColor(nil)).To(BeFalse())
	})

	It("honours NO_COLOR on a terminal", func() {
		GinkgoT().Setenv("NO_COLOR", "1")
		Expect(reports.UseColor(tty)).To(BeFalse())
	})

	It("does not colour a dumb terminal", func() {
		GinkgoT().Setenv("TERM", "dumb")
		Expect(reports.UseColor(tty)).To(BeFalse())
	})
})
