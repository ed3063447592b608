package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

// boxes returns INBOX and box1…boxN.
func boxes(n int) []string {
	names := []string{"INBOX"}
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("box%d", i))
	}
	return names
}

var _ = Describe("Drop", func() {
	It("cuts every open connection at once and lets new ones in", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c1, c2 := dialClient(p, nil), dialClient(p, nil)

		p.Drop()
		Eventually(c1.Closed()).Should(BeClosed())
		Eventually(c2.Closed()).Should(BeClosed())
		Expect(c1.Noop().Wait()).NotTo(Succeed())

		c3 := dialClient(p, nil)
		Expect(c3.Noop().Wait()).To(Succeed())
		Expect(p.Events()).To(ContainElement(HaveField("Text", "connection 1 dropped")))
	})
})

var _ = Describe("Offline", func() {
	It("cuts open connections, refuses new ones at once, and lets them in again when back online", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)

		p.SetOffline(true)
		Eventually(c.Closed()).Should(BeClosed())

		start := time.Now()
		_, err := p.Dial(context.Background())
		Expect(err).To(MatchError(proxy.ErrOffline))
		Expect(err.Error()).To(ContainSubstring(`"phone"`))
		Expect(time.Since(start)).To(BeNumerically("<", 100*time.Millisecond))

		// A connection made around Dial is accepted and closed without a greeting.
		raw, err := net.Dial("tcp", p.Addr())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(raw.Close)
		Expect(raw.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		_, err = bufio.NewReader(raw).ReadString('\n')
		Expect(err).To(HaveOccurred())
		Expect(err).NotTo(MatchError(os.ErrDeadlineExceeded))

		p.SetOffline(false)
		c2 := dialClient(p, nil)
		Expect(c2.Noop().Wait()).To(Succeed())
	})
})

var _ = Describe("CutAfter", func() {
	var (
		addr string
		p    *proxy.Proxy
		c    *imapclient.Client
	)
	BeforeEach(func() {
		addr = startServer(serverOptions{})
		p = startProxy(addr, nil)
		c = dialClient(p, nil)
	})

	DescribeTable("forwards the next n commands and cuts the connection before command n+1 reaches the server",
		func(n int) {
			base := p.Commands()
			p.CutAfter(n)
			cut := p.Cut()
			for i := 1; i <= n; i++ {
				Expect(c.Create(fmt.Sprintf("box%d", i), nil).Wait()).To(Succeed())
			}
			Expect(cut).NotTo(BeClosed())
			Expect(c.Create(fmt.Sprintf("box%d", n+1), nil).Wait()).NotTo(Succeed())
			Eventually(c.Closed()).Should(BeClosed())
			Expect(cut).To(BeClosed())
			Expect(p.Commands()).To(Equal(base + n))
			Expect(mailboxes(addr)).To(ConsistOf(boxes(n)))
		},
		Entry("n=1", 1),
		Entry("n=2", 2),
		Entry("n=3", 3),
		Entry("n=4", 4),
		Entry("n=5", 5),
	)

	It("disarms with n=0: nothing is cut", func() {
		p.CutAfter(2)
		p.CutAfter(0)
		for i := 1; i <= 5; i++ {
			Expect(c.Create(fmt.Sprintf("box%d", i), nil).Wait()).To(Succeed())
		}
		Expect(p.Cut()).NotTo(BeClosed())
		Expect(mailboxes(addr)).To(ConsistOf(boxes(5)))
	})

	It("with CutAfterOffline, goes offline as the cut fires, until it is back online", func() {
		p.CutAfterOffline(2)
		Expect(c.Create("box1", nil).Wait()).To(Succeed())
		Expect(c.Create("box2", nil).Wait()).To(Succeed())
		Expect(c.Create("box3", nil).Wait()).NotTo(Succeed())
		Expect(p.Cut()).To(BeClosed())
		_, err := p.Dial(context.Background())
		Expect(err).To(MatchError(proxy.ErrOffline), "no reconnecting behind the cut")
		p.SetOffline(false)
		c2 := dialClient(p, nil)
		Expect(c2.Create("box4", nil).Wait()).To(Succeed())
		Expect(mailboxes(addr)).To(ConsistOf("INBOX", "box1", "box2", "box4"))
	})

	It("counts commands across connections and fires once", func() {
		c2 := dialClient(p, nil)
		p.CutAfter(3)
		Expect(c.Create("box1", nil).Wait()).To(Succeed())
		Expect(c2.Create("box2", nil).Wait()).To(Succeed())
		Expect(c.Create("box3", nil).Wait()).To(Succeed())
		Expect(c2.Create("box4", nil).Wait()).NotTo(Succeed())
		Eventually(c2.Closed()).Should(BeClosed())
		Expect(c.Create("box5", nil).Wait()).To(Succeed(), "the cut fired and is disarmed")
		Expect(mailboxes(addr)).To(ConsistOf("INBOX", "box1", "box2", "box3", "box5"))
	})

	It("delivers pipelined commands before the cut and none after it", func() {
		p.CutAfter(2)
		first := []*imapclient.Command{c.Create("box1", nil), c.Create("box2", nil)}
		Expect(c.Create("box3", nil).Wait()).NotTo(Succeed())
		for _, cmd := range first {
			// The answers may be lost with the connection; only the server's state counts.
			_ = cmd.Wait()
		}
		Eventually(func() []string { return mailboxes(addr) }).Should(ConsistOf(boxes(2)))
		Expect(p.Commands()).To(Equal(3), "LOGIN and two CREATEs")
	})
})
