package check

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ServerRead is the server's state as the harness read it itself (after a step, for the
// timeline; for an expect; the final read), at Time on the transcripts' clock. S3 holds
// for whoever reads the server: a mailbox name, its UIDVALIDITY and a UID that show other
// content than they showed before (on a device's connection or in an earlier read) are an
// S3 finding even when no device fetched the message again, as happens when two folders
// with one UIDVALIDITY swap names and the engines only look at flags.
type ServerRead struct {
	Time  time.Duration
	What  string // what the read was for, e.g. "after line 12"
	State ServerState
}

// ReadsDevice is the name findings on the harness's own reads carry as their device.
const ReadsDevice = "harness"

func sortedReads(reads []ServerRead) []ServerRead {
	out := append([]ServerRead(nil), reads...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}

// read judges one of the harness's reads of the server against what the transcripts and
// earlier reads showed under the same mailbox name, UIDVALIDITY and UID.
func (w *wireChecker) read(r ServerRead) {
	w.now = r.Time
	if w.readHashes == nil {
		w.readHashes = map[uidKey]string{}
	}
	where := fmt.Sprintf("the harness's read %s", r.What)
	l := WireLine{Device: ReadsDevice, Dir: 'S', Time: r.Time}
	for _, mb := range r.State.Mailboxes {
		if mb.UIDValidity == 0 {
			continue
		}
		for _, m := range mb.Messages {
			k := uidKey{mb.Name, mb.UIDValidity, m.UID}
			id := ""
			if m.MessageID != "" {
				id = "<" + strings.Trim(m.MessageID, "<>") + ">"
			}
			prev := w.contents[k]
			if prev == nil {
				w.contents[k] = &uidContent{size: m.Size, sections: map[string]int64{}, msgID: id, where: where}
				w.readHashes[k] = m.Hash
				continue
			}
			var what string
			switch {
			case id != "" && prev.msgID != "" && strings.Trim(prev.msgID, "<>") != strings.Trim(id, "<>"):
				what = fmt.Sprintf("Message-ID %s, then %s", prev.msgID, id)
			case m.Size > 0 && prev.size >= 0 && prev.size != m.Size:
				what = fmt.Sprintf("RFC822.SIZE %d, then %d", prev.size, m.Size)
			case m.Hash != "" && w.readHashes[k] != "" && w.readHashes[k] != m.Hash:
				what = fmt.Sprintf("content %.8s, then %.8s", w.readHashes[k], m.Hash)
			}
			if what != "" {
				l.Text = fmt.Sprintf("%s: UID %d of %s (UIDVALIDITY %d)", r.What, m.UID, mb.Name, mb.UIDValidity)
				w.reportCmd(S3UIDReuse, l, "(the harness's own read)", mb.Name,
					fmt.Sprintf("UID %d in %s (UIDVALIDITY %d) names two messages: %s (first seen on %s)", m.UID, dashed(mb.Name), mb.UIDValidity, what, prev.where))
				// Judge later reads against this content: the same change is reported once.
				w.contents[k] = &uidContent{size: m.Size, sections: map[string]int64{}, msgID: id, where: where}
				w.readHashes[k] = m.Hash
				continue
			}
			if prev.msgID == "" {
				prev.msgID = id
			}
			if prev.size < 0 && m.Size > 0 {
				prev.size = m.Size
			}
			if w.readHashes[k] == "" {
				w.readHashes[k] = m.Hash
			}
		}
	}
}
