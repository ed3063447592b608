package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

// eventTexts returns the text of p's events.
func eventTexts(p *proxy.Proxy) []string {
	var out []string
	for _, l := range p.Events() {
		out = append(out, l.Text)
	}
	return out
}

// messagesIn counts the messages in mailbox on addr, bypassing any proxy.
func messagesIn(addr, mailbox string) uint32 {
	GinkgoHelper()
	c := directClient(addr, nil)
	data, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	Expect(err).NotTo(HaveOccurred())
	Expect(c.Logout().Wait()).To(Succeed())
	return *data.NumMessages
}

var _ = Describe("LoseAnswer", func() {
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

	DescribeTable("lets the server carry out command n, drops its answer and then cuts the connection",
		func(n int) {
			base := p.Commands()
			p.LoseAnswer(n)
			cut := p.Cut()
			for i := 1; i < n; i++ {
				Expect(c.Create(fmt.Sprintf("box%d", i), nil).Wait()).To(Succeed())
			}
			Expect(cut).NotTo(BeClosed())
			Expect(c.Create(fmt.Sprintf("box%d", n), nil).Wait()).NotTo(Succeed(), "the client never sees the answer")
			Eventually(c.Closed()).Should(BeClosed())
			Expect(cut).To(BeClosed())
			Expect(p.Commands()).To(Equal(base + n))
			Expect(mailboxes(addr)).To(ConsistOf(boxes(n)), "the server created box%d all the same", n)

			tagged := 0
			for _, l := range p.Transcript() {
				if l.Dir == proxy.DirServer && !strings.HasPrefix(l.Text, "* ") && strings.Contains(l.Text, " OK ") {
					tagged++
				}
			}
			Expect(tagged).To(Equal(1+n-1), "LOGIN's and the first n-1 CREATEs' answers reached the client, no more")
			Expect(eventTexts(p)).To(ContainElement(MatchRegexp(`^connection 1 dropped S: \S+ OK .*CREATE`)))
			Expect(eventTexts(p)).To(ContainElement(MatchRegexp(`^connection 1 cut by LoseAnswer after the server completed "\S+ CREATE \\"box%d\\""$`, n)))
		},
		Entry("n=1", 1),
		Entry("n=2", 2),
		Entry("n=3", 3),
	)

	DescribeTable("lets an APPEND's literal through and loses its APPENDUID",
		func(literalPlus bool) {
			addr := startServer(serverOptions{literalPlus: literalPlus})
			p := startProxy(addr, nil)
			c := dialClient(p, nil)
			p.LoseAnswer(1)
			msg := testMessage("m1", 3000)
			cmd := c.Append("INBOX", int64(len(msg)), nil)
			_, err := cmd.Write(msg)
			Expect(err).NotTo(HaveOccurred())
			_ = cmd.Close() // may fail with the cut: only Wait's answer counts
			_, err = cmd.Wait()
			Expect(err).To(HaveOccurred())
			Expect(messagesIn(addr, "INBOX")).To(Equal(uint32(1)), "the server stored the message")
			Expect(eventTexts(p)).To(ContainElement(MatchRegexp(`dropped S: \S+ OK \[APPENDUID`)))
		},
		Entry("with synchronizing literals", false),
		Entry("with LITERAL+", true),
	)

	It("disarms with n=0, and CutAfter replaces it", func() {
		p.LoseAnswer(1)
		p.LoseAnswer(0)
		Expect(c.Create("box1", nil).Wait()).To(Succeed())
		p.LoseAnswer(1)
		p.CutAfter(0)
		Expect(c.Create("box2", nil).Wait()).To(Succeed())
		Expect(p.Cut()).NotTo(BeClosed())
	})

	It("with LoseAnswerOffline, goes offline as the connection is cut, until it is back online", func() {
		p.LoseAnswerOffline(2)
		Expect(c.Create("box1", nil).Wait()).To(Succeed())
		Expect(c.Create("box2", nil).Wait()).NotTo(Succeed())
		Expect(p.Cut()).To(BeClosed())
		_, err := p.Dial(context.Background())
		Expect(err).To(MatchError(proxy.ErrOffline), "no reconnecting behind the cut")
		p.SetOffline(false)
		c2 := dialClient(p, nil)
		Expect(c2.Create("box3", nil).Wait()).To(Succeed())
		Expect(mailboxes(addr)).To(ConsistOf(boxes(3)))
	})

	It("forwards nothing the client pipelines after the lost command", func() {
		p.LoseAnswer(1)
		cmds := []*imapclient.Command{c.Create("box1", nil), c.Create("box2", nil), c.Create("box3", nil)}
		for _, cmd := range cmds {
			Expect(cmd.Wait()).NotTo(Succeed())
		}
		Expect(mailboxes(addr)).To(ConsistOf(boxes(1)))
		Expect(p.Commands()).To(Equal(2), "LOGIN and the first CREATE")
	})

	It("cuts a command sent on another connection while the answer is being lost before it reaches the server", func() {
		// A scripted upstream answers the lost command only when told to, so the second
		// connection's command certainly comes in between.
		release := make(chan struct{})
		seen := make(chan string, 10)
		up := startScripted("* OK ready", func(line string) []string {
			seen <- line
			tag, rest, _ := strings.Cut(line, " ")
			if rest == "NOOP slow" {
				<-release
				return []string{"* 3 EXISTS", tag + " OK slow done"}
			}
			return []string{tag + " OK done"}
		})
		p := startProxy(up, nil)
		a, _ := dialRaw(p)
		b, _ := dialRaw(p)
		p.LoseAnswer(1)
		a.send("a1 NOOP slow")
		Eventually(seen).Should(Receive(Equal("a1 NOOP slow")))
		b.send("b1 NOOP")
		_, err := b.r.ReadString('\n')
		Expect(err).To(HaveOccurred(), "b's connection is cut before its command")
		Expect(p.Cut()).To(BeClosed())

		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			_, err := a.r.ReadString('\n')
			done <- err
		}()
		Consistently(done, 200*time.Millisecond).ShouldNot(Receive(), "a stays open until the server completes a1")
		close(release)
		Eventually(done).Should(Receive(HaveOccurred()), "and is cut without an answer")
		Expect(seen).NotTo(Receive(), "b1 never reached the server")
		Expect(eventTexts(p)).To(ContainElements(
			`connection 1 dropped S: * 3 EXISTS`,
			`connection 1 dropped S: a1 OK slow done`,
			`connection 1 cut by LoseAnswer after the server completed "a1 NOOP slow"`))
	})
})
