package engine_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/syncharness/syncharness/clients/engine"
)

// A mirror of a mailbox: open an engine on a store, sync, read the replica, change it
// offline and sync again.
func Example() {
	ctx := context.Background()
	store, err := engine.OpenDiskStore("/var/lib/mymirror")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	e, err := engine.Open(ctx, engine.Options{
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", "imap.example.org:143")
		},
		Username: "alice", Password: "secret",
		Store:          store,
		CommandTimeout: time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	st, err := e.Sync(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d commands, %d messages downloaded\n", st.Commands, st.Downloaded)

	msgs, err := e.Messages(ctx, "INBOX")
	if err != nil {
		log.Fatal(err)
	}
	var unread []engine.LocalID
	for _, m := range msgs {
		if m.Flags.System&engine.FlagSeen == 0 {
			unread = append(unread, m.ID)
		}
	}
	// Offline: journalled by local id, sent on the next round.
	if err := e.SetFlags(ctx, unread, []string{`\Seen`}); err != nil {
		log.Fatal(err)
	}
	if _, err := e.Sync(ctx); err != nil {
		log.Fatal(err)
	}
}
