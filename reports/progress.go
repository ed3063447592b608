package reports

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// progressWidth is the widest progress line drawn, in columns, so that it fits an 80-column
// terminal without wrapping (a wrapped line cannot be redrawn with \r).
const progressWidth = 79

// Progress shows a live progress line while many scenarios run: how many are done out of the
// total, how many failed, and which are running now. A failed or errored scenario is also
// printed as a permanent "FAIL name" line above it the moment it finishes.
//
// Live progress redraws one line with carriage returns and is meant for terminals only. When
// not live, Progress prints nothing at all: the final report says everything.
//
// All methods are safe for concurrent use. Writing stops at the first error from the
// writer; Err returns it.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	live     bool
	total    int
	done     int
	failed   int
	skipped  int
	running  []string // in the order they started
	drawn    int      // columns of the line on screen now
	finished bool
	err      error
}

// NewProgress returns a Progress for total scenarios writing to w. When live is false, the
// Progress writes nothing.
func NewProgress(w io.Writer, total int, live bool) *Progress {
	return &Progress{w: w, total: total, live: live}
}

// Start records that the scenario name has started.
func (p *Progress) Start(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.running = append(p.running, name)
	p.redraw("")
}

// Done records that a scenario finished with the result s. The scenario is matched to a
// running one by name.
func (p *Progress) Done(s *Scenario) {
	if s == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.done++
	for i, n := range p.running {
		if n == s.Name {
			p.running = append(p.running[:i:i], p.running[i+1:]...)
			break
		}
	}
	var above string
	switch s.Status {
	case Failed, Errored:
		p.failed++
		word := "FAIL"
		if s.Status == Errored {
			word = "ERROR"
		}
		above = fmt.Sprintf("%s %s (%s)", word, clean(scenarioName(s)), seconds(s.Duration))
	case Skipped:
		p.skipped++
	}
	p.redraw(above)
}

// Finish clears the progress line so that the report can follow on a clean line. Later
// calls to Start and Done do nothing. Finish may be called more than once.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.live {
		p.write("\r" + strings.Repeat(" ", p.drawn) + "\r")
		p.drawn = 0
	}
}

// Err returns the first error the writer returned, if any.
func (p *Progress) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// line is the progress line: "[12/42] 1 failed, 2 skipped  running: a, b, +3".
func (p *Progress) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d/%d]", p.done, p.total)
	if p.failed > 0 {
		fmt.Fprintf(&b, " %d failed", p.failed)
	}
	if p.skipped > 0 {
		fmt.Fprintf(&b, " %d skipped", p.skipped)
	}
	if len(p.running) > 0 {
		b.WriteString("  running: ")
		head := b.String()
		names := make([]string, 0, len(p.running))
		for i, n := range p.running {
			names = append(names, clean(n))
			more := ""
			if rest := len(p.running) - i - 1; rest > 0 {
				more = fmt.Sprintf(", +%d", rest)
			}
			if width(head+strings.Join(names, ", ")+more) > progressWidth {
				names = names[:len(names)-1]
				if len(names) == 0 {
					return truncate(head+clean(n), progressWidth)
				}
				return head + strings.Join(names, ", ") + fmt.Sprintf(", +%d", len(p.running)-len(names))
			}
		}
		return head + strings.Join(names, ", ")
	}
	return truncate(b.String(), progressWidth)
}

// redraw replaces the line on screen; a non-empty above is printed on its own line first.
func (p *Progress) redraw(above string) {
	if !p.live {
		return
	}
	l := p.line()
	var b strings.Builder
	b.WriteString("\r")
	if above != "" {
		b.WriteString(above)
		if pad := p.drawn - width(above); pad > 0 {
			b.WriteString(strings.Repeat(" ", pad))
		}
		b.WriteString("\n")
		p.drawn = 0
	}
	b.WriteString(l)
	if pad := p.drawn - width(l); pad > 0 {
		b.WriteString(strings.Repeat(" ", pad) + "\r" + l)
	}
	p.drawn = width(l)
	p.write(b.String())
}

func (p *Progress) write(s string) {
	if p.err != nil {
		return
	}
	if _, err := io.WriteString(p.w, s); err != nil {
		p.err = fmt.Errorf("reports: progress: %w", err)
	}
}
