package explore

import (
	"fmt"
	"strings"

	"github.com/syncharness/syncharness/scenarios"
)

// A script is a generated scenario in a form that is easy to cut down: setup lines, then
// top-level items, each a line or a concurrently block of lines. Every line is a list of
// words, so removing a label or a device is a matter of removing words.
type script struct {
	header []string // comment lines, without "# "
	setup  [][]string
	items  []*item
}

// An item is one step line, a concurrently block (block true, body its lines), or a group
// of plain lines that only make sense together (group true, body its lines): the shrinker
// keeps or removes a group whole.
type item struct {
	words []string
	block bool
	group bool
	body  [][]string
}

func (s *script) clone() *script {
	c := &script{header: append([]string(nil), s.header...)}
	for _, l := range s.setup {
		c.setup = append(c.setup, append([]string(nil), l...))
	}
	for _, it := range s.items {
		c.items = append(c.items, it.clone())
	}
	return c
}

func (it *item) clone() *item {
	c := &item{words: append([]string(nil), it.words...), block: it.block, group: it.group}
	for _, l := range it.body {
		c.body = append(c.body, append([]string(nil), l...))
	}
	return c
}

// steps counts the step lines of the script after the setup (a block counts its lines).
func (s *script) steps() int {
	n := 0
	for _, it := range s.items {
		if it.block || it.group {
			n += len(it.body)
		} else {
			n++
		}
	}
	return n
}

// text renders the script as scenario source.
func (s *script) text() string {
	var b strings.Builder
	for _, h := range s.header {
		b.WriteString("# " + h + "\n")
	}
	for _, l := range s.setup {
		b.WriteString(strings.Join(l, " ") + "\n")
	}
	for _, it := range s.items {
		if it.group {
			for _, l := range it.body {
				b.WriteString(strings.Join(l, " ") + "\n")
			}
			continue
		}
		if !it.block {
			b.WriteString(strings.Join(it.words, " ") + "\n")
			continue
		}
		b.WriteString("concurrently\n")
		for _, l := range it.body {
			b.WriteString("  " + strings.Join(l, " ") + "\n")
		}
		b.WriteString("end\n")
	}
	return b.String()
}

// parse turns the script into a checked scenario named name. A script whose lines do not
// pass the language's checks is an error.
func (s *script) parse(name string) (*scenarios.Scenario, error) {
	scn, err := scenarios.Parse(name+".scn", []byte(s.text()))
	if err != nil {
		return nil, fmt.Errorf("explore: generated scenario %s: %w", name, err)
	}
	return scn, nil
}

// lineItem maps a source line number of text() to the item (index into items) and the
// line inside a block (-1 for the block line or a single line); setup lines map to item -1.
func (s *script) lineItem(line int) (itemIdx, bodyIdx int) {
	n := len(s.header) + len(s.setup)
	if line <= n {
		return -1, -1
	}
	for i, it := range s.items {
		if it.group {
			if line > n && line <= n+len(it.body) {
				return i, -1 // a group goes whole
			}
			n += len(it.body)
			continue
		}
		if !it.block {
			n++
			if line == n {
				return i, -1
			}
			continue
		}
		start := n + 1
		n += len(it.body) + 2
		if line >= start && line <= n {
			b := line - start - 1
			if b < 0 || b >= len(it.body) {
				return i, -1
			}
			return i, b
		}
	}
	return -1, -1
}

// repair drops the lines the language's checks reject, until the script parses (or gives
// up after a bounded number of passes).
func (s *script) repair(name string) (*scenarios.Scenario, error) {
	var last error
	for range 20 {
		scn, err := scenarios.Parse(name+".scn", []byte(s.text()))
		if err == nil {
			return scn, nil
		}
		last = err
		list, ok := err.(scenarios.ErrorList)
		if !ok || len(list) == 0 {
			return nil, err
		}
		drop := map[[2]int]bool{}
		for _, e := range list {
			i, b := s.lineItem(e.Line)
			if i < 0 {
				return nil, fmt.Errorf("explore: generated setup of %s: %w", name, err)
			}
			drop[[2]int{i, b}] = true
		}
		var items []*item
		for i, it := range s.items {
			if drop[[2]int{i, -1}] {
				continue
			}
			if it.block {
				var body [][]string
				for b, l := range it.body {
					if !drop[[2]int{i, b}] {
						body = append(body, l)
					}
				}
				if len(body) == 0 {
					continue
				}
				it.body = body
			}
			items = append(items, it)
		}
		s.items = items
	}
	return nil, fmt.Errorf("explore: generated scenario %s does not check: %w", name, last)
}
