package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

const concurrentScenario = `# Three devices change the same messages and sync at the same time, twice.
devices phone laptop tablet
mailbox Archive
deliver INBOX m1 m2 m3 m4
sync
phone read INBOX m1 m2
laptop move INBOX m1 Archive
tablet flag INBOX m2 \Flagged
concurrently
  phone sync
  laptop sync
  tablet sync
  server deliver INBOX m5
end
phone delete INBOX m3
laptop unread INBOX m2
concurrently
  phone sync
  laptop sync
  tablet sync
end
`

// trace is everything of a run that must not change from one run to the next with the same
// seed: the history, every transcript and the interleaving.
func trace(res *harness.Result) string {
	var b strings.Builder
	for _, op := range res.History {
		j, err := json.Marshal(op)
		Expect(err).NotTo(HaveOccurred())
		b.Write(j)
		b.WriteByte('\n')
	}
	for _, dev := range []string{"phone", "laptop", "tablet"} {
		for _, l := range res.Transcripts[dev] {
			fmt.Fprintf(&b, "%s %d %s\n", dev, l.Conn, l)
		}
	}
	b.WriteString(strings.Join(res.Interleaving, "\n"))
	return b.String()
}

var _ = Describe("Deterministic interleaving", func() {
	var scn *scenarios.Scenario
	BeforeEach(func() {
		var err error
		scn, err = scenarios.Parse("gate_concurrent.scn", []byte(concurrentScenario))
		Expect(err).NotTo(HaveOccurred())
	})

	It("gives the same history and transcripts, byte for byte, in 20 runs with one seed", func(ctx SpecContext) {
		var first string
		for i := range 20 {
			res := harness.RunScenario(ctx, scn, harness.Options{Seed: 7})
			Expect(res.Report.Status).To(Equal(reports.Passed), res.Report.Error)
			Expect(res.GateFallbacks).To(BeZero())
			Expect(res.Interleaving).NotTo(BeEmpty())
			t := trace(res)
			if i == 0 {
				first = t
				continue
			}
			Expect(t).To(Equal(first), "run %d differs from run 1", i+1)
		}
	})

	It("interleaves concurrent devices differently with different seeds", func(ctx SpecContext) {
		seen := map[string]bool{}
		for seed := range int64(4) {
			res := harness.RunScenario(ctx, scn, harness.Options{Seed: seed})
			Expect(res.Report.Status).To(Equal(reports.Passed), res.Report.Error)
			seen[strings.Join(res.Interleaving, "\n")] = true
		}
		Expect(len(seen)).To(BeNumerically(">=", 2))
	})

	It("uses a logical clock for transcript times", func(ctx SpecContext) {
		res := harness.RunScenario(ctx, scn, harness.Options{Seed: 3})
		for _, l := range res.Transcripts["phone"] {
			Expect(l.Time % time.Millisecond).To(BeZero())
		}
	})
})

var _ = Describe("The scheduler", func() {
	var s *harness.Scheduler
	BeforeEach(func() {
		s = harness.NewScheduler(harness.SchedulerOptions{Seed: 1, Stall: time.Hour})
	})

	wait := func(ctx context.Context, device, command string) <-chan error {
		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			done <- s.Wait(ctx, device, command)
		}()
		return done
	}

	It("lets a command of an inactive device pass at once", func(ctx SpecContext) {
		Expect(s.Wait(ctx, "phone", "a1 NOOP")).To(Succeed())
		Expect(s.Order()).To(BeEmpty())
	})

	It("holds a command until every active device waits, then releases one", func(ctx SpecContext) {
		s.Enter("phone")
		s.Enter("laptop")
		phone := wait(ctx, "phone", "a1 NOOP")
		Consistently(phone, "50ms").ShouldNot(Receive())
		laptop := wait(ctx, "laptop", "b1 NOOP")
		Eventually(func() int { return len(s.Order()) }).Should(Equal(1))
		// The released device is running again: the other still waits until it comes back
		// or leaves.
		if s.Order()[0] == "phone: a1 NOOP" {
			Expect(<-phone).To(Succeed())
			Consistently(laptop, "50ms").ShouldNot(Receive())
			s.Leave("phone")
			Expect(<-laptop).To(Succeed())
		} else {
			Expect(<-laptop).To(Succeed())
			Consistently(phone, "50ms").ShouldNot(Receive())
			s.Leave("laptop")
			Expect(<-phone).To(Succeed())
		}
	})

	It("does not count a device in IDLE until its next command", func(ctx SpecContext) {
		s.Enter("phone")
		Expect(s.Wait(ctx, "phone", "a1 IDLE")).To(Succeed())
		s.Enter("laptop")
		// The phone idles: the laptop alone is running, so its command goes.
		Expect(s.Wait(ctx, "laptop", "b1 NOOP")).To(Succeed())
		// The phone's next command (after DONE) makes it count again.
		phone := wait(ctx, "phone", "a2 NOOP")
		Consistently(phone, "50ms").ShouldNot(Receive())
		s.Leave("laptop")
		Eventually(phone).Should(Receive(Succeed()))
	})

	It("releases a stalled wait after the stall bound and counts the fallback", func(ctx SpecContext) {
		s = harness.NewScheduler(harness.SchedulerOptions{Seed: 1, Stall: 20 * time.Millisecond})
		s.Enter("phone")
		s.Enter("laptop") // laptop never reaches the gate
		Expect(s.Wait(ctx, "phone", "a1 NOOP")).To(Succeed())
		Expect(s.Fallbacks()).To(Equal(1))
	})

	It("counts a watcher that is not quiet as active, outside any block, until it is quiet", func(ctx SpecContext) {
		var quiet atomic.Bool
		s.SetWatcher("phone", quiet.Load)
		s.Enter("laptop")
		// The server woke the phone: the laptop's command waits for the phone's round.
		laptop := wait(ctx, "laptop", "b1 NOOP")
		Consistently(laptop, "50ms").ShouldNot(Receive())
		// The phone's round command waits too (it is active), then one of the two goes.
		phone := wait(ctx, "phone", "a1 NOOP")
		Eventually(func() int { return len(s.Order()) }).Should(Equal(1))
		first := s.Order()[0]
		Expect(first).To(BeElementOf("phone: a1 NOOP", "laptop: b1 NOOP"))
		if first == "laptop: b1 NOOP" {
			Expect(<-laptop).To(Succeed())
			s.Leave("laptop")
			Expect(<-phone).To(Succeed())
			return
		}
		Expect(<-phone).To(Succeed())
		// The phone's round is over once it idles quietly again; until then the laptop waits.
		Consistently(laptop, "50ms").ShouldNot(Receive())
		quiet.Store(true)
		s.Poke()
		Eventually(laptop).Should(Receive(Succeed()))
	})

	It("lets a quiet watcher's commands pass and never waits for it", func(ctx SpecContext) {
		s.SetWatcher("phone", func() bool { return true })
		s.Enter("laptop")
		Expect(s.Wait(ctx, "laptop", "b1 NOOP")).To(Succeed())
		Expect(s.Wait(ctx, "phone", "a1 NOOP")).To(Succeed())
		Expect(s.Order()).To(Equal([]string{"laptop: b1 NOOP"}))
	})

	It("notices without a Poke that a watcher became quiet", func(ctx SpecContext) {
		var quiet atomic.Bool
		s.SetWatcher("phone", quiet.Load)
		s.Enter("laptop")
		laptop := wait(ctx, "laptop", "b1 NOOP")
		Consistently(laptop, "30ms").ShouldNot(Receive())
		quiet.Store(true)
		Eventually(laptop).Should(Receive(Succeed()))
		Expect(s.Fallbacks()).To(BeZero())
	})

	It("returns the context's error when the connection ends while waiting", func() {
		s.Enter("phone")
		s.Enter("laptop")
		ctx, cancel := context.WithCancel(context.Background())
		phone := wait(ctx, "phone", "a1 NOOP")
		cancel()
		Eventually(phone).Should(Receive(MatchError(context.Canceled)))
	})
})

var _ = Describe("The scheduler with one device in two threads", func() {
	It("does not wait for the second thread of a device that already has a command waiting", func(ctx SpecContext) {
		s := harness.NewScheduler(harness.SchedulerOptions{Seed: 1, Stall: time.Hour})
		s.Enter("phone")
		s.Enter("phone") // the same device twice in one block; one thread is blocked elsewhere
		Expect(s.Wait(ctx, "phone", "a1 NOOP")).To(Succeed())
		Expect(s.Fallbacks()).To(BeZero())
	})
})

var _ = Describe("A concurrently block naming one device twice", func() {
	It("runs without stalling the gate", func(ctx SpecContext) {
		scn, err := scenarios.Parse("gate_twice.scn", []byte("devices phone laptop\ndeliver INBOX m1 m2\nsync\n"+
			"phone read INBOX m1\nconcurrently\n  phone sync\n  phone sync\n  laptop sync\nend\n"))
		Expect(err).NotTo(HaveOccurred())
		res := harness.RunScenario(ctx, scn, harness.Options{Seed: 2})
		Expect(res.Report.Status).To(Equal(reports.Passed), res.Report.Error)
		Expect(res.GateFallbacks).To(BeZero())
	})
})
