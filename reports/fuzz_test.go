package reports_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/syncharness/syncharness/reports"
)

// FuzzReadJSON: ReadJSON never panics, and whatever it accepts is a fixed point of writing
// and reading again.
func FuzzReadJSON(f *testing.F) {
	var golden bytes.Buffer
	if err := reports.WriteJSON(&golden, sampleRun()); err != nil {
		f.Fatal(err)
	}
	f.Add(golden.Bytes())
	f.Add([]byte(`{"schema_version": 1, "duration_ms": 1.5e-3, "scenarios": [{"status": "passed"}]}`))
	f.Add([]byte(`{"schema_version": 1, "started": "2026-01-02T03:04:05.000000001+01:00"}`))
	f.Add([]byte(`{"schema_version": 1, "scenarios": [{"status": "failed", "failures": [{"table": {"rows": [[]]}}]}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		r, err := reports.ReadJSON(bytes.NewReader(doc))
		if err != nil {
			return
		}
		var first bytes.Buffer
		if err := reports.WriteJSON(&first, r); err != nil {
			t.Fatalf("a run ReadJSON accepted does not write: %v", err)
		}
		back, err := reports.ReadJSON(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("WriteJSON wrote what ReadJSON refuses: %v\n%s", err, first.Bytes())
		}
		var second bytes.Buffer
		if err := reports.WriteJSON(&second, back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("not a fixed point:\n%s\n%s", first.Bytes(), second.Bytes())
		}
	})
}

// FuzzWriters: whatever text a scenario holds, the plain text report holds no escape
// sequence or carriage return and the JUnit report is well-formed XML.
func FuzzWriters(f *testing.F) {
	f.Add("m1 is twice in Archive", "* OK \x1b[2J done", "]]>", "\xff\xfe")
	f.Add("", "", "", "")
	f.Add("line\nline\r\n", "\u009b31m", "<a href=\"x\">&amp;", "\uFFFE\U0010FFFF")
	f.Fuzz(func(t *testing.T, message, transcript, name, reason string) {
		r := sampleRun()
		s := r.Scenarios[1]
		s.Name = name
		s.Failures[0].Message = message
		s.Failures[0].Table.Rows[0][0] = message
		s.Transcript[0].Text = transcript
		s.Steps[0].Error = transcript
		r.Scenarios[2].SkipReason = reason
		r.Scenarios[3].Error = reason
		for _, verbose := range []bool{false, true} {
			var text bytes.Buffer
			if err := reports.WriteText(&text, r, reports.TextOptions{Verbose: verbose}); err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(text.String(), "\x1b\r\u009b") {
				t.Fatalf("plain text holds a control sequence: %q", text.String())
			}
		}
		var junit bytes.Buffer
		if err := reports.WriteJUnit(&junit, r); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&junit)
		dec.Strict = true
		for {
			_, err := dec.Token()
			if err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("JUnit is not well-formed: %v", err)
			}
		}
	})
}
