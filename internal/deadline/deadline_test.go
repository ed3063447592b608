package deadline_test

import (
	"net"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/internal/deadline"
)

// fakeConn records the deadlines set on it and answers reads and writes from scripts.
type fakeConn struct {
	net.Conn
	readDeadlines  []time.Time
	writeDeadlines []time.Time
	reads          []result // answered in order
	writes         []result // how much of each write is taken, with which error
	written        []byte
}

type result struct {
	n   int
	err error
}

func (f *fakeConn) SetReadDeadline(t time.Time) error {
	f.readDeadlines = append(f.readDeadlines, t)
	return nil
}

func (f *fakeConn) SetWriteDeadline(t time.Time) error {
	f.writeDeadlines = append(f.writeDeadlines, t)
	return nil
}

func (f *fakeConn) Read(p []byte) (int, error) {
	r := f.reads[0]
	f.reads = f.reads[1:]
	for i := range r.n {
		p[i] = 'x'
	}
	return r.n, r.err
}

func (f *fakeConn) Write(p []byte) (int, error) {
	r := result{n: len(p)}
	if len(f.writes) > 0 {
		r = f.writes[0]
		f.writes = f.writes[1:]
	}
	f.written = append(f.written, p[:r.n]...)
	return r.n, r.err
}

var _ = Describe("A connection with lazy deadlines", func() {
	var inner *fakeConn
	var c *deadline.Conn
	BeforeEach(func() {
		inner = &fakeConn{}
		c = deadline.Wrap(inner)
	})

	It("passes on one deadline for a run of set-and-clear pairs a moment apart", func() {
		start := time.Now().Add(30 * time.Second)
		for i := range 1000 {
			Expect(c.SetReadDeadline(start.Add(time.Duration(i) * time.Microsecond))).To(Succeed())
			Expect(c.SetReadDeadline(time.Time{})).To(Succeed())
		}
		Expect(inner.readDeadlines).To(Equal([]time.Time{start}))
	})

	It("passes on a deadline earlier than the connection's, or more than the slack later", func() {
		t0 := time.Now().Add(time.Minute)
		Expect(c.SetWriteDeadline(t0)).To(Succeed())
		Expect(c.SetWriteDeadline(t0.Add(-time.Millisecond))).To(Succeed())
		Expect(c.SetWriteDeadline(t0.Add(deadline.Slack))).To(Succeed())
		Expect(inner.writeDeadlines).To(Equal([]time.Time{t0, t0.Add(-time.Millisecond), t0.Add(deadline.Slack)}))
	})

	It("carries on reading when the connection's deadline expires after the caller cleared it", func() {
		Expect(c.SetReadDeadline(time.Now().Add(time.Second))).To(Succeed())
		Expect(c.SetReadDeadline(time.Time{})).To(Succeed())
		inner.reads = []result{{0, os.ErrDeadlineExceeded}, {3, nil}}
		n, err := c.Read(make([]byte, 8))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(3))
		Expect(inner.readDeadlines[len(inner.readDeadlines)-1]).To(BeZero(), "the clear was applied before reading again")
	})

	It("carries on reading when the connection's deadline came before the one asked", func() {
		t0 := time.Now().Add(-deadline.Slack / 10) // the connection's, just past
		Expect(c.SetReadDeadline(t0)).To(Succeed())
		later := t0.Add(deadline.Slack / 2) // within the slack: not passed on until needed
		Expect(c.SetReadDeadline(later)).To(Succeed())
		inner.reads = []result{{0, os.ErrDeadlineExceeded}, {1, nil}}
		n, err := c.Read(make([]byte, 8))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(1))
		Expect(inner.readDeadlines).To(Equal([]time.Time{t0, later}))
	})

	It("reports a timeout once the deadline the caller asked has passed", func() {
		Expect(c.SetReadDeadline(time.Now().Add(-time.Millisecond))).To(Succeed())
		inner.reads = []result{{0, os.ErrDeadlineExceeded}}
		_, err := c.Read(make([]byte, 8))
		Expect(err).To(MatchError(os.ErrDeadlineExceeded))
	})

	It("writes the rest of a write the connection's early deadline cut", func() {
		Expect(c.SetWriteDeadline(time.Now().Add(time.Second))).To(Succeed())
		Expect(c.SetWriteDeadline(time.Time{})).To(Succeed())
		inner.writes = []result{{2, os.ErrDeadlineExceeded}, {3, nil}}
		n, err := c.Write([]byte("hello"))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(5))
		Expect(string(inner.written)).To(Equal("hello"))
	})

	It("passes other errors on at once", func() {
		inner.reads = []result{{0, net.ErrClosed}}
		_, err := c.Read(make([]byte, 8))
		Expect(err).To(MatchError(net.ErrClosed))
	})
})
