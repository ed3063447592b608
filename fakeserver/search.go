package fakeserver

import (
	"bytes"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Search evaluates criteria over the messages of the session's view.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	cmd := "SEARCH"
	if kind == imapserver.NumKindUID {
		cmd = "UID SEARCH"
	}
	if err := s.begin(cmd); err != nil {
		return nil, err
	}
	u := s.user
	u.mu.Lock()
	if err := s.selected(); err != nil {
		u.mu.Unlock()
		return nil, err
	}
	m := s.mbox
	var nums []uint32
	for i, uid := range s.view {
		j, ok := m.find(uid)
		if !ok {
			continue
		}
		if matches(m.msgs[j], uint32(i+1), criteria) {
			if kind == imapserver.NumKindUID {
				nums = append(nums, uid)
			} else {
				nums = append(nums, uint32(i+1))
			}
		}
	}
	u.mu.Unlock()

	data := &imap.SearchData{Count: uint32(len(nums))}
	if len(nums) > 0 {
		data.Min, data.Max = nums[0], nums[len(nums)-1]
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSetOf(nums)
	} else {
		data.All = seqSetOf(nums)
	}
	return data, nil
}

func matches(msg *message, seq uint32, c *imap.SearchCriteria) bool {
	for _, set := range c.SeqNum {
		if !set.Contains(seq) {
			return false
		}
	}
	for _, set := range c.UID {
		if !set.Contains(imap.UID(msg.uid)) {
			return false
		}
	}
	day := truncateDay(msg.date)
	if !c.Since.IsZero() && day.Before(truncateDay(c.Since)) {
		return false
	}
	if !c.Before.IsZero() && !day.Before(truncateDay(c.Before)) {
		return false
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		sent, ok := sentDate(msg.body)
		if !ok {
			return false
		}
		if !c.SentSince.IsZero() && sent.Before(truncateDay(c.SentSince)) {
			return false
		}
		if !c.SentBefore.IsZero() && !sent.Before(truncateDay(c.SentBefore)) {
			return false
		}
	}
	for _, f := range c.Flag {
		if !hasFlag(msg.flags, canonicalFlag(string(f))) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(msg.flags, canonicalFlag(string(f))) {
			return false
		}
	}
	size := int64(len(msg.body))
	if c.Larger > 0 && size <= c.Larger {
		return false
	}
	if c.Smaller > 0 && size >= c.Smaller {
		return false
	}
	header := bodyHeader(msg.body)
	for _, h := range c.Header {
		if !headerMatches(header, h.Key, h.Value) {
			return false
		}
	}
	for _, b := range c.Body {
		if !containsFold(msg.body[len(header):], b) {
			return false
		}
	}
	for _, t := range c.Text {
		if !containsFold(msg.body, t) {
			return false
		}
	}
	for i := range c.Not {
		if matches(msg, seq, &c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !matches(msg, seq, &c.Or[i][0]) && !matches(msg, seq, &c.Or[i][1]) {
			return false
		}
	}
	return true
}

func truncateDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func sentDate(body []byte) (time.Time, bool) {
	msg, err := mail.ReadMessage(bytes.NewReader(bodyHeader(body)))
	if err != nil {
		return time.Time{}, false
	}
	t, err := msg.Header.Date()
	if err != nil {
		return time.Time{}, false
	}
	return truncateDay(t), true
}

// headerMatches reports whether a header field named key contains value (case-insensitive).
func headerMatches(header []byte, key, value string) bool {
	msg, err := mail.ReadMessage(bytes.NewReader(header))
	if err != nil {
		return false
	}
	vals, ok := msg.Header[mailKey(key)]
	if !ok {
		return false
	}
	for _, v := range vals {
		if strings.Contains(strings.ToLower(v), strings.ToLower(value)) {
			return true
		}
	}
	return false
}

func mailKey(k string) string {
	return textproto.CanonicalMIMEHeaderKey(k)
}

func containsFold(b []byte, s string) bool {
	return bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(s)))
}
