package scenarios

import (
	"fmt"
	"sort"
	"strings"
)

// An Error is one problem in a scenario file, at a line, in a command.
type Error struct {
	File    string // the path given to Parse
	Line    int    // 1-based line of the script; 0 when the error is about the whole file
	Command string // the command the line runs ("move", "expect"), "" if it has none
	Msg     string

	fatal bool // the file is rejected as a whole: no semantic checks follow
}

// Error returns `file.scn:12: move: unknown mailbox "Arhive"`, or `file.scn: not a text
// file (binary data at byte 3)` for an error about the whole file.
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	if e.Command == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Command, e.Msg)
}

// An ErrorList is every problem found in one or more files, in file and line order.
type ErrorList []*Error

// Error returns all errors, one a line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortErrors orders l by file, then line, keeping the order of errors on one line.
func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].File != l[j].File {
			return l[i].File < l[j].File
		}
		return l[i].Line < l[j].Line
	})
}
