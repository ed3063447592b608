package fakeserver

import (
	"bufio"
	"bytes"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// fetched is what FETCH writes for one message, copied out under the user's lock so that
// the connection is written without holding it.
type fetched struct {
	seq   uint32
	uid   uint32
	flags []string
	date  time.Time
	body  []byte
}

// Fetch writes message data. Fetching a body section without PEEK sets \Seen (RFC 3501
// 6.4.5) unless the mailbox is read-only, and then reports the new flags.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if err := s.begin(cmdName("FETCH", numSet)); err != nil {
		return err
	}
	markSeen := false
	if !s.readOnly {
		for _, bs := range options.BodySection {
			markSeen = markSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			markSeen = markSeen || !bs.Peek
		}
	}
	u := s.user
	u.mu.Lock()
	if err := s.selected(); err != nil {
		u.mu.Unlock()
		return err
	}
	m := s.mbox
	targets := s.resolve(numSet)
	out := make([]fetched, 0, len(targets))
	var seen []uint32
	next := 0 // targets come in UID order, mostly: try the message after the last first
	for _, t := range targets {
		i, ok := next, next < len(m.msgs) && m.msgs[next].uid == t.uid
		if !ok {
			i, ok = m.find(t.uid)
		}
		if !ok {
			continue // expunged; the client has not been told yet
		}
		next = i + 1
		msg := m.msgs[i]
		if markSeen && !hasFlag(msg.flags, `\Seen`) {
			u.setFlags(m, msg, applyStore(msg.flags, storeAdd, []string{`\Seen`}), s)
			seen = append(seen, msg.uid)
		}
		out = append(out, fetched{seq: t.seq, uid: msg.uid, flags: msg.flags, date: msg.date, body: msg.body})
	}
	if len(seen) > 0 {
		s.srv.record(Event{User: u.name, Session: s.id, Kind: "store", Mailbox: m.name, UIDs: seen, Flags: []string{`\Seen`}, UIDValidity: m.uidValidity, Detail: "+FLAGS by FETCH"})
	}
	if options.Flags || markSeen {
		s.supersede(out)
	}
	u.mu.Unlock()

	for _, f := range out {
		if err := writeFetched(w, &f, options, markSeen); err != nil {
			return err
		}
	}
	return nil
}

func writeFetched(w *imapserver.FetchWriter, f *fetched, options *imap.FetchOptions, withFlags bool) error {
	rw := w.CreateMessage(f.seq)
	rw.WriteUID(imap.UID(f.uid))
	if options.Flags || withFlags {
		rw.WriteFlags(toFlags(f.flags))
	}
	if options.InternalDate {
		rw.WriteInternalDate(f.date)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(int64(len(f.body)))
	}
	if options.Envelope {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(f.body)))
		if err == nil {
			rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
		} else {
			rw.WriteEnvelope(&imap.Envelope{})
		}
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(f.body)))
	}
	for _, bs := range options.BodySection {
		buf := f.body
		if bs.Specifier != imap.PartSpecifierNone || len(bs.Part) > 0 || bs.Partial != nil || len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
			buf = imapserver.ExtractBodySection(bytes.NewReader(f.body), bs)
		}
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(buf))), buf); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		buf := imapserver.ExtractBinarySection(bytes.NewReader(f.body), bs)
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(buf))), buf); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(f.body), bss))
	}
	return rw.Close()
}

func writeLiteral(wc interface {
	Write([]byte) (int, error)
	Close() error
}, buf []byte) error {
	_, werr := wc.Write(buf)
	cerr := wc.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// Store changes flags and, unless .SILENT, writes the resulting flags.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	if err := s.begin(cmdName("STORE", numSet)); err != nil {
		return err
	}
	var fl []string
	for _, f := range flags.Flags {
		fl = append(fl, string(f))
	}
	fl = normalizeFlags(fl)
	op := storeSet
	detail := "FLAGS"
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op, detail = storeAdd, "+FLAGS"
	case imap.StoreFlagsDel:
		op, detail = storeDel, "-FLAGS"
	}
	u := s.user
	u.mu.Lock()
	if err := s.selected(); err != nil {
		u.mu.Unlock()
		return err
	}
	if s.readOnly {
		u.mu.Unlock()
		return errNo(codeReadOnly, "Mailbox is read-only")
	}
	m := s.mbox
	targets := s.resolve(numSet)
	out := make([]fetched, 0, len(targets))
	var changed []uint32
	for _, t := range targets {
		i, ok := m.find(t.uid)
		if !ok {
			continue
		}
		msg := m.msgs[i]
		if u.setFlags(m, msg, applyStore(msg.flags, op, fl), s) {
			changed = append(changed, msg.uid)
		}
		out = append(out, fetched{seq: t.seq, uid: msg.uid, flags: msg.flags})
	}
	if len(changed) > 0 {
		s.srv.record(Event{User: u.name, Session: s.id, Kind: "store", Mailbox: m.name, UIDs: changed, Flags: fl, UIDValidity: m.uidValidity, Detail: detail})
	}
	if !flags.Silent {
		s.supersede(out)
	}
	u.mu.Unlock()
	if flags.Silent {
		return nil
	}
	for _, f := range out {
		rw := w.CreateMessage(f.seq)
		rw.WriteUID(imap.UID(f.uid))
		rw.WriteFlags(toFlags(f.flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}
