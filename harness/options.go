package harness

import (
	"context"
	"io"
	"log/slog"
	"net"

	"github.com/syncharness/syncharness/clients"
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
	// Target is the server side; nil uses a fresh fake server per scenario.
	Target Target
	// SettleRounds bounds the settle phase; 0 means 8.
	SettleRounds int
	// Logger receives debug output; nil discards it.
	Logger *slog.Logger
	// Command is the command line recorded in reports.
	Command string
	// KeepArtifacts keeps transcripts, history and replicas of failed scenarios in the
	// result (see Result.Artifacts).
	KeepArtifacts bool
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
