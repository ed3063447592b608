package proxy_test

import (
	"context"
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/harness/proxy"
)

// BenchmarkFetch10KB measures one FETCH of a 10 KB message straight to the server and
// through the proxy; run it with -benchtime=1000x for 1,000 FETCHes. The ratio of the two
// is the proxy's overhead.
func BenchmarkFetch10KB(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchmarkFetch(b, false) })
	b.Run("proxy", func(b *testing.B) { benchmarkFetch(b, true) })
}

func benchmarkFetch(b *testing.B, viaProxy bool) {
	srv, err := newMemServer(serverOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.Cleanup(func() {
		if err := srv.Close(); err != nil {
			b.Error(err)
		}
		if err := <-served; err != nil {
			b.Error(err)
		}
	})

	var conn net.Conn
	if viaProxy {
		p, err := proxy.New(proxy.Options{Name: "bench", Upstream: dialer(ln.Addr().String())})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := p.Close(); err != nil {
				b.Error(err)
			}
		})
		conn, err = p.Dial(context.Background())
		if err != nil {
			b.Fatal(err)
		}
	} else {
		conn, err = net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		b.Fatal(err)
	}
	msg := testMessage("m1", 10<<10)
	app := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := app.Write(msg); err != nil {
		b.Fatal(err)
	}
	if err := app.Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := app.Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}

	body := &imap.FetchItemBodySection{Peek: true}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{body}}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		msgs, err := c.Fetch(imap.UIDSetNum(1), opts).Collect()
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != 1 || len(msgs[0].FindBodySection(body)) != len(msg) {
			b.Fatalf("fetched %d messages, want 1 of %d bytes", len(msgs), len(msg))
		}
	}
}
