package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/syncharness/syncharness/harness/check"
)

// A Target is the server side of a run: it opens one fresh Server per scenario.
type Target interface {
	// Name describes the target in reports: "fake", or a server URL without credentials.
	Name() string
	// Kind is "fake" or "remote", for scenario guards.
	Kind() string
	// Open prepares a server for one scenario.
	Open(ctx context.Context, cfg ServerConfig) (Server, error)
}

// ServerConfig describes the scenario a Server is opened for.
type ServerConfig struct {
	Scenario string // scenario name
	Seed     int64
	RunID    string
}

// A Server is one scenario's server.
type Server interface {
	// Dial opens a new connection to the server; devices reach it through their proxies.
	Dial(ctx context.Context) (net.Conn, error)
	// Credentials returns the account every device logs in to.
	Credentials() (username, password string)
	// Do performs a server-side operation: an outside client's change or a fault.
	// It returns an error wrapping ErrUnsupported for a fault the target cannot do.
	Do(ctx context.Context, op ServerOp) error
	// State reads the server's whole state for the checker.
	State(ctx context.Context) (check.ServerState, error)
	// Close releases the server and everything the scenario created on it.
	Close() error
}

// ErrUnsupported is wrapped by Server.Do for operations the target cannot perform; a
// scenario that needs one is skipped with the reason.
var ErrUnsupported = errors.New("not supported by this target")

// ServerOp is a server step of the scenario language.
type ServerOp struct {
	Kind       string // deliver, flag, unflag, move, copy, expunge, create, rename, remove, uidvalidity-bump, uidvalidity-reset, renumber-silently, drop, fail, latency, caps
	Mailbox    string
	Dest       string
	Labels     []string
	Messages   []ServerMessage // deliver
	Flag       string
	SpecialUse string
	N          int
	Response   string
	Command    string
	Duration   time.Duration
	Caps       []string // "-MOVE", "+MOVE"
}

// ServerMessage is a message to deliver.
type ServerMessage struct {
	Label string
	Body  []byte
	Flags []string
	Date  time.Time
}

// missingLabels returns an error naming the labels not found in mailbox on the server,
// or nil when every label was found.
func missingLabels(mailbox string, labels []string, found map[string]bool) error {
	var missing []string
	for _, l := range labels {
		if !found[l] {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not in %s on the server", strings.Join(missing, ", "), mailbox)
	}
	return nil
}
