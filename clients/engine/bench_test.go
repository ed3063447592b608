package engine_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// benchServer starts a fake server holding n messages of about size bytes in INBOX.
func benchServer(b *testing.B, n, size int) string {
	b.Helper()
	srv := fakeserver.New(fakeserver.Options{Seed: 1})
	b.Cleanup(func() { _ = srv.Close() })
	if err := srv.AddUser(user, password); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		body := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprintf("b%06d", i), Run: run, Size: size, Seed: int64(i)})
		if err := srv.Apply(fakeserver.Deliver{User: user, Mailbox: "INBOX", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return addr.String()
}

func benchEngine(b *testing.B, addr string) *engine.Engine {
	b.Helper()
	e, err := engine.Open(context.Background(), engine.Options{
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		Username: user, Password: password, Store: engine.NewMemoryStore(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e
}

// BenchmarkInitialSync10k: a new device syncs 10,000 messages of about 10 KB.
// Target: at least 5,000 messages/s.
func BenchmarkInitialSync10k(b *testing.B) {
	const n = 10000
	addr := benchServer(b, n, 10<<10)
	b.ResetTimer()
	var total time.Duration
	for b.Loop() {
		e := benchEngine(b, addr)
		start := time.Now()
		st, err := e.Sync(context.Background())
		total += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if st.Downloaded != n {
			b.Fatalf("downloaded %d of %d", st.Downloaded, n)
		}
		_ = e.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "msgs/s")
}

// BenchmarkNoChangeRound50k: a round that finds nothing to do on 50,000 messages.
// Target: under 150 ms.
func BenchmarkNoChangeRound50k(b *testing.B) {
	const n = 50000
	addr := benchServer(b, n, 300)
	e := benchEngine(b, addr)
	if _, err := e.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		st, err := e.Sync(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Changed() {
			b.Fatalf("a no-change round changed something: %+v", st)
		}
	}
}

// BenchmarkReplicaBytesPerMessage: heap bytes per message of replica metadata (records
// and indexes, without bodies) in the memory store. Target: under 400.
func BenchmarkReplicaBytesPerMessage(b *testing.B) {
	const n = 50000
	for b.Loop() {
		s := engine.NewMemoryStore()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := s.Update(func(tx engine.Tx) error {
			if err := tx.PutMailbox(engine.MailboxRecord{Name: "INBOX"}); err != nil {
				return err
			}
			for i := range n {
				id, err := tx.NextID()
				if err != nil {
					return err
				}
				flags := engine.ParseFlags([]string{`\Seen`})
				if i%10 == 0 {
					flags = engine.ParseFlags([]string{`\Seen`, "$Work"})
				}
				m := engine.MessageRecord{ID: id, Mailbox: "INBOX", UID: uint32(i + 1), Size: 10240,
					InternalDate: int64(1700000000 + i), MessageID: fmt.Sprintf("b%06d.%s@%s", i, run, clients.LabelDomain),
					Label: fmt.Sprintf("b%06d", i), Flags: flags, Base: flags, EverUID: true}
				m.Hash[0], m.Hash[1] = byte(i), byte(i>>8)
				if err := tx.PutMessage(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/msg")
		runtime.KeepAlive(s)
	}
}
