package reports

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The JUnit XML shape read by Jenkins, GitLab, GitHub Actions test reporters and others
// (the Ant/Jenkins schema; reports/testdata/junit.xsd is the subset written here):
//
//	testsuites (name tests failures errors skipped time)
//	  testsuite (name tests failures errors skipped time timestamp)   one per category
//	    properties > property (name value)                             target, engine, store, seed
//	    testcase (name classname time)                                 one per scenario
//	      failure (message type) | error (message type) | skipped (message)
//	      system-out                                                   steps, for failed and errored

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitSkipped `xml:"skipped"`
	Error     *junitResult  `xml:"error"`
	Failure   *junitResult  `xml:"failure"`
	SystemOut *junitCDATA   `xml:"system-out"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitCDATA struct {
	Text string `xml:",cdata"`
}

// junitDefaultCategory names the suite of scenarios without a category.
const junitDefaultCategory = "other"

// WriteJUnit writes r as JUnit XML: a testsuite per category in order of first appearance,
// a testcase per scenario with classname = category and times in seconds. A failed scenario
// has one <failure> whose message is its first broken guarantee in words ("I4 no
// duplicates: m1 is in both Archive and Work on the server", with "(and N more)" when there
// are several) and whose text is the whole failure as WriteText shows it, without colour;
// an errored one has an <error> with the error; a skipped one a <skipped> with the reason.
// Failed and errored cases also get their steps in <system-out>.
//
// Attributes hold one line each, with control characters shown as Go escapes as in the text
// report; details are CDATA sections. Characters XML 1.0 cannot carry are replaced by U+FFFD.
func WriteJUnit(w io.Writer, r *Run) error {
	if r == nil {
		return fmt.Errorf("reports: write junit: nil run")
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("reports: write junit: %w", err)
	}
	doc := junitSuites{Name: "syncharness", Time: junitSeconds(r.Duration.Seconds())}
	index := map[string]int{}
	var secs []float64 // per suite
	for _, s := range r.Scenarios {
		cat := s.Category
		if cat == "" {
			cat = junitDefaultCategory
		}
		i, ok := index[cat]
		if !ok {
			i = len(doc.Suites)
			index[cat] = i
			doc.Suites = append(doc.Suites, junitSuite{Name: xmlSafe(clean(cat)), Properties: junitProperties(r)})
			secs = append(secs, 0)
			if !r.Started.IsZero() {
				doc.Suites[i].Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
			}
		}
		c, err := junitTestcase(s, cat)
		if err != nil {
			return fmt.Errorf("reports: write junit: %w", err)
		}
		suite := &doc.Suites[i]
		suite.Cases = append(suite.Cases, c)
		suite.Tests++
		doc.Tests++
		secs[i] += s.Duration.Seconds()
		switch s.Status {
		case Failed, ServerFinding:
			suite.Failures++
			doc.Failures++
		case Errored, Unconfirmed:
			suite.Errors++
			doc.Errors++
		case Skipped:
			suite.Skipped++
			doc.Skipped++
		}
	}
	for i := range doc.Suites {
		doc.Suites[i].Time = junitSeconds(secs[i])
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("reports: write junit: %w", err)
	}
	b.WriteString("\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("reports: write junit: %w", err)
	}
	return nil
}

func junitProperties(r *Run) []junitProperty {
	props := []junitProperty{
		{Name: "target", Value: r.Target},
		{Name: "engine", Value: r.Engine},
		{Name: "store", Value: r.Store},
		{Name: "seed", Value: strconv.FormatInt(r.Seed, 10)},
	}
	if r.Command != "" {
		props = append(props, junitProperty{Name: "command", Value: r.Command})
	}
	if c := r.Counts(); c.Server > 0 {
		// Reported as failures of type "server finding …"; counted here apart.
		props = append(props, junitProperty{Name: "server_findings", Value: strconv.Itoa(c.Server)})
	}
	for i := range props {
		props[i].Value = xmlSafe(clean(props[i].Value))
	}
	return props
}

func junitTestcase(s *Scenario, classname string) (junitCase, error) {
	c := junitCase{Name: xmlSafe(clean(scenarioName(s))), Classname: xmlSafe(clean(classname)), Time: junitSeconds(s.Duration.Seconds())}
	switch s.Status {
	case Skipped:
		c.Skipped = &junitSkipped{Message: xmlSafe(clean(s.SkipReason))}
		return c, nil
	case Passed:
		return c, nil
	}
	var details bytes.Buffer
	if err := WriteScenarioText(&details, s, TextOptions{}); err != nil {
		return c, err
	}
	if s.Status == Errored || s.Status == Unconfirmed {
		msg := firstLine(s.Error)
		if s.Status == Unconfirmed {
			msg = "not confirmed by a second run: the harness was not deterministic"
		}
		if msg == "" {
			msg = "error"
		}
		c.Error = &junitResult{Message: xmlSafe(clean(msg)), Type: "error", Text: xmlSafe(strings.TrimRight(details.String(), "\n") + "\n")}
	} else {
		typ := failureType(s.Failures)
		if s.Status == ServerFinding {
			typ = "server finding " + typ
		}
		c.Failure = &junitResult{Message: xmlSafe(clean(failureMessage(s.Failures))), Type: xmlSafe(clean(typ)),
			Text: xmlSafe(strings.TrimRight(details.String(), "\n") + "\n")}
	}
	if len(s.Steps) > 0 {
		var out bytes.Buffer
		t := textWriter{w: bufio.NewWriter(&out), p: newPalette(false), verbose: true}
		t.steps(s.Steps)
		if err := t.w.Flush(); err != nil {
			return c, err
		}
		c.SystemOut = &junitCDATA{Text: xmlSafe(out.String())}
	}
	return c, nil
}

// failureMessage is the first failure in words, with a count of the others.
func failureMessage(fs []Failure) string {
	if len(fs) == 0 {
		return "failed"
	}
	f := fs[0]
	msg := strings.TrimSpace(strings.Join(nonEmpty(f.Invariant, f.Title), " "))
	if f.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", f.Line)
	}
	if m := firstLine(f.Message); m != "" {
		if msg != "" {
			msg += ": "
		}
		msg += m
	}
	if n := len(fs) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

// failureType is the invariant of the first failure ("I4"), for CI systems that group by
// type.
func failureType(fs []Failure) string {
	if len(fs) == 0 || fs[0].Invariant == "" {
		return "failure"
	}
	return fs[0].Invariant
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func junitSeconds(s float64) string {
	return strconv.FormatFloat(s, 'f', 3, 64)
}

// xmlSafe replaces the characters XML 1.0 cannot carry (control characters other than tab,
// newline and carriage return; U+FFFE and U+FFFF) with U+FFFD. encoding/xml does the same for
// attributes and character data but not for CDATA sections.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}
