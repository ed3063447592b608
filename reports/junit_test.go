package reports_test

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

// The JUnit document as a CI system reads it.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     string   `xml:"time,attr"`
	Suites   []xSuite `xml:"testsuite"`
}

type xSuite struct {
	Name       string      `xml:"name,attr"`
	Tests      int         `xml:"tests,attr"`
	Failures   int         `xml:"failures,attr"`
	Errors     int         `xml:"errors,attr"`
	Skipped    int         `xml:"skipped,attr"`
	Time       string      `xml:"time,attr"`
	Timestamp  string      `xml:"timestamp,attr"`
	Properties []xProperty `xml:"properties>property"`
	Cases      []xCase     `xml:"testcase"`
}

type xProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xCase struct {
	Name      string    `xml:"name,attr"`
	Classname string    `xml:"classname,attr"`
	Time      string    `xml:"time,attr"`
	Failure   *xOutcome `xml:"failure"`
	Error     *xOutcome `xml:"error"`
	Skipped   *xOutcome `xml:"skipped"`
	SystemOut string    `xml:"system-out"`
}

type xOutcome struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(r *reports.Run) []byte {
	GinkgoHelper()
	var b bytes.Buffer
	Expect(reports.WriteJUnit(&b, r)).To(Succeed())
	return b.Bytes()
}

// decodeStrict decodes a JUnit document with a strict XML decoder and refuses anything after
// the root element.
func decodeStrict(doc []byte) xSuites {
	GinkgoHelper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	var s xSuites
	Expect(dec.Decode(&s)).To(Succeed())
	for {
		tok, err := dec.Token()
		if err != nil {
			Expect(err.Error()).To(Equal("EOF"))
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			Expect(strings.TrimSpace(string(cd))).To(BeEmpty(), "text after the root element")
			continue
		}
		Fail("unexpected token after the root element")
	}
	return s
}

// xmllint validates doc against testdata/junit.xsd, or skips the spec when xmllint is not
// installed (CI installs libxml2-utils).
func xmllint(doc []byte) (string, error) {
	GinkgoHelper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		Skip("xmllint is not installed (Debian: apt-get install libxml2-utils); the strict decode specs still run")
	}
	file := filepath.Join(GinkgoT().TempDir(), "junit.xml")
	Expect(os.WriteFile(file, doc, 0o644)).To(Succeed())
	out, err := exec.Command(path, "--noout", "--schema", "testdata/junit.xsd", file).CombinedOutput()
	return string(out), err
}

// hostileRun has names and texts that XML and terminals choke on.
func hostileRun() *reports.Run {
	r := sampleRun()
	s := r.Scenarios[1]
	s.Name = `move_<&>"quoted"` + "\x1b[31m"
	s.Category = ""
	s.Failures[0].Message = "m1 ]]> is \x00 in \xff Archive\nand Work \uFFFE"
	s.Failures = append(s.Failures, reports.Failure{Invariant: "I1", Title: "converged", Message: "phone lacks m2"})
	s.Transcript = append(s.Transcript, reports.TranscriptLine{Device: "phone", Dir: "S", Text: "* 1 FETCH (BODY[] {5}\r\n\x01\x02]]>"})
	s.Steps[0].Error = "]]>"
	r.Scenarios[3].Error = "setup: \x07bell ]]> & <tag>"
	r.Scenarios[2].SkipReason = "needs\tdoveadm <admin>"
	return r
}

var _ = Describe("The JUnit report", func() {
	It("is valid against the JUnit schema that CI systems expect", func() {
		out, err := xmllint(writeJUnit(sampleRun()))
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("validates"))
	})

	It("stays valid with markup, control characters and invalid UTF-8 in every text", func() {
		doc := writeJUnit(hostileRun())
		decodeStrict(doc)
		out, err := xmllint(doc)
		Expect(err).NotTo(HaveOccurred(), out)
	})

	It("is checked by a schema that refuses a test case with two outcomes", func() {
		bad := strings.Replace(string(writeJUnit(sampleRun())), `<skipped message=`, `<error message="x"></error><skipped message=`, 1)
		out, err := xmllint([]byte(bad))
		Expect(err).To(HaveOccurred())
		Expect(out).To(ContainSubstring("fails to validate"))
	})

	It("has one test case per scenario in a test suite per category, with classname = category", func() {
		doc := decodeStrict(writeJUnit(sampleRun()))
		var names, suites []string
		for _, s := range doc.Suites {
			suites = append(suites, s.Name)
			for _, c := range s.Cases {
				Expect(c.Classname).To(Equal(s.Name))
				names = append(names, c.Name)
			}
		}
		Expect(suites).To(Equal([]string{"flags", "move", "uidvalidity", "crash"}))
		Expect(names).To(Equal([]string{"flags_read_on_two_devices", "move_concurrent_two_folders", "uidvalidity_reset_dovecot", "crash_after_append"}))
	})

	It("counts outcomes per suite and in total, with times in seconds", func() {
		doc := decodeStrict(writeJUnit(sampleRun()))
		Expect([]int{doc.Tests, doc.Failures, doc.Errors, doc.Skipped}).To(Equal([]int{4, 1, 1, 1}))
		Expect(doc.Time).To(Equal("3.210"))
		move := doc.Suites[1]
		Expect([]int{move.Tests, move.Failures, move.Errors, move.Skipped}).To(Equal([]int{1, 1, 0, 0}))
		Expect(move.Time).To(Equal("0.410"))
		Expect(move.Cases[0].Time).To(Equal("0.410"))
		Expect(move.Timestamp).To(Equal("2026-03-14T09:26:53"))
		Expect(move.Properties).To(ContainElement(xProperty{Name: "seed", Value: "7"}))
	})

	It("groups two scenarios of one category in one suite and adds up their times", func() {
		r := sampleRun()
		r.Scenarios[0].Category = "move"
		doc := decodeStrict(writeJUnit(r))
		Expect(doc.Suites[0].Name).To(Equal("move"))
		Expect(doc.Suites[0].Tests).To(Equal(2))
		Expect(doc.Suites[0].Time).To(Equal("0.530"))
	})

	It("gives a failure the invariant in words as its message and the whole story as its text", func() {
		c := decodeStrict(writeJUnit(sampleRun())).Suites[1].Cases[0]
		Expect(c.Failure).NotTo(BeNil())
		Expect(c.Error).To(BeNil())
		Expect(c.Failure.Message).To(Equal("I4 no duplicates: m1 is in both Archive and Work on the server"))
		Expect(c.Failure.Type).To(Equal("I4"))
		Expect(c.Failure.Text).To(ContainSubstring("       m1     Archive  1       1      1\n"))
		Expect(c.Failure.Text).To(ContainSubstring("phone   C: a7 UID MOVE 1 Archive"))
		Expect(c.Failure.Text).To(ContainSubstring("reproduce: syncharness run scenarios/catalog/move_concurrent_two_folders.scn --seed 7"))
		Expect(c.SystemOut).To(ContainSubstring("laptop move INBOX m1 Work (2ms)"))
	})

	It("says how many more failures there are", func() {
		c := decodeStrict(writeJUnit(hostileRun())).Suites[1].Cases[0]
		Expect(c.Failure.Message).To(HavePrefix("I4 no duplicates: m1 ]]> is \\x00 in \\xff Archive"))
		Expect(c.Failure.Message).To(HaveSuffix("(and 1 more)"))
		Expect(c.Failure.Text).To(ContainSubstring("I1 converged: phone lacks m2"))
		Expect(c.Failure.Text).To(ContainSubstring(`* 1 FETCH (BODY[] {5}\r\n\x01\x02]]>`))
	})

	It("puts a scenario without a category in the suite \"other\"", func() {
		doc := decodeStrict(writeJUnit(hostileRun()))
		Expect(doc.Suites[1].Name).To(Equal("other"))
		Expect(doc.Suites[1].Cases[0].Name).To(Equal(`move_<&>"quoted"\x1b[31m`))
	})

	It("reports a skipped scenario with its reason and an errored one with its error", func() {
		doc := decodeStrict(writeJUnit(sampleRun()))
		skipped := doc.Suites[2].Cases[0]
		Expect(skipped.Skipped).NotTo(BeNil())
		Expect(skipped.Skipped.Message).To(Equal("the target cannot reset UIDVALIDITY"))
		errored := doc.Suites[3].Cases[0]
		Expect(errored.Error).NotTo(BeNil())
		Expect(errored.Failure).To(BeNil())
		Expect(errored.Error.Message).To(Equal("setup: deliver INBOX m1: connection refused"))
		Expect(errored.Error.Text).To(ContainSubstring("second line of the error"))
		passed := doc.Suites[0].Cases[0]
		Expect(passed.Failure).To(BeNil())
		Expect(passed.Error).To(BeNil())
		Expect(passed.Skipped).To(BeNil())
	})

	It("writes an empty run as an empty, valid document", func() {
		doc := writeJUnit(&reports.Run{SchemaVersion: 1, Duration: time.Second})
		Expect(decodeStrict(doc).Suites).To(BeEmpty())
		out, err := xmllint(doc)
		Expect(err).NotTo(HaveOccurred(), out)
	})

	It("refuses a run with a nil scenario", func() {
		r := sampleRun()
		r.Scenarios[2] = nil
		Expect(reports.WriteJUnit(&bytes.Buffer{}, r)).To(MatchError(ContainSubstring("scenario 2 is nil")))
	})
})
