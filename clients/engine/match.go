package engine

import (
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// serverMsg is what the engine learned of one server message.
type serverMsg struct {
	uid    uint32
	size   uint32
	date   int64
	msgID  string
	flags  Flags
	body   []byte
	hashed bool
	hash   [32]byte
	taken  bool
	// staged holds the body once the store took it (BodyStager), body is then nil and rec
	// the record's fields that come from the body.
	staged StagedBody
	rec    MessageRecord
}

var msgIDSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"}, Peek: true}

var bodySection = &imap.FetchItemBodySection{Peek: true}

// describeMsgs turns FETCH results (of headers or whole bodies) into serverMsgs.
func describeMsgs(bufs []*imapclient.FetchMessageBuffer, min uint32) []*serverMsg {
	out := make([]*serverMsg, 0, len(bufs))
	for _, b := range bufs {
		if uint32(b.UID) < min || b.UID == 0 {
			continue // `n:*` also returns the last message when n is beyond it
		}
		s := &serverMsg{uid: uint32(b.UID), size: uint32(b.RFC822Size), flags: ParseFlags(flagStrings(b.Flags))}
		if !b.InternalDate.IsZero() {
			s.date = b.InternalDate.Unix()
		}
		for _, sec := range b.BodySection {
			if len(sec.Section.HeaderFields) > 0 {
				s.msgID = clients.MessageID(sec.Bytes)
			} else {
				s.setBody(sec.Bytes)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].uid < out[j].uid })
	return out
}

// stage hands s's body to the store now, where the store takes bodies before their
// transaction (BodyStager), so that the round holds none of them in memory.
func (r *round) stage(s *serverMsg) error {
	st, ok := r.e.opts.Store.(BodyStager)
	if !ok || s.body == nil {
		return nil
	}
	b, err := st.StageBody(s.body)
	if err != nil {
		return &storeError{err}
	}
	s.rec = MessageRecord{Size: uint32(len(s.body)), Hash: s.hash, MessageID: clients.MessageID(s.body), Label: clients.Label(s.body)}
	if _, copies := st.(stagesCopies); copies {
		r.cn.recycle(s.body)
	}
	s.staged, s.body = b, nil
	return nil
}

// dropStaged lets go the staged bodies of msgs that no record took.
func (r *round) dropStaged(msgs []*serverMsg) {
	st, ok := r.e.opts.Store.(BodyStager)
	if !ok {
		return
	}
	for _, s := range msgs {
		if s.staged != nil {
			st.DropStaged(s.staged)
			s.staged = nil
		}
	}
}

func (s *serverMsg) setBody(b []byte) {
	s.body = b
	s.hash = contentHash(b)
	s.hashed = true
	if s.msgID == "" {
		s.msgID = clients.MessageID(b)
	}
	if s.size == 0 {
		s.size = uint32(len(b))
	}
}

type idKey struct {
	id   string
	size uint32
}

// pairByID pairs records with server messages whose (Message-ID, size) they share, where
// that key is unique on both sides. Shared or missing Message-IDs are never identity.
func pairByID(recs []MessageRecord, msgs []*serverMsg) map[LocalID]*serverMsg {
	out := map[LocalID]*serverMsg{}
	rc := map[idKey]int{}
	for _, m := range recs {
		if m.MessageID != "" {
			rc[idKey{m.MessageID, m.Size}]++
		}
	}
	mc := map[idKey][]*serverMsg{}
	for _, s := range msgs {
		if s.msgID != "" && !s.taken {
			k := idKey{s.msgID, s.size}
			mc[k] = append(mc[k], s)
		}
	}
	for _, m := range recs {
		k := idKey{m.MessageID, m.Size}
		if m.MessageID == "" || rc[k] != 1 || len(mc[k]) != 1 || mc[k][0].taken {
			continue
		}
		mc[k][0].taken = true
		out[m.ID] = mc[k][0]
	}
	return out
}

// confirmedByDate reports whether server message s, paired with record m by (Message-ID,
// size), is m's content without a download: its INTERNALDATE is the one m has. COPY and
// MOVE keep a message's INTERNALDATE (RFC 3501 §6.4.7; a MOVE is a COPY and an EXPUNGE,
// RFC 6851), and so do the UIDVALIDITY changes servers make; a new APPEND gets the time it
// is made, or the date its client gives. So a draft saved again under the same Message-ID
// and at the same size is told from its old text (unless both were saved in the same
// second with the same date), and a move or a UIDVALIDITY change costs no download.
func confirmedByDate(m MessageRecord, s *serverMsg) bool {
	return s.date != 0 && s.date == m.InternalDate
}

// unconfirmed returns the server messages of pairs (made by pairByID for recs) whose
// content the INTERNALDATE does not vouch for and whose body is not here yet: their bodies
// must be downloaded and compared (dropMismatched) before the pairs stand.
func unconfirmed(recs []MessageRecord, pairs map[LocalID]*serverMsg) []*serverMsg {
	var out []*serverMsg
	for _, m := range recs {
		if s, ok := pairs[m.ID]; ok && !s.hashed && !confirmedByDate(m, s) {
			out = append(out, s)
		}
	}
	return out
}

// dropMismatched undoes the pairs of recs whose server message, downloaded, has other
// content than the record: the same Message-ID and size but other bytes (a draft saved
// again). The server message is then free for pairByHash or is a new message; the record
// is not that message.
func dropMismatched(recs []MessageRecord, pairs map[LocalID]*serverMsg) {
	for _, m := range recs {
		if s, ok := pairs[m.ID]; ok && s.hashed && s.hash != m.Hash {
			delete(pairs, m.ID)
			s.taken = false
		}
	}
}

// pairByHash pairs records with hashed server messages of the same content, as multisets
// (in record order and UID order).
func pairByHash(recs []MessageRecord, msgs []*serverMsg, out map[LocalID]*serverMsg) {
	byHash := map[[32]byte][]*serverMsg{}
	for _, s := range msgs {
		if s.hashed && !s.taken {
			byHash[s.hash] = append(byHash[s.hash], s)
		}
	}
	for _, m := range recs {
		if _, done := out[m.ID]; done {
			continue
		}
		list := byHash[m.Hash]
		for len(list) > 0 && list[0].taken {
			list = list[1:]
		}
		if len(list) == 0 {
			continue
		}
		list[0].taken = true
		out[m.ID] = list[0]
		byHash[m.Hash] = list[1:]
	}
}

// fetchBodies downloads the bodies of msgs that have none, in batches.
func (r *round) fetchBodies(mailbox string, msgs []*serverMsg) error {
	const maxBatch = 500
	var batch []uint32
	bytes := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		bufs, err := r.cn.fetch(mailbox, uidSet(batch), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{bodySection}})
		if err != nil {
			return err
		}
		got := map[uint32][]byte{}
		for _, b := range bufs {
			for _, sec := range b.BodySection {
				got[uint32(b.UID)] = sec.Bytes
			}
		}
		for _, s := range msgs {
			if b, ok := got[s.uid]; ok && !s.hashed {
				s.setBody(b)
				r.st.BytesFetched += int64(len(b))
				r.st.Downloaded++
				if err := r.stage(s); err != nil {
					return err
				}
			}
		}
		batch, bytes = batch[:0], 0
		return nil
	}
	for _, s := range msgs {
		if s.hashed {
			continue
		}
		batch = append(batch, s.uid)
		bytes += int(s.size)
		if len(batch) >= maxBatch || bytes >= batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// locate looks for the messages of entries (recs by local id) in mailbox among the UIDs
// from the entries' saved UIDNEXT on that no local record claims: by Message-ID and size,
// then by content. It returns local id → UID, or errSkip when the local records of mailbox
// hold UIDs of an old UIDVALIDITY (the scan matches them again first).
func (r *round) locate(mailbox string, entries []JournalEntry, recs map[LocalID]MessageRecord) (map[LocalID]uint32, error) {
	data, err := r.cn.reselect(mailbox)
	if err != nil {
		return nil, err
	}
	if stale, err := r.staleUIDs(mailbox, data.UIDValidity); err != nil {
		return nil, err
	} else if stale {
		return nil, errSkip
	}
	found := map[LocalID]uint32{}
	if data.NumMessages == 0 {
		return found, nil
	}
	from := uint32(0)
	for _, en := range entries {
		f := en.UIDNext
		if en.UIDValidity != data.UIDValidity || f == 0 {
			f = 1
		}
		if from == 0 || f < from {
			from = f
		}
	}
	known := map[uint32]bool{}
	if err := r.view(func(tx Tx) error {
		msgs, err := tx.Messages(mailbox)
		for _, m := range msgs {
			if m.UID != 0 {
				known[m.UID] = true
			}
		}
		return err
	}); err != nil {
		return nil, err
	}
	set := imap.UIDSet{imap.UIDRange{Start: imap.UID(from), Stop: 0}}
	bufs, err := r.cn.fetch(mailbox, set, &imap.FetchOptions{RFC822Size: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{msgIDSection}})
	if err != nil {
		return nil, err
	}
	var cands []*serverMsg
	for _, s := range describeMsgs(bufs, from) {
		if !known[s.uid] {
			cands = append(cands, s)
		}
	}
	var want []MessageRecord
	sizes := map[uint32]bool{}
	for _, en := range entries {
		want = append(want, recs[en.Message])
		sizes[recs[en.Message].Size] = true
	}
	pairs := pairByID(want, cands)
	need := unconfirmed(want, pairs)
	if len(pairs) < len(want) || len(need) > 0 {
		for _, s := range cands {
			if !s.taken && sizes[s.size] {
				need = append(need, s)
			}
		}
		if err := r.fetchBodies(mailbox, need); err != nil {
			return nil, err
		}
		dropMismatched(want, pairs)
		pairByHash(want, cands, pairs)
	}
	for id, s := range pairs {
		found[id] = s.uid
		r.located[id] = s.flags
	}
	return found, nil
}
