package harness

import "context"

// folderStep reports whether a server step changes which mailbox a name denotes: where a
// server keeps UIDVALIDITY across RENAME (or gives a re-created folder the old one), the
// name, UIDVALIDITY and UIDs may then name other messages (S3).
func folderStep(kind string) bool {
	return kind == "rename" || kind == "create" || kind == "remove"
}

// readAround reads the server's state for the server invariants (Result.ServerReads)
// before or after a folder step, on a target that cannot show its state without IMAP (the
// fake server's state is read after every step anyway). Such reads are what shows S3 when
// two folders with one UIDVALIDITY swap names: the devices' own traffic may never fetch
// the messages again. A read that fails is left out.
func (r *runner) readAround(ctx context.Context, what string) {
	if _, ok := r.server.(serverSnapshotter); ok {
		return
	}
	if st, err := r.server.State(ctx); err == nil {
		r.read(what, st)
	}
}
