package harness

import (
	"context"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/scenarios"
)

// Options configure a run.
type Options struct {
	// Seed makes a run on the fake server reproducible. Zero picks no special value: zero
	// is a seed like any other.
	Seed int64
	// Store is the device store: "memory" (default) or "disk".
	Store string
	// TempDir holds disk stores; "" uses os.MkdirTemp.
	TempDir string
	// NewDevice builds a device; nil uses the syncharness engine.
	NewDevice DeviceFactory
	// EngineName names the device implementation in reports.
	EngineName string
	// Policies are the policy relaxations of the checker's model that the devices' engine
	// follows (docs/relaxations.md): nil means every one, the syncharness engine's; an
	// external engine's profile sets what it declares (check.NoPolicies() for none, what
	// run --strict uses). Protocol relaxations always apply.
	Policies check.Policies
	// Target is the server side; nil uses a fresh fake server per scenario.
	Target Target
	// SettleRounds bounds the settle phase; 0 means 8.
	SettleRounds int
	// Logger receives debug output; nil discards it.
	Logger *slog.Logger
	// Command is the command line recorded in reports.
	Command string
	// ReproduceFlags are the arguments a scenario's reproduce line adds after the scenario
	// and the seed: every flag that changed the run's behaviour, one argument per element
	// ("--store", "disk"). They are quoted for a POSIX shell when the line is built.
	ReproduceFlags []string
	// KeepArtifacts keeps transcripts, history and replicas of failed scenarios in the
	// result (see Result.Artifacts).
	KeepArtifacts bool
	// FreeInterleaving turns deterministic mode off. By default every device's commands pass
	// a seeded Scheduler (see NewScheduler), so the steps of a concurrently block reach the
	// server one command at a time in an order decided by the seed, and transcripts and step
	// times use the scheduler's logical clock. With FreeInterleaving they race as their
	// goroutines do and times are wall-clock times.
	FreeInterleaving bool
	// GateStall bounds how long the scheduler waits for an active device that does not reach
	// the gate; 0 means DefaultGateStall.
	GateStall time.Duration
	// IdleLatency is the server's IDLE latency, measured once for the run
	// (MeasureIdleLatency); zero: not measured. A scenario with an expectation whose
	// within= is shorter is skipped with the measured latency: it cannot pass, and no
	// RFC bounds the latency, so it is no engine failure.
	IdleLatency IdleLatency
	// IdleWait makes every within= wait IdleLatency longer instead of skipping.
	IdleWait bool
	// Skip, when set, says why a scenario cannot run with these devices ("" when it can):
	// RunScenario then reports it skipped with that reason without running it (an
	// external engine's unclaimed features, ExternalSkip).
	Skip func(*scenarios.Scenario) string
}

// DeviceConfig is what a DeviceFactory gets to build one device.
type DeviceConfig struct {
	Name     string
	Dial     func(ctx context.Context) (net.Conn, error) // through the device's proxy
	Username string
	Password string
	Store    string // "memory" or "disk"
	Dir      string // an empty directory the device may keep its store in
	Logger   *slog.Logger
}

// DeviceFactory builds a device. It is called again with a fresh Dir when a scenario wipes
// the device.
type DeviceFactory func(ctx context.Context, cfg DeviceConfig) (clients.Device, error)

func (o Options) settleRounds() int {
	if o.SettleRounds > 0 {
		return o.SettleRounds
	}
	return 8
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
