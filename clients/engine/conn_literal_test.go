package engine

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/gomega"
)

// sizedLiteral is a body literal with its announced size.
type sizedLiteral struct {
	*bytes.Reader
	size int64
}

func (l sizedLiteral) Size() int64 { return l.size }

// A body is read into one buffer of the literal's announced size: io.ReadAll's growing
// buffer held up to twice each body of a FETCH batch (issue 12, memory against mbsync).
func TestReadLiteralSizesTheBufferFromTheAnnouncedSize(t *testing.T) {
	g := NewWithT(t)
	body := bytes.Repeat([]byte("0123456789"), 1000)
	cn := &conn{maxSize: 1 << 20}
	b, err := cn.readLiteral("INBOX", &imapclient.FetchMessageBuffer{UID: 7},
		sizedLiteral{bytes.NewReader(body), int64(len(body))}, cn.maxSize)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b).To(Equal(body))
	g.Expect(cap(b)).To(Equal(len(body)), "the buffer grew as the body came instead of being sized once")
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = cn.readLiteral("INBOX", &imapclient.FetchMessageBuffer{UID: 7},
			sizedLiteral{bytes.NewReader(body), int64(len(body))}, cn.maxSize)
	})
	g.Expect(allocs).To(BeNumerically("<=", 3), "allocations for one body")
}

// A body buffer the store copied is read into again (a first sync leaves no body behind
// as garbage); one over maxSpare is not kept, and a buffer is never handed out twice.
func TestReadLiteralReusesARecycledBuffer(t *testing.T) {
	g := NewWithT(t)
	cn := &conn{maxSize: 4 << 20}
	read := func(body []byte) []byte {
		b, err := cn.readLiteral("INBOX", &imapclient.FetchMessageBuffer{UID: 7},
			sizedLiteral{bytes.NewReader(body), int64(len(body))}, cn.maxSize)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(b).To(Equal(body))
		return b
	}
	first := read(bytes.Repeat([]byte("a"), 5000))
	cn.recycle(first)
	second := read(bytes.Repeat([]byte("b"), 3000))
	g.Expect(&second[0]).To(BeIdenticalTo(&first[0]), "the recycled buffer is read into")
	third := read(bytes.Repeat([]byte("c"), 3000))
	g.Expect(&third[0]).NotTo(BeIdenticalTo(&second[0]), "a buffer in use is not handed out again")
	big := read(bytes.Repeat([]byte("d"), maxSpare+1))
	cn.recycle(big)
	g.Expect(cn.spare).To(BeNil(), "a buffer over maxSpare is let go")
}
