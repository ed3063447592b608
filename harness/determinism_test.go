package harness_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/harness/proxy"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// cpuHog keeps every core busy until the spec ends, so that goroutines are scheduled late
// and in unusual orders: a run whose order depended on timing would show it here.
func cpuHog() {
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for !stop.Load() {
				for range 1 << 12 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	DeferCleanup(func() {
		stop.Store(true)
		wg.Wait()
	})
}

// replay is what must be the same in two runs of one seed: the history, every device's
// transcript with its logical times, and the scheduler's order.
func replay(res *harness.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %s\n", res.Report.Status)
	for _, op := range res.History {
		fmt.Fprintf(&b, "op %+v\n", op)
	}
	for _, d := range res.Report.Devices {
		for _, l := range res.Transcripts[d] {
			fmt.Fprintf(&b, "%s %d %s\n", d, l.Conn, l)
		}
	}
	for _, o := range res.Interleaving {
		fmt.Fprintf(&b, "order %s\n", o)
	}
	for _, s := range res.Report.Steps {
		fmt.Fprintf(&b, "step %d %s %s\n", s.Line, s.Start, s.Duration)
	}
	return b.String()
}

// firstDiff shows where two replays part: the lines before and the first differing one.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			from := max(0, i-8)
			return fmt.Sprintf("context:\n%s\nfirst run:  %s\nsecond run: %s",
				strings.Join(la[from:i], "\n"), la[i], lb[i])
		}
	}
	return fmt.Sprintf("one is longer: %d and %d lines", len(la), len(lb))
}

func runTwice(ctx context.Context, scn *scenarios.Scenario, seed int64) (string, string) {
	opts := harness.Options{Seed: seed}
	first := harness.RunScenario(ctx, scn, opts)
	second := harness.RunScenario(ctx, scn, opts)
	Expect(first.GateFallbacks).To(BeZero(), "%s: the scheduler gave up waiting", scn.Name)
	Expect(second.GateFallbacks).To(BeZero(), "%s: the scheduler gave up waiting", scn.Name)
	return replay(first), replay(second)
}

var _ = Describe("Deterministic push under load", Label("determinism"), Serial, func() {
	It("replays every push scenario of the catalogue byte for byte while every core is busy", func(ctx SpecContext) {
		list, err := harness.Catalog()
		Expect(err).NotTo(HaveOccurred())
		cpuHog()
		n := 0
		for _, scn := range list {
			if !strings.HasPrefix(scn.Name, "push_") {
				continue
			}
			n++
			a, b := runTwice(ctx, scn, 4242)
			Expect(a).To(ContainSubstring("status passed"), scn.Name)
			Expect(b == a).To(BeTrue(), "%s: %s", scn.Name, firstDiff(a, b))
		}
		Expect(n).To(BeNumerically(">=", 5))
	}, SpecTimeout(10*60e9))

	It("replays generated scenarios with push steps byte for byte while every core is busy", func(ctx SpecContext) {
		want := 3
		if v := os.Getenv("SYNCHARNESS_DETERMINISM_RUNS"); v != "" {
			n, err := strconv.Atoi(v)
			Expect(err).NotTo(HaveOccurred(), "SYNCHARNESS_DETERMINISM_RUNS")
			want = n
		}
		cpuHog()
		found := 0
		for i := 1; found < want && i <= 100*want; i++ {
			scn, err := explore.Generate(4242, i, explore.GenOptions{})
			Expect(err).NotTo(HaveOccurred())
			if !strings.Contains(string(scn.Source), " watch ") {
				continue
			}
			found++
			a, b := runTwice(ctx, scn, 4242)
			Expect(b == a).To(BeTrue(), "%s: %s\n%s", scn.Name, firstDiff(a, b), scn.Source)
		}
		Expect(found).To(Equal(want), "the generator wrote too few scenarios with push steps")
	}, SpecTimeout(10*60e9))

	It("ends a watch with DONE and its answer, never by closing the connection under the DONE", func(ctx SpecContext) {
		list, err := harness.Catalog()
		Expect(err).NotTo(HaveOccurred())
		for _, scn := range list {
			if !strings.HasPrefix(scn.Name, "push_") {
				continue
			}
			res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1})
			for dev, lines := range res.Transcripts {
				// The device's last IDLE connection ends when the scenario stops the watch.
				lastIdle := 0
				for _, l := range lines {
					if l.Dir == 'C' && strings.HasSuffix(l.Text, " IDLE") {
						lastIdle = l.Conn
					}
				}
				if lastIdle == 0 {
					continue
				}
				var tail []string
				for _, l := range lines {
					if l.Conn == lastIdle {
						tail = append(tail, string(l.Dir)+" "+l.Text)
					}
				}
				tail = tail[max(0, len(tail)-2):]
				Expect(tail).To(HaveLen(2))
				Expect(tail[0]).To(Equal("C DONE"), "%s %s", scn.Name, dev)
				Expect(tail[1]).To(MatchRegexp(`^S \S+ OK `), "%s %s", scn.Name, dev)
			}
		}
	})

	It("reports a push wait on the logical clock, not as no wait at all", func(ctx SpecContext) {
		scn, err := scenarios.Parse("wait.scn", []byte(`# push wait
devices phone laptop
deliver INBOX m1
sync
phone watch INBOX
server deliver INBOX m2
expect phone INBOX m1 m2 within=5s
phone unwatch
`))
		Expect(err).NotTo(HaveOccurred())
		res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1})
		Expect(res.Report.Status).To(Equal(reports.Passed))
		var wait *reports.Step
		for i, s := range res.Report.Steps {
			if s.Line == 7 {
				wait = &res.Report.Steps[i]
			}
		}
		Expect(wait).NotTo(BeNil())
		Expect(wait.Duration).To(BeNumerically(">", 0), "the expectation waited for the phone's round")
	})

	It("dates a line pushed to an idling device by the step that made the change, not by when the proxy read it", func(ctx SpecContext) {
		// The expectations start at once (within=), each a tick later: a pushed line dated
		// when the proxy happened to read it could fall in any of them.
		scn, err := scenarios.Parse("dated.scn", []byte(`# dated push
devices phone tablet laptop
mailbox Archive
deliver INBOX m1
sync
phone watch INBOX
tablet watch INBOX
server deliver INBOX m2
expect laptop INBOX m1 within=5s
expect laptop INBOX m1 within=5s
expect phone INBOX m1 m2 within=5s
expect tablet INBOX m1 m2 within=5s
laptop move INBOX m1 Archive
laptop sync
expect phone INBOX m2 within=5s
expect tablet INBOX m2 within=5s
phone unwatch
tablet unwatch
`))
		Expect(err).NotTo(HaveOccurred())
		for run := 0; run < 3; run++ {
			res := harness.RunScenario(ctx, scn, harness.Options{Seed: int64(run + 1)})
			Expect(res.Report.Status).To(Equal(reports.Passed), res.Report.Error)
			var deliverFrom, deliverTo time.Duration
			for _, s := range res.Report.Steps {
				if s.Line == 8 {
					deliverFrom, deliverTo = s.Start, s.Start+s.Duration
				}
			}
			// The laptop's MOVE, from the command to its answer: the change the EXPUNGE reports.
			var moveFrom, moveTo time.Duration
			moveTag := ""
			for _, l := range res.Transcripts["laptop"] {
				tag, rest, _ := strings.Cut(l.Text, " ")
				switch {
				case l.Dir == 'C' && strings.Contains(rest, "MOVE "):
					moveFrom, moveTag = l.Time, tag
				case l.Dir == 'S' && moveTag != "" && tag == moveTag:
					moveTo = l.Time
				}
			}
			Expect(moveTo).To(BeNumerically(">", deliverTo))
			for _, dev := range []string{"phone", "tablet"} {
				var exists, expunge []time.Duration
				for _, l := range pushedLines(res.Transcripts[dev]) {
					switch {
					case l.Text == "* 2 EXISTS":
						exists = append(exists, l.Time)
					case strings.HasSuffix(l.Text, " EXPUNGE"):
						expunge = append(expunge, l.Time)
					}
				}
				Expect(exists).To(HaveLen(1), dev)
				Expect(exists[0]).To(BeBetween(deliverFrom, deliverTo), "%s: the EXISTS of m2's delivery", dev)
				Expect(expunge).To(HaveLen(1), dev)
				Expect(expunge[0]).To(BeBetween(moveFrom, moveTo), "%s: the EXPUNGE of the laptop's MOVE", dev)
			}
		}
	})
})

// pushedLines returns the server's lines that arrived on a connection while it idled.
func pushedLines(lines []proxy.Line) []proxy.Line {
	idling := map[int]bool{}
	var out []proxy.Line
	for _, l := range lines {
		switch {
		case l.Dir == 'C':
			idling[l.Conn] = false
		case l.Dir == 'S' && strings.HasPrefix(l.Text, "+ "):
			idling[l.Conn] = true
		case l.Dir == 'S' && idling[l.Conn] && strings.HasPrefix(l.Text, "* "):
			out = append(out, l)
		}
	}
	return out
}

// BeBetween matches a time.Duration in [lo, hi].
func BeBetween(lo, hi time.Duration) OmegaMatcher {
	return SatisfyAll(BeNumerically(">=", lo), BeNumerically("<=", hi))
}
