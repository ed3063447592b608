package engine

import (
	"iter"
	"maps"
	"slices"
)

// uidMap maps the UIDs of one mailbox to values. A scan looks UIDs up several times per
// message (a round that finds nothing changed on 50,000 messages without CONDSTORE does it
// hundreds of thousands of times), and UIDs are mostly dense below the mailbox's UIDNEXT:
// so the map is a slice indexed by UID when the range is small against the number of
// entries expected, and a Go map for the UIDs beyond it (or for all of them when the range
// is sparse, or the zero uidMap). A server that announces UIDs at or above its UIDNEXT only
// lands them in the Go map.
type uidMap[V any] struct {
	vals  []V
	in    []bool
	extra map[uint32]V
	n     int
}

// newUIDMap returns a uidMap for UIDs mostly below limit, about hint of them.
func newUIDMap[V any](limit uint32, hint int) uidMap[V] {
	// A dense slice costs a few bytes per UID of the range; a map entry some tens.
	if limit > 0 && uint64(limit) <= 4*uint64(max(hint, 0))+1024 && limit <= 1<<24 {
		return uidMap[V]{vals: make([]V, limit), in: make([]bool, limit)}
	}
	return uidMap[V]{}
}

func (m *uidMap[V]) get(u uint32) (V, bool) {
	if int64(u) < int64(len(m.vals)) {
		return m.vals[u], m.in[u]
	}
	v, ok := m.extra[u]
	return v, ok
}

func (m *uidMap[V]) contains(u uint32) bool {
	_, ok := m.get(u)
	return ok
}

func (m *uidMap[V]) set(u uint32, v V) {
	if int64(u) < int64(len(m.vals)) {
		if !m.in[u] {
			m.in[u], m.n = true, m.n+1
		}
		m.vals[u] = v
		return
	}
	if m.extra == nil {
		m.extra = map[uint32]V{}
	}
	if _, ok := m.extra[u]; !ok {
		m.n++
	}
	m.extra[u] = v
}

func (m *uidMap[V]) len() int { return m.n }

// all yields the entries in ascending UID order.
func (m *uidMap[V]) all() iter.Seq2[uint32, V] {
	return func(yield func(uint32, V) bool) {
		for u, ok := range m.in {
			if ok && !yield(uint32(u), m.vals[u]) {
				return
			}
		}
		for _, u := range slices.Sorted(maps.Keys(m.extra)) {
			if !yield(u, m.extra[u]) {
				return
			}
		}
	}
}

// keys yields the UIDs in ascending order.
func (m *uidMap[V]) keys() iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for u := range m.all() {
			if !yield(u) {
				return
			}
		}
	}
}
