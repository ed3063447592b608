package scenarios_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncharness/syncharness/scenarios"
)

// FuzzParse checks that no input makes the parser panic, that every error names the file
// and a line, and that whatever parses formats idempotently and parses again.
//
//	go test ./scenarios -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/errors/*.scn", "testdata/format/*.scn", "catalog/*.scn"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("devices phone\nphone sync \"unterminated\n"))
	f.Add([]byte("[!cap:MOVE] [fake] repeat 2\nconcurrently\nend\nend end\n-- a --\n"))
	// Limits: repeat blocks past the steps a script may run, nesting past the depth, a
	// message past the size, a binary file.
	f.Add([]byte("devices phone\nrepeat 1000\nrepeat 1000\nrepeat 1000\nphone sync\nend\nend\nend\n"))
	f.Add([]byte("devices phone\n" + strings.Repeat("repeat 1\n", 12) + "phone sync\n" + strings.Repeat("end\n", 12)))
	f.Add([]byte("devices phone\ndeliver INBOX m1 size=2000000000\n"))
	f.Add([]byte("devices phone\nphone sync\n\x00\xff"))

	const name = "fuzz.scn"
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func(string, []byte) (*scenarios.Scenario, error){scenarios.Parse, scenarios.ParseSyntax} {
			s, err := parse(name, data)
			if s == nil {
				t.Fatal("nil scenario")
			}
			if err == nil {
				continue
			}
			var list scenarios.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %#v", err)
			}
			for _, e := range list {
				if e.File != name || e.Line < 0 || e.Line == 0 && !strings.HasPrefix(e.Msg, "not a text file") {
					t.Fatalf("error without file or line: %#v", e)
				}
			}
		}
		s, err := scenarios.ParseSyntax(name, data)
		if err != nil {
			return
		}
		once := scenarios.Format(s)
		s2, err := scenarios.ParseSyntax(name, once)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, once)
		}
		if twice := scenarios.Format(s2); !bytes.Equal(once, twice) {
			t.Fatalf("format is not idempotent:\n--- once\n%s\n--- twice\n%s", once, twice)
		}
		if _, err := scenarios.Parse(name, data); err == nil {
			if _, err := scenarios.Parse(name, once); err != nil {
				t.Fatalf("a clean file is not clean after formatting: %v\n%s", err, once)
			}
		}
	})
}
