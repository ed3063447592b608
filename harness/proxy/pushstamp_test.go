package proxy_test

import (
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

// idleAnswer scripts a server that pushes changes while the client idles, and tells of
// others in a NOOP's answer.
func idleAnswer(line string) []string {
	tag, rest, _ := strings.Cut(line, " ")
	switch {
	case line == "DONE":
		return []string{"a2 OK IDLE done"}
	case rest == "IDLE":
		return []string{"+ idling", "* 3 EXISTS", `* 1 FETCH (FLAGS (\Seen))`, "* OK still here", "* 2 EXPUNGE"}
	case rest == "NOOP":
		return []string{"* 4 EXISTS", tag + " OK done"}
	}
	return []string{tag + " BAD unexpected"}
}

// stepClock is a logical clock that moves 10 ms on at every reading.
type stepClock struct {
	mu  sync.Mutex
	now time.Duration
}

func (c *stepClock) read() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += 10 * time.Millisecond
	return c.now
}

var _ = Describe("Dating pushed lines (Options.PushStamp)", func() {
	It("dates what the server pushes during IDLE by the change, never before the connection's previous line", func() {
		clock := &stepClock{}
		var (
			mu    sync.Mutex
			asked []string
		)
		p, err := proxy.New(proxy.Options{
			Name:     "phone",
			Upstream: dialer(startScripted("* OK ready", idleAnswer)),
			Clock:    clock.read,
			PushStamp: func(upstream string) (time.Duration, bool) {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, upstream)
				switch len(asked) {
				case 1:
					return time.Millisecond, true // before the IDLE began: kept after its "+"
				case 2:
					return clock.read() - 5*time.Millisecond, true // no reading of the clock gives it
				}
				return 0, false // the server did not date it: the clock does
			},
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)

		rc, _ := dialRaw(p)
		rc.send("a1 NOOP")
		rc.until("a1 ")
		rc.send("a2 IDLE")
		rc.until("* 2 EXPUNGE")
		idling := p.Idling()
		Expect(idling).To(HaveLen(1))
		rc.send("DONE")
		rc.until("a2 ")

		at := map[string]time.Duration{}
		for _, l := range p.Transcript() {
			at[l.Text] = l.Time
		}
		Expect(at["* 3 EXISTS"]).To(Equal(at["+ idling"]))
		Expect(at[`* 1 FETCH (FLAGS (\Seen))`]%(10*time.Millisecond)).To(Equal(5*time.Millisecond), "dated by PushStamp")
		Expect(at["* 2 EXPUNGE"]%(10*time.Millisecond)).To(BeZero(), "dated by the clock")
		Expect(at["* 2 EXPUNGE"]).To(BeNumerically(">", at[`* 1 FETCH (FLAGS (\Seen))`]))
		mu.Lock()
		defer mu.Unlock()
		Expect(asked).To(Equal([]string{idling[0].Upstream, idling[0].Upstream, idling[0].Upstream}),
			"asked for the three lines about changes in IDLE only: not the NOOP's, not * OK")
		var order []string
		for _, l := range p.Transcript() {
			order = append(order, l.Text)
		}
		Expect(order).To(HaveExactElements(`* OK ready`, `a1 NOOP`, `* 4 EXISTS`, `a1 OK done`, `a2 IDLE`, `+ idling`, `* 3 EXISTS`,
			`* 1 FETCH (FLAGS (\Seen))`, `* OK still here`, `* 2 EXPUNGE`, `DONE`, `a2 OK IDLE done`))
	})

	It("is not asked without a clock", func() {
		asked := make(chan string, 10)
		p, err := proxy.New(proxy.Options{
			Name:      "phone",
			Upstream:  dialer(startScripted("* OK ready", idleAnswer)),
			PushStamp: func(upstream string) (time.Duration, bool) { asked <- upstream; return 0, false },
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		rc, _ := dialRaw(p)
		rc.send("a2 IDLE")
		rc.until("* 2 EXPUNGE")
		rc.send("DONE")
		rc.until("a2 ")
		Expect(asked).To(BeEmpty())
	})
})
