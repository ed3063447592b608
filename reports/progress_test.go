package reports_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

// screen interprets carriage returns and newlines as a terminal does and returns the lines
// visible at the end, trailing spaces trimmed.
func screen(out string) []string {
	lines := [][]rune{{}}
	col := 0
	for _, r := range out {
		cur := &lines[len(lines)-1]
		switch r {
		case '\r':
			col = 0
		case '\n':
			lines = append(lines, []rune{})
			col = 0
		default:
			if col < len(*cur) {
				(*cur)[col] = r
			} else {
				*cur = append(*cur, r)
			}
			col++
		}
	}
	var shown []string
	for _, l := range lines {
		shown = append(shown, strings.TrimRight(string(l), " "))
	}
	return shown
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, like a terminal.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = Describe("The progress line", func() {
	It("prints nothing at all when not live", func() {
		var out bytes.Buffer
		p := reports.NewProgress(&out, 2, false)
		p.Start("a")
		p.Done(&reports.Scenario{Name: "a", Status: reports.Failed})
		p.Finish()
		Expect(out.String()).To(BeEmpty())
		Expect(p.Err()).To(Succeed())
	})

	It("shows how many are done, how many failed and which run, on one line", func() {
		var out bytes.Buffer
		p := reports.NewProgress(&out, 3, true)
		p.Start("flags_a")
		p.Start("move_b")
		Expect(screen(out.String())).To(Equal([]string{"[0/3]  running: flags_a, move_b"}))
		p.Done(&reports.Scenario{Name: "flags_a", Status: reports.Passed})
		p.Start("delete_c")
		Expect(screen(out.String())).To(Equal([]string{"[1/3]  running: move_b, delete_c"}))
		p.Done(&reports.Scenario{Name: "delete_c", Status: reports.Skipped})
		Expect(screen(out.String())).To(Equal([]string{"[2/3] 1 skipped  running: move_b"}))
		Expect(out.String()).NotTo(ContainSubstring("\x1b"))
	})

	It("prints a failure above the line the moment it happens, and clears the line at the end", func() {
		var out bytes.Buffer
		p := reports.NewProgress(&out, 2, true)
		p.Start("move_concurrent_two_folders_with_a_long_name")
		p.Start("b")
		p.Done(&reports.Scenario{Name: "move_concurrent_two_folders_with_a_long_name", Status: reports.Failed, Duration: 410 * time.Millisecond})
		Expect(screen(out.String())).To(Equal([]string{
			"FAIL move_concurrent_two_folders_with_a_long_name (0.41s)",
			"[1/2] 1 failed  running: b",
		}))
		p.Done(&reports.Scenario{Name: "b", Status: reports.Errored})
		p.Finish()
		Expect(screen(out.String())).To(Equal([]string{
			"FAIL move_concurrent_two_folders_with_a_long_name (0.41s)",
			"ERROR b (0.00s)",
			"",
		}))
	})

	It("never draws a line wider than 79 columns", func() {
		var out bytes.Buffer
		p := reports.NewProgress(&out, 100, true)
		for i := range 20 {
			p.Start(fmt.Sprintf("scenario_with_a_rather_long_name_%02d", i))
			for _, l := range screen(out.String()) {
				Expect(len([]rune(l))).To(BeNumerically("<=", 79), l)
			}
		}
		Expect(screen(out.String())[0]).To(Equal("[0/100]  running: scenario_with_a_rather_long_name_00, +19"))
		p.Start(strings.Repeat("x", 120))
	})

	It("shows a single running name that is too long cut short", func() {
		var out bytes.Buffer
		p := reports.NewProgress(&out, 1, true)
		p.Start(strings.Repeat("x", 120))
		l := screen(out.String())[0]
		Expect(l).To(HavePrefix("[0/1]  running: xxx"))
		Expect(l).To(HaveSuffix("…"))
		Expect(len([]rune(l))).To(Equal(79))
	})

	It("is safe for concurrent use and counts every scenario once", func() {
		var out syncBuffer
		const workers, each = 8, 25
		p := reports.NewProgress(&out, workers*each, true)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for i := range each {
					name := fmt.Sprintf("w%d_s%d", w, i)
					p.Start(name)
					st := reports.Passed
					if i == 0 {
						st = reports.Failed
					}
					p.Done(&reports.Scenario{Name: name, Status: st})
				}
			}()
		}
		wg.Wait()
		shown := screen(out.String())
		Expect(shown[len(shown)-1]).To(Equal(fmt.Sprintf("[%d/%d] %d failed", workers*each, workers*each, workers)))
		Expect(shown).To(HaveLen(workers + 1))
		p.Finish()
		Expect(screen(out.String())[workers]).To(BeEmpty())
	})

	It("ignores calls after Finish", func() {
		var out bytes.Buffer
		p := reports.NewProgress(&out, 1, true)
		p.Finish()
		p.Finish()
		before := out.String()
		p.Start("late")
		p.Done(&reports.Scenario{Name: "late", Status: reports.Failed})
		Expect(out.String()).To(Equal(before))
	})

	It("stops writing at the first error and keeps it", func() {
		p := reports.NewProgress(failingWriter{}, 1, true)
		p.Start("a")
		p.Done(&reports.Scenario{Name: "a", Status: reports.Passed})
		Expect(p.Err()).To(MatchError(ContainSubstring("disk full")))
	})
})
