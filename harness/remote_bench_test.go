package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/testsupport/dovecot"
)

// BenchmarkCatalogueFakeVsDovecot runs the whole catalogue on the fake server and on a
// private Dovecot in one run, and reports both wall times and their ratio.
func BenchmarkCatalogueFakeVsDovecot(b *testing.B) {
	ctx := context.Background()
	srv, err := dovecot.Start(ctx, dovecot.Options{Users: []dovecot.User{{Name: "alice", Password: "bench-pass"}}})
	if dovecot.Unavailable(err) {
		b.Skip("Dovecot cannot run here: " + err.Error())
	}
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	list, err := harness.Catalog()
	if err != nil {
		b.Fatal(err)
	}
	var fake, dove time.Duration
	for b.Loop() {
		run, _ := harness.RunAll(ctx, list, harness.RunOptions{Options: harness.Options{Seed: 1}, Parallel: 2})
		fake += run.Duration
		t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + srv.Addr(), Password: "bench-pass",
			Admin: harness.DovecotAdmin{Doveadm: []string{"doveadm", "-c", srv.ConfigPath()}}})
		if err != nil {
			b.Fatal(err)
		}
		run, _ = harness.RunAll(ctx, list, harness.RunOptions{Options: harness.Options{Seed: 1, Target: t}, Parallel: 2})
		dove += run.Duration
		if err := t.Close(ctx); err != nil {
			b.Fatal(err)
		}
		for _, s := range run.Scenarios {
			if s.Status == reports.Errored {
				b.Logf("%s: %s", s.Name, s.Error)
			}
		}
	}
	b.ReportMetric(fake.Seconds()/float64(b.N), "fake-s/op")
	b.ReportMetric(dove.Seconds()/float64(b.N), "dovecot-s/op")
	b.ReportMetric(dove.Seconds()/fake.Seconds(), "dovecot/fake")
}
