package harness_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/proxy"
)

var _ = Describe("The engine's CONDSTORE path on Dovecot", Label("dovecot"), func() {
	It("asks with CHANGEDSINCE, and a round with no change on 2,000 messages fetches no message", func(ctx SpecContext) {
		// Four times the engine's largest batch (500 UIDs): every batched path runs, and a
		// round that fetched even one message more than it should would show. The engine's
		// speed on large mailboxes is measured by `make bench`, not here.
		const n = 2000
		srv := startDovecot(ctx)
		alice := srv.Users[0]
		t := dovecotTarget(srv, "condstore")
		DeferCleanup(func(ctx context.Context) { Expect(t.Close(ctx)).To(Succeed()) })
		s, err := t.Open(ctx, harness.ServerConfig{Scenario: "big"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Close)

		// Fill the mailbox by writing the Maildir files directly: 2,000 APPENDs would take
		// most of the time of the spec.
		dir, err := srv.MailboxPath(ctx, alice.Name, "syncharness-condstore/big/INBOX")
		Expect(err).NotTo(HaveOccurred())
		uid, gid := ownerOf(dir)
		start := time.Now().Unix()
		for i := range n {
			raw := clients.MakeMessage(clients.MessageSpec{Label: fmt.Sprintf("m%05d", i), Run: "big"})
			path := filepath.Join(dir, "cur", fmt.Sprintf("%d.M%dP1Q%d.syncharness:2,S", start, i, i))
			Expect(os.WriteFile(path, raw, 0o600)).To(Succeed())
			Expect(os.Chown(path, uid, gid)).To(Succeed())
		}

		p, err := proxy.New(proxy.Options{Name: "phone", Upstream: s.Dial})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		user, pass := s.Credentials()
		dev, err := harness.EngineDevice(ctx, harness.DeviceConfig{Name: "phone", Dial: p.Dial, Username: user, Password: pass, Dir: GinkgoT().TempDir()})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(dev.Close)

		began := time.Now()
		_, err = dev.Sync(ctx)
		Expect(err).NotTo(HaveOccurred())
		first := time.Since(began)
		view, err := dev.View(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(view.Mailboxes).To(HaveLen(1))
		Expect(view.Mailboxes[0].Messages).To(HaveLen(n))

		from := len(p.Transcript())
		began = time.Now()
		stats, err := dev.Sync(ctx)
		Expect(err).NotTo(HaveOccurred())
		quiet := time.Since(began)
		Expect(stats.Changed()).To(BeFalse())
		round := p.Transcript()[from:]
		fetches := func(lines []proxy.Line) (withoutChangedSince, withChangedSince, answers int) {
			for _, l := range lines {
				upper := strings.ToUpper(l.Text)
				switch {
				case l.Dir == proxy.DirClient && strings.Contains(upper, " FETCH ") && strings.Contains(upper, "CHANGEDSINCE"):
					withChangedSince++
				case l.Dir == proxy.DirClient && strings.Contains(upper, " FETCH "):
					withoutChangedSince++
				case l.Dir == proxy.DirServer && fetchAnswer.MatchString(upper):
					answers++
				}
			}
			return
		}
		without, _, answers := fetches(round)
		Expect(without).To(BeZero(), "a FETCH without CHANGEDSINCE in a round with no change")
		Expect(answers).To(BeZero(), "a message was fetched in a round with no change")
		GinkgoWriter.Printf("2,000 messages on Dovecot: first sync %v, a round with no change %v (%d protocol lines)\n", first, quiet, len(round))

		// Another client flags one message: the next round asks for what changed since its
		// HIGHESTMODSEQ and gets that one message.
		Expect(s.Do(ctx, harness.ServerOp{Kind: "flag", Mailbox: "INBOX", Labels: []string{"m01242"}, Flag: `\Flagged`})).To(Succeed())
		from = len(p.Transcript())
		_, err = dev.Sync(ctx)
		Expect(err).NotTo(HaveOccurred())
		without, with, answers := fetches(p.Transcript()[from:])
		Expect(with).To(BeNumerically(">=", 1), "no FETCH with CHANGEDSINCE")
		Expect(without).To(BeZero())
		// The changed message, perhaps twice (an unsolicited FETCH and the CHANGEDSINCE
		// answer), never the other 1,999.
		Expect(answers).To(And(BeNumerically(">=", 1), BeNumerically("<=", 2)))
	})
})

// fetchAnswer matches a FETCH response line.
var fetchAnswer = regexp.MustCompile(`^\* \d+ FETCH`)

// ownerOf returns the owner of path.
func ownerOf(path string) (uid, gid int) {
	GinkgoHelper()
	fi, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
