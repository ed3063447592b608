package maildir_test

import (
	"bytes"
	"testing"

	"github.com/syncharness/syncharness/clients/maildir"
)

func benchDir(b *testing.B, noSync bool) *maildir.Dir {
	b.Helper()
	md, err := maildir.Open(b.TempDir(), maildir.Options{Hostname: "bench", NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	return md
}

// BenchmarkAdd measures writing a 10 KB message into cur, with and without fsync.
func BenchmarkAdd(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 10<<10)
	for _, bc := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync", true}} {
		b.Run(bc.name, func(b *testing.B) {
			md := benchDir(b, bc.noSync)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := md.Add(bytes.NewReader(body), maildir.Seen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkList measures listing a Maildir of 10,000 messages.
func BenchmarkList(b *testing.B) {
	md := benchDir(b, true)
	for i := 0; i < 10000; i++ {
		if _, err := md.Add(bytes.NewReader([]byte("x")), maildir.Seen); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		list, err := md.List()
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != 10000 {
			b.Fatalf("listed %d messages", len(list))
		}
	}
}

// BenchmarkSetFlags measures a flag change (one rename) on a known message.
func BenchmarkSetFlags(b *testing.B) {
	md := benchDir(b, true)
	m, err := md.Add(bytes.NewReader([]byte("x")), 0)
	if err != nil {
		b.Fatal(err)
	}
	flags := []maildir.Flags{maildir.Seen, maildir.Seen | maildir.Flagged}
	i := 0
	for b.Loop() {
		if _, err := md.SetFlags(m.Key, flags[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAddBatch measures writing 100 messages of 10 KB that must be durable together:
// an fsync per message, or no fsync and one SyncMessages for the batch.
func BenchmarkAddBatch(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 10<<10)
	for _, bc := range []struct {
		name  string
		batch bool
	}{{"fsync-each", false}, {"sync-batch", true}} {
		b.Run(bc.name, func(b *testing.B) {
			md := benchDir(b, bc.batch)
			for b.Loop() {
				keys := make([]string, 0, 100)
				for i := 0; i < 100; i++ {
					m, err := md.Add(bytes.NewReader(body), maildir.Seen)
					if err != nil {
						b.Fatal(err)
					}
					keys = append(keys, m.Key)
				}
				if bc.batch {
					if err := md.SyncMessages(keys); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
