package check_test

import (
	"fmt"
	"testing"

	"github.com/syncharness/syncharness/harness/check"
)

// bigInput: 50,000 messages in 5 mailboxes, 4 devices that converged after reading,
// flagging and moving some of them, partly in a concurrently block.
func bigInput(tb testing.TB) check.Input {
	devices := []string{"phone", "laptop", "tablet", "desktop"}
	names := []string{"A", "B", "C", "D", "INBOX"}
	var h []check.Op
	for _, n := range names[:4] {
		h = append(h, op("setup", "create", n))
	}
	boxes := make([][]msg, len(names))
	for i := 0; i < 50000; i++ {
		b := i % len(names)
		label := fmt.Sprintf("m%d", i)
		h = append(h, op("setup", "deliver", names[b], label))
		boxes[b] = append(boxes[b], m(label))
	}
	for _, d := range devices {
		h = append(h, sync(d))
	}
	// phone reads the first 1,000 of INBOX; laptop moves the next 500 to A; tablet flags
	// 500 of B; desktop deletes 500 of C; they sync at once.
	inbox := boxes[4]
	for i := 0; i < 1000; i++ {
		h = append(h, op("phone", "read", "INBOX", inbox[i].label))
		inbox[i].flags = []string{`\Seen`}
	}
	var moved []msg
	for i := 1000; i < 1500; i++ {
		h = append(h, dest(op("laptop", "move", "INBOX", inbox[i].label), "A"))
		moved = append(moved, inbox[i])
	}
	boxes[4] = append(inbox[:1000:1000], inbox[1500:]...)
	boxes[0] = append(boxes[0], moved...)
	for i := 0; i < 500; i++ {
		h = append(h, flag(op("tablet", "flag", "B", boxes[1][i].label), `\Flagged`))
		boxes[1][i].flags = []string{`\Flagged`}
	}
	for i := 0; i < 500; i++ {
		h = append(h, op("desktop", "delete", "C", boxes[2][i].label))
	}
	boxes[2] = boxes[2][500:]
	h = append(h, group(1, sync("phone"), sync("laptop"), sync("tablet"), sync("desktop"))...)
	var mbs []mbox
	for i, n := range names {
		mbs = append(mbs, box(n, boxes[i]...))
	}
	return input(serverOf(mbs...), h, devices...)
}

func TestBigInputConverges(t *testing.T) {
	if rs := check.Check(bigInput(t)); len(rs) != 0 {
		t.Fatalf("expected no failures, got %d, first: %+v", len(rs), rs[0])
	}
}

func BenchmarkCheck50k(b *testing.B) {
	in := bigInput(b)
	b.ResetTimer()
	for b.Loop() {
		if rs := check.Check(in); len(rs) != 0 {
			b.Fatalf("%d failures, first: %+v", len(rs), rs[0])
		}
	}
}
