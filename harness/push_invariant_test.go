package harness_test

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
)

// lazyWatcher is a device whose push mode syncs once and then only idles: woken by the
// server, it ends IDLE and starts it again without fetching anything.
type lazyWatcher struct {
	clients.Device
	cfg harness.DeviceConfig
}

func (d *lazyWatcher) Watch(ctx context.Context, mailbox string) error {
	if _, err := d.Sync(ctx); err != nil {
		return err
	}
	nc, err := d.cfg.Dial(ctx)
	if err != nil {
		return err
	}
	woken := make(chan struct{}, 1)
	wake := func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	}
	c := imapclient.New(nc, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { wake() },
		Mailbox: func(m *imapclient.UnilateralDataMailbox) {
			if m.NumMessages != nil {
				wake()
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) { _, _ = m.Collect(); wake() },
	}})
	defer c.Close()
	if err := c.Login(d.cfg.Username, d.cfg.Password).Wait(); err != nil {
		return err
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return err
	}
	for {
		idle, err := c.Idle()
		if err != nil {
			return err
		}
		stop := false
		select {
		case <-woken:
		case <-ctx.Done():
			stop = true
		}
		if err := idle.Close(); err != nil {
			return err
		}
		if err := idle.Wait(); err != nil || stop {
			return err
		}
	}
}

var _ = Describe("The push delivery invariant (P1)", func() {
	push := func(ctx context.Context, factory harness.DeviceFactory) *harness.Result {
		opts := harness.Options{Seed: 1, NewDevice: factory}
		return harness.RunScenario(ctx, catalogScenario("push_new_mail"), opts)
	}
	invariants := func(res *harness.Result) []string {
		var out []string
		for _, f := range res.Report.Failures {
			out = append(out, f.Invariant)
		}
		return out
	}

	It("holds for the engine's push mode", func(ctx SpecContext) {
		res := push(ctx, harness.EngineDevice)
		Expect(res.Report.Status).To(Equal(reports.Passed))
	})

	It("fails for a device whose push mode never syncs after its first round", func(ctx SpecContext) {
		res := push(ctx, func(ctx context.Context, cfg harness.DeviceConfig) (clients.Device, error) {
			inner, err := harness.EngineDevice(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &lazyWatcher{Device: inner, cfg: cfg}, nil
		})
		Expect(invariants(res)).To(ContainElement(check.P1Push))
		for _, f := range res.Report.Failures {
			if f.Invariant == check.P1Push {
				Expect(f.Devices).To(Equal([]string{"phone"}))
				Expect(f.Message).To(ContainSubstring("phone was told of a change in INBOX"))
				Expect(strings.Contains(f.Message, "EXISTS")).To(BeTrue(), f.Message)
			}
		}
		Expect(res.GateFallbacks).To(BeZero(), "a lazy watcher still goes quiet: nothing waits for it in vain")
	})
})
