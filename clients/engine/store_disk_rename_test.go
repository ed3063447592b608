package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/maildir"
)

// The renames that run beside a commit are put back when the commit fails: each file gets
// the name it had, and a file whose earlier name is unknown keeps the new one (the next
// open repairs it from the records).
func TestDiskStoreUndoesRenamesOfAFailedCommit(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	s, err := OpenDiskStore(dir)
	g.Expect(err).NotTo(HaveOccurred())
	defer s.Close()
	names := func() []string {
		entries, err := os.ReadDir(filepath.Join(dir, "Maildir", "cur"))
		g.Expect(err).NotTo(HaveOccurred())
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		slices.Sort(out)
		return out
	}
	var keys []string
	for _, f := range []maildir.Flags{0, maildir.Seen, 0} {
		b, err := s.StageBody([]byte("Subject: x\r\n\r\nbody\r\n"))
		g.Expect(err).NotTo(HaveOccurred())
		m := b.(stagedFile).f
		if f != 0 {
			_, err = s.md.SetFlagsFrom(m.Key, 0, f)
			g.Expect(err).NotTo(HaveOccurred())
		}
		keys = append(keys, m.Key)
	}
	before := names()
	renames := map[string]rename{
		keys[0]: {was: namedAs{flags: 0, known: true}, to: maildir.Flagged},
		keys[1]: {was: namedAs{flags: maildir.Seen, known: true}, to: 0},
		keys[2]: {was: namedAs{}, to: maildir.Seen}, // named as the open found it
	}
	applied := <-s.renameFiles(renames)
	g.Expect(applied.errs).To(BeEmpty())
	g.Expect(applied.done).To(HaveLen(3))
	g.Expect(names()).To(ConsistOf(keys[0]+":2,F", keys[1]+":2,", keys[2]+":2,S"))

	g.Expect(before).To(ConsistOf(keys[0]+":2,", keys[1]+":2,S", keys[2]+":2,"))
	g.Expect(s.undoRenames(applied.done)).To(BeEmpty())
	g.Expect(names()).To(ConsistOf(keys[0]+":2,", keys[1]+":2,S", keys[2]+":2,S"))
}
