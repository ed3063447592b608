package external

import (
	"bufio"
	"embed"
	"fmt"
	"io"
	"sort"
	"strings"
)

//go:embed expectations/*.txt
var expectationFiles embed.FS

// An Expectation is an engine's committed result for one catalogue scenario on the fake
// server: its status, the invariants it fails (sorted, distinct), and for a failure the
// finding it shows, in one line.
type Expectation struct {
	Scenario   string
	Status     string   // passed, failed, skipped, error, server (as reports.Status)
	Invariants []string // failed invariants and checks ("I3", "expect", "settle")
	Note       string   // the finding, for the matrix notes
}

// Line is the expectation as its file holds it.
func (e Expectation) Line() string {
	s := e.Scenario + " " + e.Status
	if len(e.Invariants) > 0 {
		s += " " + strings.Join(e.Invariants, " ")
	}
	if e.Note != "" {
		s += " -- " + e.Note
	}
	return s
}

// Same reports whether two expectations are the same result (notes aside).
func (e Expectation) Same(o Expectation) bool {
	return e.Status == o.Status && strings.Join(e.Invariants, " ") == strings.Join(o.Invariants, " ")
}

// ExpectationsPath is where the expectations of engine are kept in the repository.
func ExpectationsPath(engine string) string {
	return "clients/external/expectations/" + engine + ".txt"
}

// BuiltinExpectations returns the committed expectations of a built-in engine, by scenario.
func BuiltinExpectations(engine string) (map[string]Expectation, error) {
	f, err := expectationFiles.Open("expectations/" + engine + ".txt")
	if err != nil {
		return nil, fmt.Errorf("no expectations for engine %q", engine)
	}
	defer f.Close()
	return ParseExpectations(engine+".txt", f)
}

// ParseExpectations reads an expectations file: one line a scenario, "NAME STATUS
// [INVARIANT…] [-- NOTE]"; "#" starts a comment line.
func ParseExpectations(file string, r io.Reader) (map[string]Expectation, error) {
	out := map[string]Expectation{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		head, note, _ := strings.Cut(line, " -- ")
		fields := strings.Fields(head)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: want NAME STATUS [INVARIANT…] [-- NOTE]", file, n)
		}
		switch fields[1] {
		case "passed", "failed", "skipped", "error", "server":
		default:
			return nil, fmt.Errorf("%s:%d: unknown status %q", file, n, fields[1])
		}
		if _, dup := out[fields[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", file, n, fields[0])
		}
		out[fields[0]] = Expectation{Scenario: fields[0], Status: fields[1], Invariants: fields[2:], Note: strings.TrimSpace(note)}
	}
	return out, sc.Err()
}

// WriteExpectations writes expectations in file order (by scenario name) under a header.
func WriteExpectations(w io.Writer, header string, exp map[string]Expectation) error {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		b.WriteString("# " + l + "\n")
	}
	names := make([]string, 0, len(exp))
	for n := range exp {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString(exp[n].Line() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
