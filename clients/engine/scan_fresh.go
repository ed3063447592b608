package engine

import (
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// downloadFresh streams the new messages of a mailbox a fresh replica scans (nothing to
// match them with) into the store: each body goes to the store as it arrives (BodyStager)
// and the records are committed every freshCommit messages (the mailbox's UIDVALIDITY
// with the first), so memory stays flat however large the mailbox, and no transaction
// waits for the network. The commits run beside the download (freshCommitter): while a
// batch's files are synced and its records committed, the next batch arrives. A failure
// rolls back only the batch in progress; the batches read before it are committed, as if
// each had been committed before the next was read.
func (r *round) downloadFresh(mailbox string, validity uint32, uids []uint32, opts *imap.FetchOptions) error {
	const perCommand, freshCommit = 2000, 100
	sortUIDs(uids)
	c := r.commitFresh(mailbox, validity)
	for i := 0; i < len(uids); i += perCommand {
		fs := r.cn.fetchStream(mailbox, uidSet(uids[i:min(i+perCommand, len(uids))]), opts)
		for more := true; more; {
			batch, err := r.freshBatch(fs, freshCommit)
			if err == nil && len(batch) > 0 {
				err = c.put(batch)
			}
			if err != nil {
				fs.abort()
				r.dropStaged(batch)
				return c.stop(err)
			}
			more = len(batch) > 0
		}
		if err := fs.close(); err != nil {
			return c.stop(err)
		}
	}
	return c.stop(nil)
}

// freshCommitter commits the batches of downloadFresh, in order, in a goroutine of its
// own.
type freshCommitter struct {
	batches chan []*serverMsg
	failed  chan struct{} // closed when a commit failed: put refuses more
	done    chan struct{} // closed when the goroutine ended; err is then set
	err     error
	changes int // records created, counted into the round's stats by stop
	r       *round
}

// commitFresh starts the committer of a fresh download into mailbox.
func (r *round) commitFresh(mailbox string, validity uint32) *freshCommitter {
	c := &freshCommitter{batches: make(chan []*serverMsg, 1), failed: make(chan struct{}), done: make(chan struct{}), r: r}
	go func() {
		defer close(c.done)
		for batch := range c.batches {
			c.err = r.update(func(tx Tx) error { return createFresh(tx, mailbox, validity, batch) })
			r.dropStaged(batch) // what a failed transaction did not take
			if c.err != nil {
				close(c.failed) // and take no more: stop drops what put let in meanwhile
				return
			}
			c.changes += len(batch)
		}
	}()
	return c
}

// createFresh stores a batch of downloaded messages as new records of mailbox.
func createFresh(tx Tx, mailbox string, validity uint32, batch []*serverMsg) error {
	if err := setValidity(tx, mailbox, validity); err != nil {
		return err
	}
	for _, s := range batch {
		if _, err := storeNew(tx, mailbox, s); err != nil {
			return err
		}
	}
	return nil
}

// put hands a batch to the committer; after a failed commit it refuses it with the
// commit's error (stop returns it) and the caller drops its staged bodies.
func (c *freshCommitter) put(batch []*serverMsg) error {
	select {
	case <-c.failed:
		return errCommitFailed
	default:
	}
	select {
	case c.batches <- batch:
		return nil
	case <-c.failed:
		return errCommitFailed
	}
}

var errCommitFailed = errors.New("engine: an earlier commit failed")

// stop waits for the batches handed over to be committed and returns what failed: a
// commit, the download (err), or both.
func (c *freshCommitter) stop(err error) error {
	close(c.batches)
	<-c.done
	for batch := range c.batches { // left after a failed commit
		c.r.dropStaged(batch)
	}
	c.r.st.LocalChanges += c.changes
	switch {
	case c.err == nil:
		return err
	case err == nil || errors.Is(err, errCommitFailed):
		return c.err
	default:
		return errors.Join(c.err, err)
	}
}

// freshBatch reads up to n messages of fs (none at the end of the answer), each body
// handed to the store as it comes.
func (r *round) freshBatch(fs *fetchStream, n int) ([]*serverMsg, error) {
	var batch []*serverMsg
	for len(batch) < n {
		buf, err := fs.next()
		if err != nil || buf == nil {
			return batch, err
		}
		for _, s := range r.quirkNewMail(describeMsgs([]*imapclient.FetchMessageBuffer{buf}, 1)) {
			if !s.hashed {
				continue
			}
			r.st.Downloaded++
			r.st.BytesFetched += int64(len(s.body))
			if err := r.stage(s); err != nil {
				return batch, err
			}
			batch = append(batch, s)
		}
	}
	return batch, nil
}
