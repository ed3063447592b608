package fakeserver_test

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/syncharness/syncharness/fakeserver"
)

// The benchmarks run the same work against the fake server and against go-imap's
// imapmemserver, side by side: go test -run '^$' -bench . ./fakeserver

var benchSizes = []int{100, 10_000, 100_000}

// benchServer is one running server with a mailbox "nN" of N messages for every size.
type benchServer struct {
	name  string
	addr  string
	close func()
}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

func benchBody(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\n\r\nbody of message %d\r\n", i, i, i))
}

func startFakeBench(tb testing.TB, sizes []int) *benchServer {
	srv := fakeserver.New(fakeserver.Options{Seed: 1})
	if err := srv.AddUser("alice", "secret"); err != nil {
		tb.Fatal(err)
	}
	for _, n := range sizes {
		name := fmt.Sprintf("n%d", n)
		if err := srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: name}); err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			if err := srv.Apply(fakeserver.Deliver{User: "alice", Mailbox: name, Body: benchBody(i)}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return &benchServer{name: "fake", addr: addr.String(), close: func() { srv.Close() }}
}

func startMemBench(tb testing.TB, sizes []int) *benchServer {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice", "secret")
	if err := u.Create("INBOX", nil); err != nil {
		tb.Fatal(err)
	}
	for _, n := range sizes {
		name := fmt.Sprintf("n%d", n)
		if err := u.Create(name, nil); err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			if _, err := u.Append(name, literal{bytes.NewReader(benchBody(i))}, &imap.AppendOptions{}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapESearch: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	return &benchServer{name: "memserver", addr: ln.Addr().String(), close: func() { srv.Close() }}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// benchFixtures builds both servers once per test binary: the big mailboxes take seconds.
var benchFixtures = sync.OnceValue(func() []*benchServer {
	var f fixtureTB
	return []*benchServer{startFakeBench(&f, benchSizes), startMemBench(&f, benchSizes)}
})

// fixtureTB is the testing.TB of fixtures built outside any one benchmark: a failure
// there is a broken benchmark setup, so it panics.
type fixtureTB struct{ testing.TB }

func (fixtureTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

func benchClient(b *testing.B, addr, mailbox string) *imapclient.Client {
	b.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Login("alice", "secret").Wait(); err != nil {
		b.Fatal(err)
	}
	if mailbox != "" {
		if _, err := c.Select(mailbox, nil).Wait(); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkAppendFetch measures APPEND + UID FETCH (FLAGS BODY.PEEK[]) pairs.
func BenchmarkAppendFetch(b *testing.B) {
	for _, s := range []func(testing.TB, []int) *benchServer{startFakeBench, startMemBench} {
		srv := s(b, nil)
		b.Run("server="+srv.name, func(b *testing.B) {
			c := benchClient(b, srv.addr, "INBOX")
			body := benchBody(0)
			opts := &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
			b.ReportAllocs()
			for b.Loop() {
				cmd := c.Append("INBOX", int64(len(body)), nil)
				if _, err := cmd.Write(body); err != nil {
					b.Fatal(err)
				}
				if err := cmd.Close(); err != nil {
					b.Fatal(err)
				}
				data, err := cmd.Wait()
				if err != nil {
					b.Fatal(err)
				}
				msgs, err := c.Fetch(imap.UIDSetNum(data.UID), opts).Collect()
				if err != nil || len(msgs) != 1 {
					b.Fatalf("fetch UID %d: %v, %d messages", data.UID, err, len(msgs))
				}
			}
		})
		srv.close()
	}
}

// BenchmarkNoop measures NOOP round trips with a mailbox selected.
func BenchmarkNoop(b *testing.B) {
	for _, start := range []func(testing.TB, []int) *benchServer{startFakeBench, startMemBench} {
		srv := start(b, []int{100})
		b.Run("server="+srv.name, func(b *testing.B) {
			c := benchClient(b, srv.addr, "n100")
			for b.Loop() {
				if err := c.Noop().Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
		srv.close()
	}
}

// BenchmarkFetchAllFlags measures UID FETCH 1:* (FLAGS) on mailboxes of each size.
func BenchmarkFetchAllFlags(b *testing.B) {
	for _, n := range benchSizes {
		for _, srv := range benchFixtures() {
			b.Run(fmt.Sprintf("n=%d/server=%s", n, srv.name), func(b *testing.B) {
				c := benchClient(b, srv.addr, fmt.Sprintf("n%d", n))
				all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
				for b.Loop() {
					cmd := c.Fetch(all, &imap.FetchOptions{Flags: true, UID: true})
					got := 0
					for cmd.Next() != nil {
						got++
					}
					if err := cmd.Close(); err != nil || got != n {
						b.Fatalf("fetch: %v, %d of %d messages", err, got, n)
					}
				}
			})
		}
	}
}

// BenchmarkFetchOne measures a single-message UID FETCH (FLAGS) in the middle of
// mailboxes of each size: its cost must not grow with the mailbox.
func BenchmarkFetchOne(b *testing.B) {
	for _, n := range benchSizes {
		for _, srv := range benchFixtures() {
			b.Run(fmt.Sprintf("n=%d/server=%s", n, srv.name), func(b *testing.B) {
				c := benchClient(b, srv.addr, fmt.Sprintf("n%d", n))
				uid := imap.UIDSetNum(imap.UID(n / 2))
				for b.Loop() {
					msgs, err := c.Fetch(uid, &imap.FetchOptions{Flags: true, UID: true}).Collect()
					if err != nil || len(msgs) != 1 {
						b.Fatalf("fetch: %v, %d messages", err, len(msgs))
					}
				}
			})
		}
	}
}
