package harness_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
)

// myDevice stands for an engine author's own device: anything that implements
// clients.Device. Here it wraps the syncharness engine and hides its optional interfaces,
// as an external engine that cannot show its sync state would.
type myDevice struct {
	inner clients.Device
	syncs int
}

func (d *myDevice) Name() string                                      { return d.inner.Name() }
func (d *myDevice) Do(ctx context.Context, a clients.Action) error    { return d.inner.Do(ctx, a) }
func (d *myDevice) View(ctx context.Context) (clients.Replica, error) { return d.inner.View(ctx) }
func (d *myDevice) Crash() error                                      { return d.inner.Crash() }
func (d *myDevice) Close() error                                      { return d.inner.Close() }
func (d *myDevice) Sync(ctx context.Context) (clients.SyncStats, error) {
	d.syncs++
	return d.inner.Sync(ctx)
}

// This is how an engine author runs the catalogue against their own device, from their own
// test: a DeviceFactory in harness.Options, then RunScenario for each catalogue entry.
var _ = Describe("An engine author's own device", func() {
	It("runs catalogue scenarios through the Device interface alone", func(ctx SpecContext) {
		var built []*myDevice
		opts := harness.Options{
			Seed: 1,
			NewDevice: func(ctx context.Context, cfg harness.DeviceConfig) (clients.Device, error) {
				inner, err := harness.EngineDevice(ctx, cfg) // your engine here, dialling cfg.Dial
				if err != nil {
					return nil, err
				}
				d := &myDevice{inner: inner}
				built = append(built, d)
				return d, nil
			},
		}
		for _, name := range []string{"flags_concurrent_read", "move_first_move_wins", "delete_beats_flag"} {
			res := harness.RunScenario(ctx, catalogScenario(name), opts)
			Expect(res.Report.Status).To(Equal(reports.Passed), name)
		}
		Expect(built).NotTo(BeEmpty())
		for _, d := range built {
			Expect(d.syncs).To(BeNumerically(">", 0), "every device was synced through the interface")
		}
	})
})
