package check_test

import (
	"sort"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
)

// A world is a hand-built input: the server's mailboxes by name, each a list of messages,
// and devices that (unless changed) see exactly the server and know every UID.

type msg struct {
	label string
	flags []string
}

func m(label string, flags ...string) msg { return msg{label, flags} }

type mbox struct {
	name string
	msgs []msg
}

func box(name string, msgs ...msg) mbox { return mbox{name, msgs} }

func serverOf(boxes ...mbox) check.ServerState {
	var st check.ServerState
	for i, b := range boxes {
		mb := check.ServerMailbox{Name: b.name, UIDValidity: uint32(100 + i), UIDNext: uint32(len(b.msgs) + 1)}
		for j, x := range b.msgs {
			flags := append([]string(nil), x.flags...)
			sort.Strings(flags)
			mb.Messages = append(mb.Messages, check.ServerMessage{
				UID: uint32(j + 1), Label: x.label, Hash: "hash-" + x.label, Flags: flags,
				Size: 100, MessageID: x.label + ".run@syncharness.invalid",
			})
		}
		st.Mailboxes = append(st.Mailboxes, mb)
	}
	sort.Slice(st.Mailboxes, func(i, j int) bool { return st.Mailboxes[i].Name < st.Mailboxes[j].Name })
	return st
}

// mirror returns the view and sync state of a device that converged with st.
func mirror(name string, st check.ServerState) check.Device {
	d := check.Device{Name: name, State: &clients.SyncState{}}
	for _, mb := range st.Mailboxes {
		vm := clients.Mailbox{Name: mb.Name}
		sm := clients.MailboxState{Name: mb.Name, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext}
		for _, x := range mb.Messages {
			vm.Messages = append(vm.Messages, clients.Message{Label: x.Label, Hash: x.Hash, Flags: append([]string(nil), x.Flags...)})
			sm.Messages = append(sm.Messages, clients.MessageState{Label: x.Label, Hash: x.Hash, UID: x.UID})
		}
		sort.Slice(vm.Messages, func(i, j int) bool { return vm.Messages[i].Label < vm.Messages[j].Label })
		d.View.Mailboxes = append(d.View.Mailboxes, vm)
		d.State.Mailboxes = append(d.State.Mailboxes, sm)
	}
	return d
}

func input(st check.ServerState, history []check.Op, devices ...string) check.Input {
	in := check.Input{Server: st, History: history}
	for _, name := range devices {
		in.Devices = append(in.Devices, mirror(name, st))
	}
	for i := range in.History {
		in.History[i].Seq = i + 1
		in.History[i].Line = i + 1
	}
	return in
}

func op(actor, kind, mailbox string, labels ...string) check.Op {
	return check.Op{Actor: actor, Kind: kind, Mailbox: mailbox, Labels: labels}
}

func dest(o check.Op, d string) check.Op { o.Dest = d; return o }

func flag(o check.Op, f string) check.Op { o.Flag = f; return o }

func group(g int, ops ...check.Op) []check.Op {
	for i := range ops {
		ops[i].Group = g
	}
	return ops
}

func failed(o check.Op) check.Op { o.Err = "connection dropped"; return o }

func sync(dev string) check.Op { return check.Op{Actor: dev, Kind: "sync"} }

func hist(parts ...any) []check.Op {
	var out []check.Op
	for _, p := range parts {
		switch x := p.(type) {
		case check.Op:
			out = append(out, x)
		case []check.Op:
			out = append(out, x...)
		default:
			panic("hist: not an op")
		}
	}
	return out
}

func ids(rs []check.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Invariant)
	}
	return out
}

func device(in *check.Input, name string) *check.Device {
	for i := range in.Devices {
		if in.Devices[i].Name == name {
			return &in.Devices[i]
		}
	}
	panic("no device " + name)
}

func viewBox(d *check.Device, name string) *clients.Mailbox {
	for i := range d.View.Mailboxes {
		if d.View.Mailboxes[i].Name == name {
			return &d.View.Mailboxes[i]
		}
	}
	panic("no mailbox " + name)
}

func stateBox(d *check.Device, name string) *clients.MailboxState {
	for i := range d.State.Mailboxes {
		if d.State.Mailboxes[i].Name == name {
			return &d.State.Mailboxes[i]
		}
	}
	panic("no mailbox state " + name)
}
