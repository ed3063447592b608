package fakeserver

import (
	"slices"

	"github.com/emersion/go-imap/v2"
)

// A sequence set is resolved against this session's view (the messages it has been told
// about), never against the mailbox's current count: "*" is the last message the client
// knows, and a UID the client has not been told about is not addressed.

// target is one addressed message: its sequence number in the session's view and its UID.
type target struct {
	seq uint32
	uid uint32
}

// resolve returns the messages numSet addresses in the session's view, ascending.
func (s *session) resolve(numSet imap.NumSet) []target {
	switch set := numSet.(type) {
	case imap.SeqSet:
		return s.resolveSeqSet(set)
	case imap.UIDSet:
		return s.resolveUIDTargets(set)
	}
	return nil
}

// resolveUIDs is resolve without the sequence numbers.
func (s *session) resolveUIDs(numSet imap.NumSet) []uint32 {
	ts := s.resolve(numSet)
	out := make([]uint32, len(ts))
	for i, t := range ts {
		out[i] = t.uid
	}
	return out
}

// resolveUIDSet returns the UIDs of uids that are in the session's view.
func (s *session) resolveUIDSet(uids imap.UIDSet) []uint32 {
	return s.resolveUIDs(uids)
}

func (s *session) resolveSeqSet(set imap.SeqSet) []target {
	n := uint32(len(s.view))
	if n == 0 {
		return nil
	}
	var out []target
	for _, r := range set {
		start, stop := r.Start, r.Stop
		if start == 0 {
			start = n
		}
		if stop == 0 {
			stop = n
		}
		if start > stop {
			start, stop = stop, start
		}
		stop = min(stop, n)
		for seq := start; seq >= 1 && seq <= stop; seq++ {
			out = append(out, target{seq: seq, uid: s.view[seq-1]})
		}
	}
	return normalizeTargets(out, len(set))
}

func (s *session) resolveUIDTargets(set imap.UIDSet) []target {
	n := len(s.view)
	if n == 0 {
		return nil
	}
	last := s.view[n-1]
	var out []target
	for _, r := range set {
		start, stop := uint32(r.Start), uint32(r.Stop)
		if start == 0 {
			start = last
		}
		if stop == 0 {
			stop = last
		}
		if start > stop {
			start, stop = stop, start
		}
		i, _ := slices.BinarySearch(s.view, start)
		for ; i < n && s.view[i] <= stop; i++ {
			out = append(out, target{seq: uint32(i + 1), uid: s.view[i]})
		}
	}
	return normalizeTargets(out, len(set))
}

// normalizeTargets sorts and deduplicates targets gathered from several ranges.
func normalizeTargets(ts []target, ranges int) []target {
	if ranges <= 1 {
		return ts
	}
	slices.SortFunc(ts, func(a, b target) int { return int(a.seq) - int(b.seq) })
	return slices.CompactFunc(ts, func(a, b target) bool { return a.seq == b.seq })
}

// numRanges builds a compact set from ascending numbers.
func seqSetOf(nums []uint32) imap.SeqSet {
	set := imap.SeqSet{}
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		set = append(set, imap.SeqRange{Start: nums[i], Stop: nums[j]})
		i = j + 1
	}
	return set
}

func uidSetOf(nums []uint32) imap.UIDSet {
	set := imap.UIDSet{}
	for _, r := range seqSetOf(nums) {
		set = append(set, imap.UIDRange{Start: imap.UID(r.Start), Stop: imap.UID(r.Stop)})
	}
	return set
}
