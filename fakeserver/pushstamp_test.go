package fakeserver_test

import (
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("dated pushes (SetClock)", func() {
	// stamps asks PushStamp until it has nothing more for addr.
	stamps := func(srv *fakeserver.Server, addr string) []time.Duration {
		var out []time.Duration
		for {
			at, ok := srv.PushStamp(addr)
			if !ok {
				return out
			}
			out = append(out, at)
		}
	}

	It("dates each line an idling session writes by the change it reports, whenever the line goes out", func() {
		srv, addr := startServer(fakeserver.Options{Seed: 1})
		deliver(srv, "INBOX", "m1", "m2")
		var clock atomic.Int64
		srv.SetClock(func() time.Duration { return time.Duration(clock.Load()) })
		c := login(addr)
		c.ok("SELECT INBOX")
		me := c.conn.LocalAddr().String()

		clock.Store(1)
		deliver(srv, "INBOX", "m3")
		Expect(c.ok("NOOP")).To(Equal([]string{"* 3 EXISTS"}))
		Expect(stamps(srv, me)).To(BeEmpty(), "a change told in a command's answer is dated by that answer")

		tag := c.send("IDLE")
		Expect(c.line()).To(HavePrefix("+"))
		clock.Store(7)
		deliver(srv, "INBOX", "m4")
		clock.Store(9) // other work moves the clock on before the line is read
		Expect(c.line()).To(Equal("* 4 EXISTS"))
		clock.Store(11)
		Expect(srv.Apply(fakeserver.Store{User: "alice", Mailbox: "INBOX", UIDs: []uint32{1}, Add: true, Flags: []string{`\Seen`}})).To(Succeed())
		clock.Store(12)
		Expect(c.line()).To(MatchRegexp(`^\* 1 FETCH \(.*FLAGS \(\\Seen\)`))
		clock.Store(13)
		Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{2}})).To(Succeed())
		clock.Store(20)
		Expect(c.line()).To(Equal("* 2 EXPUNGE"))
		Expect(stamps(srv, me)).To(Equal([]time.Duration{7, 11, 13}))

		_, err := c.conn.Write([]byte("DONE\r\n"))
		Expect(err).NotTo(HaveOccurred())
		_, status := c.until(tag)
		Expect(status).To(HavePrefix("OK"))
		Expect(stamps(srv, me)).To(BeEmpty())
		_, ok := srv.PushStamp("127.0.0.1:1")
		Expect(ok).To(BeFalse(), "no session there")
	})

	It("drops the dates nobody asked for when the next IDLE begins", func() {
		srv, addr := startServer(fakeserver.Options{Seed: 1})
		var clock atomic.Int64
		srv.SetClock(func() time.Duration { return time.Duration(clock.Load()) })
		c := login(addr)
		c.ok("SELECT INBOX")
		me := c.conn.LocalAddr().String()
		for i, label := range []string{"m1", "m2"} {
			tag := c.send("IDLE")
			Expect(c.line()).To(HavePrefix("+"))
			clock.Store(int64(10 * (i + 1)))
			deliver(srv, "INBOX", label)
			Expect(c.line()).To(HaveSuffix(" EXISTS"))
			_, err := c.conn.Write([]byte("DONE\r\n"))
			Expect(err).NotTo(HaveOccurred())
			_, status := c.until(tag)
			Expect(status).To(HavePrefix("OK"))
		}
		Expect(stamps(srv, me)).To(Equal([]time.Duration{20}))
	})

	It("dates lines the idle-every mode held by when they went out", func() {
		srv, addr := startServer(fakeserver.Options{Seed: 1})
		// The first reading dates the change; every later one is the poll that lets it go.
		var calls atomic.Int64
		srv.SetClock(func() time.Duration {
			if calls.Add(1) == 1 {
				return 5
			}
			return 30
		})
		c := login(addr)
		c.ok("SELECT INBOX")
		m, err := fakeserver.ParseMode("idle-every=100ms")
		Expect(err).NotTo(HaveOccurred())
		m.User = "alice"
		Expect(srv.Apply(m)).To(Succeed())
		tag := c.send("IDLE")
		Expect(c.line()).To(HavePrefix("+"))
		deliver(srv, "INBOX", "m1")
		Expect(c.line()).To(Equal("* 1 EXISTS"))
		Expect(stamps(srv, c.conn.LocalAddr().String())).To(Equal([]time.Duration{30}))
		_, err = c.conn.Write([]byte("DONE\r\n"))
		Expect(err).NotTo(HaveOccurred())
		_, status := c.until(tag)
		Expect(status).To(HavePrefix("OK"))
	})

	It("dates nothing without a clock", func() {
		srv, addr := startServer(fakeserver.Options{Seed: 1})
		c := login(addr)
		c.ok("SELECT INBOX")
		tag := c.send("IDLE")
		Expect(c.line()).To(HavePrefix("+"))
		deliver(srv, "INBOX", "m1")
		Expect(c.line()).To(Equal("* 1 EXISTS"))
		Expect(stamps(srv, c.conn.LocalAddr().String())).To(BeEmpty())
		_, err := c.conn.Write([]byte("DONE\r\n"))
		Expect(err).NotTo(HaveOccurred())
		_, status := c.until(tag)
		Expect(status).To(HavePrefix("OK"))
	})
})
