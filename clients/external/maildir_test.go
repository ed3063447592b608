package external_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/external"
)

// A profile for a stand-in engine: the Maildir actions never run the engine.
func layoutProfile(layout string) *external.Profile {
	text := `
name = "stand-in"
binary = "true"
command = ["{{.Binary}}"]
[maildir]
uid_part = [',U=[0-9]+']
ignore = [".state*"]
line_endings = "lf"
` + layout + `
[claims]
flags = ['\Seen', '\Answered', '\Flagged', '\Deleted', '\Draft']
`
	p, err := external.Parse("test.toml", []byte(text))
	Expect(err).NotTo(HaveOccurred())
	return p
}

const (
	nested     = "separator = \"/\"\nprefix = \"\"\ninbox = \"INBOX\"\n"
	maildirPP  = "separator = \".\"\nprefix = \".\"\ninbox = \"\"\n"
	removeCurs = "remove_cur_only = true\n"
)

func noDial(context.Context) (net.Conn, error) { return nil, errors.New("offline") }

func newDevice(p *external.Profile) *external.Device {
	d, err := external.New(external.Config{Name: "laptop", Profile: p, Dial: noDial, Username: "u", Password: "secret", Dir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return d
}

// files returns the file names under dir/cur and dir/new, as "cur/NAME".
func files(dir string) []string {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func message(label string) []byte {
	return clients.MakeMessage(clients.MessageSpec{Label: label, Run: "t"})
}

// plant puts a message file as the engine would have written it (LF line endings).
func plant(dir, sub, name, label string) {
	Expect(os.MkdirAll(filepath.Join(dir, sub), 0o700)).To(Succeed())
	raw := strings.ReplaceAll(string(message(label)), "\r\n", "\n")
	Expect(os.WriteFile(filepath.Join(dir, sub, name), []byte(raw), 0o600)).To(Succeed())
}

func do(d *external.Device, a clients.Action) {
	GinkgoHelper()
	Expect(d.Do(context.Background(), a)).To(Succeed())
}

var _ = DescribeTable("The Maildir device acts as a careful mail reader",
	func(layout, inboxDir, archiveDir, trashDir, childDir, renamedChild string) {
		d := newDevice(layoutProfile(layout))
		root := d.Root()
		inbox := filepath.Join(root, inboxDir)
		By("INBOX exists from the start")
		Expect(filepath.Join(inbox, "cur")).To(BeADirectory())

		By("create makes the folder's tmp, new and cur")
		for _, name := range []string{"Archive", "Trash", "a", "a/b"} {
			do(d, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: name})
		}
		for _, dir := range []string{archiveDir, trashDir, childDir} {
			for _, sub := range []string{"tmp", "new", "cur"} {
				Expect(filepath.Join(root, dir, sub)).To(BeADirectory())
			}
		}

		plant(inbox, "cur", "100.K1.host,U=7:2,", "m1")
		plant(inbox, "new", "101.K2.host,U=8", "m2")
		By("read, flag, unread and unflag rename the file with the info flags, keeping the UID")
		do(d, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m1"}})
		Expect(files(inbox)).To(ConsistOf("cur/100.K1.host,U=7:2,S", "new/101.K2.host,U=8"))
		do(d, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Flagged`})
		Expect(files(inbox)).To(ContainElement("cur/100.K1.host,U=7:2,FS"))
		do(d, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Answered`})
		Expect(files(inbox)).To(ContainElement("cur/100.K1.host,U=7:2,FRS"))
		do(d, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m1"}})
		Expect(files(inbox)).To(ContainElement("cur/100.K1.host,U=7:2,FR"))
		do(d, clients.Action{Kind: clients.ActUnflag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Flagged`})
		Expect(files(inbox)).To(ContainElement("cur/100.K1.host,U=7:2,R"))
		By("a message in new moves to cur when it gets a flag")
		do(d, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m2"}})
		Expect(files(inbox)).To(ConsistOf("cur/100.K1.host,U=7:2,R", "cur/101.K2.host,U=8:2,S"))
		By("a keyword has no place in the file name")
		Expect(d.Do(context.Background(), clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: "$Label1"})).
			To(MatchError(ContainSubstring("keeps no $Label1")))

		By("move renames the file into the other folder's cur without the UID part")
		do(d, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
		Expect(files(inbox)).To(ConsistOf("cur/101.K2.host,U=8:2,S"))
		Expect(files(filepath.Join(root, archiveDir))).To(ConsistOf("cur/100.K1.host:2,R"))

		By("trash moves to Trash the same way")
		do(d, clients.Action{Kind: clients.ActTrash, Mailbox: "INBOX", Labels: []string{"m2"}})
		Expect(files(inbox)).To(BeEmpty())
		Expect(files(filepath.Join(root, trashDir))).To(ConsistOf("cur/101.K2.host:2,S"))

		By("copy writes a new file with the same flags and content under a new name")
		do(d, clients.Action{Kind: clients.ActCopy, Mailbox: "Archive", Labels: []string{"m1"}, Dest: "INBOX"})
		copied := files(inbox)
		Expect(copied).To(HaveLen(1))
		Expect(copied[0]).To(MatchRegexp(`^cur/[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+R[0-9a-f]+\.syncharness:2,R$`))
		orig, _ := os.ReadFile(filepath.Join(root, archiveDir, "cur", "100.K1.host:2,R"))
		dup, _ := os.ReadFile(filepath.Join(inbox, copied[0]))
		Expect(dup).To(Equal(orig))

		By("append writes the message with LF line endings and its flags")
		do(d, clients.Action{Kind: clients.ActAppend, Mailbox: "a/b", Labels: []string{"d1"}, Message: message("d1"),
			Flags: []string{`\Seen`, `\Draft`}})
		drafts := files(filepath.Join(root, childDir))
		Expect(drafts).To(HaveLen(1))
		Expect(drafts[0]).To(HaveSuffix(":2,DS"))
		b, _ := os.ReadFile(filepath.Join(root, childDir, drafts[0]))
		Expect(string(b)).NotTo(ContainSubstring("\r"))

		By("the view shows every mailbox, label, flag and the content hash as the server holds it")
		v, err := d.View(context.Background())
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, mb := range v.Mailboxes {
			names = append(names, mb.Name)
		}
		Expect(names).To(Equal([]string{"Archive", "INBOX", "Trash", "a", "a/b"}))
		Expect(v.Find("a/b").Messages).To(Equal([]clients.Message{{Label: "d1", Hash: clients.ContentHash(message("d1")), Flags: []string{`\Draft`, `\Seen`}}}))
		Expect(v.Find("Trash").Messages).To(Equal([]clients.Message{{Label: "m2", Hash: clients.ContentHash(message("m2")), Flags: []string{`\Seen`}}}))

		By("delete removes the file")
		do(d, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m1"}})
		Expect(files(inbox)).To(BeEmpty())
		Expect(d.Do(context.Background(), clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m1"}})).
			To(MatchError(ContainSubstring("no message m1 in INBOX")))

		By("rename moves the folder and its children")
		do(d, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "a", Dest: "c"})
		Expect(filepath.Join(root, childDir)).NotTo(BeADirectory())
		Expect(files(filepath.Join(root, renamedChild))).To(HaveLen(1))

		By("remove deletes the folder and its messages")
		Expect(os.WriteFile(filepath.Join(root, archiveDir, ".state"), nil, 0o600)).To(Succeed())
		do(d, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "Archive"})
		Expect(filepath.Join(root, archiveDir)).NotTo(BeADirectory())
		v, err = d.View(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Find("Archive")).To(BeNil())
		Expect(v.Find("c/b")).NotTo(BeNil())
	},
	Entry("nested directories, INBOX in INBOX/", nested, "INBOX", "Archive", "Trash", "a/b", "c/b"),
	Entry("Maildir++, INBOX at the root", maildirPP, "", ".Archive", ".Trash", ".a.b", ".c.b"),
)

var _ = Describe("The Maildir device's folders", func() {
	It("removes only the Maildir of a folder whose engine keeps its state inside it", func() {
		d := newDevice(layoutProfile(nested + removeCurs))
		do(d, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Archive"})
		dir := filepath.Join(d.Root(), "Archive")
		plant(dir, "cur", "1.K.h,U=1:2,S", "m1")
		Expect(os.WriteFile(filepath.Join(dir, ".state"), []byte("x"), 0o600)).To(Succeed())
		do(d, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "Archive"})
		Expect(filepath.Join(dir, "cur")).NotTo(BeADirectory())
		Expect(filepath.Join(dir, ".state")).To(BeAnExistingFile())
		v, err := d.View(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Find("Archive")).To(BeNil())
	})

	It("keeps non-ASCII folder names in modified UTF-7 on disk and shows them decoded", func() {
		d := newDevice(layoutProfile(nested))
		do(d, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Entwürfe & Co"})
		Expect(filepath.Join(d.Root(), "Entw&APw-rfe &- Co", "cur")).To(BeADirectory())
		v, err := d.View(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(v.Find("Entwürfe & Co")).NotTo(BeNil())
	})

	It("trashes into the \\Trash mailbox the action names, Trash when it names none", func() {
		d := newDevice(layoutProfile(maildirPP))
		do(d, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Bin"})
		do(d, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Trash"})
		plant(d.Root(), "cur", "100.K1.host,U=7:2,S", "m1")
		plant(d.Root(), "cur", "101.K2.host,U=8:2,", "m2")
		do(d, clients.Action{Kind: clients.ActTrash, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Bin"})
		Expect(files(filepath.Join(d.Root(), ".Bin"))).To(ConsistOf("cur/100.K1.host:2,S"))
		Expect(files(filepath.Join(d.Root(), ".Trash"))).To(BeEmpty())
		do(d, clients.Action{Kind: clients.ActTrash, Mailbox: "INBOX", Labels: []string{"m2"}})
		Expect(files(filepath.Join(d.Root(), ".Trash"))).To(ConsistOf("cur/101.K2.host:2,"))
	})

	It("refuses a folder name that the Maildir++ layout cannot hold", func() {
		d := newDevice(layoutProfile(maildirPP))
		Expect(d.Do(context.Background(), clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "a.b"})).
			To(MatchError(ContainSubstring("separator")))
	})
})
