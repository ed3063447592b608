package proxy_test

import (
	"context"
	"net"
	"runtime"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

var _ = Describe("Close", func() {
	It("ends every goroutine of the proxy, even with connections open and a command held", func() {
		addr := startServer(serverOptions{})
		before := runtime.NumGoroutine()

		gate := newTestGate()
		gate.hold = "NOOP"
		p, err := proxy.New(proxy.Options{Name: "phone", Upstream: dialer(addr), Gate: gate})
		Expect(err).NotTo(HaveOccurred())

		c1 := dialClient(p, nil)
		c2 := dialClient(p, nil)
		p.SetLatency(time.Millisecond)
		Expect(c2.Create("Archive", nil).Wait()).To(Succeed())
		p.Drop()
		Eventually(c1.Closed()).Should(BeClosed())
		c3 := dialClient(p, nil)
		done := noopAsync(c3)
		Eventually(gate.Calls).Should(ContainElement("phone: T2 NOOP"))
		p.SetOffline(true)
		p.SetOffline(false)
		c4 := dialClient(p, nil)
		_ = noopAsync(c4)        // held at the gate when the proxy closes
		c5 := dialClient(p, nil) // idle when the proxy closes

		closed := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			closed <- p.Close()
		}()
		Eventually(closed, 5*time.Second).Should(Receive(BeNil()), "Close returns once every connection has ended")
		Expect(p.Close()).To(Succeed(), "closing twice is fine")
		Eventually(done).Should(Receive(HaveOccurred()))
		for _, c := range []*imapclient.Client{c1, c2, c3, c4, c5} {
			Eventually(c.Closed()).Should(BeClosed(), "Close cuts every client")
		}

		_, err = p.Dial(context.Background())
		Expect(err).To(MatchError(proxy.ErrClosed))
		_, err = net.Dial("tcp", p.Addr())
		Expect(err).To(HaveOccurred(), "the listener is closed")

		Eventually(runtime.NumGoroutine, 5*time.Second).Should(BeNumerically("<=", before))
	})
})
