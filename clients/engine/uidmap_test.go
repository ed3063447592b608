package engine

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
)

// A uidMap answers as a Go map does, whichever representation it picked: UIDs inside and
// beyond the dense range (a server may announce UIDs at or past its UIDNEXT), values
// overwritten, and iteration in ascending UID order.
func TestUIDMapAnswersAsAMap(t *testing.T) {
	for _, c := range []struct {
		name        string
		limit       uint32
		hint        int
		dense       bool
		maxUID      uint32
		assignments int
	}{
		{"dense", 5000, 3000, true, 6000, 4000},
		{"sparse range", 1 << 30, 100, false, 1 << 31, 300},
		{"zero value", 0, 0, false, 1000, 500},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			rng := rand.New(rand.NewPCG(1, uint64(c.limit)))
			m := newUIDMap[int](c.limit, c.hint)
			g.Expect(m.vals != nil).To(Equal(c.dense), "representation chosen")
			want := map[uint32]int{}
			for i := range c.assignments {
				u := rng.Uint32N(c.maxUID)
				m.set(u, i)
				want[u] = i
			}
			g.Expect(m.len()).To(Equal(len(want)))
			probes := slices.Collect(maps.Keys(want))
			for range 2000 {
				probes = append(probes, rng.Uint32N(c.maxUID), rng.Uint32())
			}
			for _, u := range probes {
				v, ok := m.get(u)
				w, wok := want[u]
				g.Expect(ok).To(Equal(wok), "UID %d present", u)
				g.Expect(v).To(Equal(w), "UID %d value", u)
				g.Expect(m.contains(u)).To(Equal(wok))
			}
			var order []uint32
			got := map[uint32]int{}
			for u, v := range m.all() {
				order = append(order, u)
				got[u] = v
			}
			g.Expect(got).To(Equal(want))
			g.Expect(slices.IsSorted(order)).To(BeTrue(), "ascending UID order")
			g.Expect(order).To(Equal(slices.Sorted(maps.Keys(want))))
			g.Expect(slices.Collect(m.keys())).To(Equal(order))
		})
	}
}
