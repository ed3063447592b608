package proxy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// testGate records every call and holds or refuses commands that contain a given word.
type testGate struct {
	hold    string        // commands containing this wait for release
	refuse  string        // commands containing this are refused
	release chan struct{} // closed to let held commands go

	mu       sync.Mutex
	calls    []string // "device: command"
	returned []error  // what Wait returned for held commands
}

func newTestGate() *testGate { return &testGate{release: make(chan struct{})} }

func (g *testGate) Wait(ctx context.Context, device, command string) error {
	g.mu.Lock()
	g.calls = append(g.calls, device+": "+command)
	g.mu.Unlock()
	if g.refuse != "" && strings.Contains(command, g.refuse) {
		return errors.New("refused by the test")
	}
	if g.hold == "" || !strings.Contains(command, g.hold) {
		return nil
	}
	var err error
	select {
	case <-g.release:
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	g.returned = append(g.returned, err)
	g.mu.Unlock()
	return err
}

func (g *testGate) Calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

func (g *testGate) Returned() []error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]error(nil), g.returned...)
}

// noopAsync starts a NOOP and returns a channel that gets its result.
func noopAsync(c *imapclient.Client) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		done <- c.Noop().Wait()
	}()
	return done
}

var _ = Describe("Gate", func() {
	It("is asked once per command, not for literals, continuation lines or DONE", func() {
		gate := newTestGate()
		p := startProxy(startServer(serverOptions{}), gate)
		c := dialClient(p, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		appendMessage(c, "INBOX", testMessage("m1", 10<<10), imap.FlagSeen)
		idle, err := c.Idle()
		Expect(err).NotTo(HaveOccurred())
		Expect(idle.Close()).To(Succeed())
		Expect(idle.Wait()).To(Succeed())
		Expect(c.Noop().Wait()).To(Succeed())

		Expect(gate.Calls()).To(Equal([]string{
			`phone: T1 LOGIN "alice" [REDACTED]`,
			"phone: T2 SELECT INBOX",
			`phone: T3 APPEND INBOX (\Seen) " 2-Jan-2026 03:04:05 +0000" {10298 bytes}`,
			"phone: T4 IDLE",
			"phone: T5 NOOP",
		}))
		Expect(p.Commands()).To(Equal(5))
	})

	It("holds a command until it is released", func() {
		gate := newTestGate()
		gate.hold = "NOOP"
		p := startProxy(startServer(serverOptions{}), gate)
		c := dialClient(p, nil)

		done := noopAsync(c)
		Eventually(gate.Calls).Should(ContainElement("phone: T2 NOOP"))
		Consistently(done, 200*time.Millisecond).ShouldNot(Receive())
		Expect(texts(p, 'C')).NotTo(ContainElement("T2 NOOP"), "not forwarded while held")
		Expect(p.Commands()).To(Equal(1))

		close(gate.release)
		Eventually(done).Should(Receive(BeNil()))
		Expect(p.Commands()).To(Equal(2))
	})

	It("cuts the connection when it refuses a command", func() {
		gate := newTestGate()
		gate.refuse = "NOOP"
		p := startProxy(startServer(serverOptions{}), gate)
		c := dialClient(p, nil)

		Expect(c.Noop().Wait()).NotTo(Succeed())
		Eventually(c.Closed()).Should(BeClosed())
		Expect(p.Commands()).To(Equal(1))
		Expect(texts(p, '*')).To(ContainElement(`connection 1 cut by the gate before "T2 NOOP": refused by the test`))
	})

	It("lets go of a held command when its connection is dropped", func() {
		gate := newTestGate()
		gate.hold = "NOOP"
		p := startProxy(startServer(serverOptions{}), gate)
		c := dialClient(p, nil)

		done := noopAsync(c)
		Eventually(gate.Calls).Should(ContainElement("phone: T2 NOOP"))
		p.Drop()
		Eventually(gate.Returned).Should(ConsistOf(MatchError(context.Canceled)))
		Eventually(done).Should(Receive(HaveOccurred()))
	})
})
