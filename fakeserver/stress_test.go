package fakeserver_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

// counted wraps a raw client and checks every EXISTS and EXPUNGE against the message
// count it implies: an EXPUNGE must name a message the client knows, EXISTS never shrinks.
type counted struct {
	*raw
	count int
}

func (c *counted) run(cmd string) (status string) {
	GinkgoHelper()
	untagged, status := c.do(cmd)
	for _, l := range untagged {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		switch f[2] {
		case "EXISTS":
			Expect(n).To(BeNumerically(">=", c.count), "EXISTS after %q", cmd)
			c.count = n
		case "EXPUNGE":
			Expect(n).To(And(BeNumerically(">=", 1), BeNumerically("<=", c.count)), "EXPUNGE after %q", cmd)
			c.count--
		}
	}
	return status
}

var _ = Describe("several sessions changing one account at once", func() {
	It("keep every session's sequence numbers consistent with the server", func(ctx SpecContext) {
		srv, addr := startServer(fakeserver.Options{Seed: 5})
		Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive"})).To(Succeed())
		for i := range 20 {
			deliver(srv, "INBOX", fmt.Sprintf("i%d", i))
			deliver(srv, "Archive", fmt.Sprintf("a%d", i))
		}
		boxes := []string{"INBOX", "Archive"}
		var wg sync.WaitGroup
		clients := make([]*counted, 3)
		for i := range clients {
			clients[i] = &counted{raw: login(addr)}
			clients[i].run("SELECT " + boxes[i%2])
			Expect(clients[i].count).To(Equal(20))
		}
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), 99))
				other := boxes[(i+1)%2]
				for range 300 {
					seq := 1 + rng.IntN(25)
					switch rng.IntN(7) {
					case 0:
						c.run(fmt.Sprintf(`STORE %d +FLAGS (\Seen)`, seq))
					case 1:
						c.run(fmt.Sprintf(`UID STORE %d -FLAGS (\Seen)`, seq))
					case 2:
						c.run(fmt.Sprintf("MOVE %d %s", seq, other))
					case 3:
						c.run(fmt.Sprintf("UID COPY %d,%d %s", seq, seq+40, other))
					case 4:
						c.run(fmt.Sprintf(`STORE %d +FLAGS.SILENT (\Deleted)`, seq))
						c.run("EXPUNGE")
					case 5:
						c.run("APPEND " + other + " {5+}\r\nhello")
					default:
						c.run("NOOP")
					}
				}
			}()
		}
		wg.Wait()
		snap, err := srv.Snapshot("alice")
		Expect(err).NotTo(HaveOccurred())
		for i, c := range clients {
			c.run("NOOP")
			m, _ := snap.Mailbox(boxes[i%2])
			var want []string
			for j, msg := range m.Messages {
				want = append(want, fmt.Sprintf("* %d FETCH (UID %d)", j+1, msg.UID))
			}
			Expect(c.count).To(Equal(len(m.Messages)), "session %d", i)
			got, status := c.do("FETCH 1:* (UID)")
			Expect(status).To(HavePrefix("OK"))
			Expect(got).To(Equal(want), "session %d sees %s as the server has it", i, boxes[i%2])
		}
	}, SpecTimeout(60*1e9))
})
