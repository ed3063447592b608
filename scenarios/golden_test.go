package scenarios_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

// update rewrites the *.golden files of testdata/errors from the parser's output:
//
//	go test ./scenarios -update   (or UPDATE_GOLDEN=1 go test ./scenarios)
var update = flag.Bool("update", false, "rewrite testdata/errors/*.golden from the parser's output")

func updating() bool { return *update || os.Getenv("UPDATE_GOLDEN") != "" }

var _ = Describe("Errors in broken scenario files", func() {
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.scn"))
	if err != nil {
		panic(err)
	}

	It("has a corpus of broken files", func() {
		Expect(len(files)).To(BeNumerically(">=", 15))
	})

	for _, file := range files {
		golden := strings.TrimSuffix(file, ".scn") + ".golden"
		It("reports every error of "+filepath.Base(file)+" as in its .golden file", func() {
			data, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			_, err = scenarios.Parse(file, data)
			Expect(err).To(HaveOccurred(), "a file of the error corpus must have errors")
			var list scenarios.ErrorList
			Expect(errors.As(err, &list)).To(BeTrue(), "Parse returns an ErrorList")
			got := filepath.ToSlash(err.Error()) + "\n"
			if updating() {
				Expect(os.WriteFile(golden, []byte(got), 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(golden)
			Expect(err).NotTo(HaveOccurred(), "missing golden file: run go test ./scenarios -update")
			Expect(got).To(Equal(string(want)), "errors differ from %s (if the new ones are right: go test ./scenarios -update)", golden)
			for _, e := range list {
				Expect(e.File).To(Equal(file))
				Expect(e.Line).To(BeNumerically(">", 0))
				Expect(e.Msg).NotTo(BeEmpty())
			}
		})
	}
})
