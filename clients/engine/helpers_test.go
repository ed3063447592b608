package engine_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

const (
	user     = "alice"
	password = "secret"
	run      = "t1"
)

// world is one account on a fake server and the devices syncing it.
type world struct {
	srv  *fakeserver.Server
	addr string
	// dial connects to the server; tests may wrap it.
	dial func(ctx context.Context) (net.Conn, error)
	// store opens a device's store.
	store func() engine.Store
}

// A storeKind is a Store implementation the engine specs run against.
type storeKind struct {
	name string
	open func() engine.Store
}

var storeKinds = []storeKind{
	{"memory", func() engine.Store { return engine.NewMemoryStore() }},
	{"disk", func() engine.Store {
		GinkgoHelper()
		s, err := engine.OpenDiskStore(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		return s
	}},
}

func newWorld(opts fakeserver.Options) *world {
	GinkgoHelper()
	srv := fakeserver.New(opts)
	Expect(srv.AddUser(user, password)).To(Succeed())
	addr, err := srv.Listen("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(srv.Close)
	w := &world{srv: srv, addr: addr.String(), store: storeKinds[0].open}
	w.dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", w.addr)
	}
	return w
}

func (w *world) options(store engine.Store, q engine.Quirks) engine.Options {
	return engine.Options{
		Dial:     func(ctx context.Context) (net.Conn, error) { return w.dial(ctx) },
		Username: user, Password: password, Store: store, Quirks: q,
	}
}

// device makes a device with a store from w.store.
func (w *world) device(name string, q ...engine.Quirks) *engine.Device {
	GinkgoHelper()
	var quirks engine.Quirks
	for _, x := range q {
		quirks |= x
	}
	d, err := engine.NewDevice(name, w.options(w.store(), quirks))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return d
}

// cutDevice makes a device whose connections go through a cutter, on store.
func (w *world) cutDevice(name string, store engine.Store) (*engine.Device, *cutter) {
	GinkgoHelper()
	cut := newCutter(w.addr)
	o := w.options(store, 0)
	o.Dial = cut.dial
	d, err := engine.NewDevice(name, o)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return d, cut
}

func msg(label string) []byte {
	return clients.MakeMessage(clients.MessageSpec{Label: label, Run: run, Size: 600})
}

func (w *world) deliver(mailbox string, labels ...string) {
	GinkgoHelper()
	for _, l := range labels {
		Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: mailbox, Body: msg(l)})).To(Succeed())
	}
}

func (w *world) create(mailbox string) {
	GinkgoHelper()
	Expect(w.srv.Apply(fakeserver.CreateMailbox{User: user, Mailbox: mailbox})).To(Succeed())
}

// uid returns the server UID of the message labelled label in mailbox.
func (w *world) uid(mailbox, label string) uint32 {
	GinkgoHelper()
	return w.serverMessage(mailbox, label).UID
}

// serverMessage returns the server message labelled label in mailbox.
func (w *world) serverMessage(mailbox, label string) fakeserver.MessageSnapshot {
	GinkgoHelper()
	snap, err := w.srv.Snapshot(user)
	Expect(err).NotTo(HaveOccurred())
	mb, ok := snap.Mailbox(mailbox)
	Expect(ok).To(BeTrue(), "mailbox %q", mailbox)
	for _, m := range mb.Messages {
		if clients.Label(m.Body) == label {
			return m
		}
	}
	Fail(fmt.Sprintf("no %s in server mailbox %s", label, mailbox))
	return fakeserver.MessageSnapshot{}
}

// internalDate returns the INTERNALDATE of the server message labelled label in mailbox.
func (w *world) internalDate(mailbox, label string) time.Time {
	GinkgoHelper()
	return w.serverMessage(mailbox, label).InternalDate
}

// server renders the server's state as "MAILBOX: label[flags] ..." lines, one per mailbox.
func (w *world) server() []string {
	GinkgoHelper()
	snap, err := w.srv.Snapshot(user)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, mb := range snap.Mailboxes {
		if mb.NoSelect {
			continue
		}
		var ms []string
		for _, m := range mb.Messages {
			ms = append(ms, render(clients.Label(m.Body), m.Flags))
		}
		sort.Strings(ms)
		out = append(out, strings.TrimSpace(mb.Name+": "+strings.Join(ms, " ")))
	}
	return out
}

func render(label string, flags []string) string {
	var fl []string
	for _, f := range flags {
		if f != `\Recent` {
			fl = append(fl, f)
		}
	}
	sort.Strings(fl)
	if len(fl) == 0 {
		return label
	}
	return label + "[" + strings.Join(fl, ",") + "]"
}

// replica renders a device's view like server.
func replica(d interface {
	View(context.Context) (clients.Replica, error)
}) []string {
	GinkgoHelper()
	r, err := d.View(context.Background())
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, mb := range r.Mailboxes {
		var ms []string
		for _, m := range mb.Messages {
			ms = append(ms, render(m.Label, m.Flags))
		}
		sort.Strings(ms)
		out = append(out, strings.TrimSpace(mb.Name+": "+strings.Join(ms, " ")))
	}
	return out
}

func syncOK(d clients.Device) clients.SyncStats {
	GinkgoHelper()
	st, err := d.Sync(context.Background())
	Expect(err).NotTo(HaveOccurred())
	return st
}

// settle syncs the devices in turn until a full pass changes nothing.
func settle(devs ...clients.Device) {
	GinkgoHelper()
	for pass := 0; pass < 8; pass++ {
		changed := false
		for _, d := range devs {
			if syncOK(d).Changed() {
				changed = true
			}
		}
		if !changed {
			return
		}
	}
	Fail("devices did not converge in 8 passes")
}

// expectConverged asserts the server and every device show exactly want, and that one
// more round sends no mutating command and changes nothing.
func (w *world) expectConverged(want []string, devs ...clients.Device) {
	GinkgoHelper()
	settle(devs...)
	Expect(w.server()).To(Equal(want), "server")
	for _, d := range devs {
		Expect(replica(d)).To(Equal(want), "device %s", d.Name())
		st := syncOK(d)
		Expect(st.Mutations).To(BeZero(), "device %s: mutations after convergence", d.Name())
		Expect(st.LocalChanges).To(BeZero(), "device %s: local changes after convergence", d.Name())
		ss, err := d.(clients.SyncStater).SyncState(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(ss.PendingDesc).To(BeEmpty(), "device %s: journal", d.Name())
	}
}

func do(d clients.Device, a clients.Action) {
	GinkgoHelper()
	Expect(d.Do(context.Background(), a)).To(Succeed())
}
