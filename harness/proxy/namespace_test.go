package proxy_test

import (
	"bufio"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

var _ = Describe("Namespace", func() {
	ns := proxy.Namespace{Root: "syncharness-r1/scn", Sep: '/'}

	DescribeTable("maps client names under the root",
		func(client, server string) {
			Expect(ns.ToServer(client)).To(Equal(server))
			back, ok := ns.FromServer(server)
			Expect(ok).To(BeTrue())
			Expect(back).To(Equal(strings.Replace(client, "inbox", "INBOX", 1)))
		},
		Entry("INBOX", "INBOX", "syncharness-r1/scn/INBOX"),
		Entry("INBOX in any case", "inbox", "syncharness-r1/scn/INBOX"),
		Entry("a folder", "Archive", "syncharness-r1/scn/Archive"),
		Entry("a nested folder", "Work/2026", "syncharness-r1/scn/Work/2026"),
		Entry("a folder below INBOX", "INBOX/Sub", "syncharness-r1/scn/INBOX/Sub"),
	)

	DescribeTable("refuses names that could leave the root",
		func(client string) {
			_, err := ns.ToServer(client)
			Expect(err).To(MatchError(proxy.ErrEscape))
		},
		Entry("empty", ""),
		Entry("a parent level", "../Private"),
		Entry("a parent level inside", "Work/../../Private"),
		Entry("a current level", "./INBOX"),
		Entry("an empty level", "Work//x"),
		Entry("a leading delimiter", "/INBOX"),
		Entry("a trailing delimiter", "Work/"),
		Entry("another namespace", "#shared/alice"),
		Entry("a home directory", "~bob/INBOX"),
		Entry("a wildcard", "Wo*"),
		Entry("a CR LF", "Work\r\nx"),
		Entry("a parent level in modified UTF-7, one run a dot", "&AC4-&AC4-/other/INBOX"),
		Entry("a parent level in modified UTF-7, one run", "&AC4ALg-/other/INBOX"),
		Entry("a delimiter in modified UTF-7", "Work&AC8-..&AC8-x"),
		Entry("a control character in modified UTF-7", "Work&AAo-x"),
		Entry("a wildcard in modified UTF-7", "Wo&ACo-"),
		Entry("an unterminated modified UTF-7 run", "Work&AOQ"),
		Entry("modified UTF-7 with a lone surrogate", "Work&2D0-"),
		Entry("INBOX in lower case above a level", "inbox/sub"),
		Entry("INBOX in mixed case above a level", "Inbox/Sub"),
	)

	DescribeTable("decodes modified UTF-7 and keeps the name as sent",
		func(client, server string) {
			Expect(ns.ToServer(client)).To(Equal(server))
		},
		Entry("an umlaut", "&AOQ-rger", "syncharness-r1/scn/&AOQ-rger"),
		Entry("an ampersand", "Tom &- Jerry", "syncharness-r1/scn/Tom &- Jerry"),
		Entry("raw UTF-8 (UTF8=ACCEPT)", "Ärger/2026", "syncharness-r1/scn/Ärger/2026"),
	)

	It("sees nothing outside the root, nor the root itself", func() {
		for _, name := range []string{"syncharness-r1", "syncharness-r1/scn", "syncharness-r1/other/INBOX", "INBOX", "Private", "syncharness-r1/scnx/INBOX"} {
			_, ok := ns.FromServer(name)
			Expect(ok).To(BeFalse(), name)
		}
	})
})

var _ = Describe("Confine", func() {
	var addr string
	var outside *imapclient.Client

	BeforeEach(func() {
		addr = startServer(serverOptions{})
		outside = directClient(addr, nil)
		for _, mb := range []string{"Private", "jail", "jail/INBOX", "jail/Work"} {
			Expect(outside.Create(mb, nil).Wait()).To(Succeed())
		}
		appendMessage(outside, "Private", testMessage("secret", 100))
		appendMessage(outside, "INBOX", testMessage("mine", 100))
	})

	confined := func(opts proxy.ConfineOptions) net.Conn {
		GinkgoHelper()
		if opts.Namespace.Root == "" {
			opts.Namespace = proxy.Namespace{Root: "jail", Sep: '/'}
		}
		conn, err := net.Dial("tcp", addr)
		Expect(err).NotTo(HaveOccurred())
		c := proxy.Confine(conn, opts)
		DeferCleanup(c.Close)
		Expect(c.SetDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		return c
	}
	login := func(opts proxy.ConfineOptions) *imapclient.Client {
		GinkgoHelper()
		c := connect(confined(opts), nil)
		Expect(c.Login(testUser, testPassword).Wait()).To(Succeed())
		return c
	}
	raw := func(opts proxy.ConfineOptions) *rawConn {
		GinkgoHelper()
		conn := confined(opts)
		r := &rawConn{conn: conn, r: bufio.NewReader(conn)}
		Expect(r.readLine()).To(HavePrefix("* OK"))
		r.send(`L LOGIN "` + testUser + `" "` + testPassword + `"`)
		Expect(r.until("L ")).To(ContainElement(HavePrefix("L OK")))
		return r
	}

	It("lists only the mailboxes under the root, with their client names", func() {
		c := login(proxy.ConfineOptions{})
		list, err := c.List("", "*", nil).Collect()
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, l := range list {
			names = append(names, l.Mailbox)
		}
		Expect(names).To(ConsistOf("INBOX", "Work"))
	})

	It("keeps the client's INBOX, appends and renames under the root", func() {
		c := login(proxy.ConfineOptions{})
		appendMessage(c, "INBOX", testMessage("m1", 100))
		Expect(c.Rename("Work", "Done", nil).Wait()).To(Succeed())
		st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mailbox).To(Equal("INBOX"))
		Expect(*st.NumMessages).To(Equal(uint32(1)))

		Expect(mailboxes(addr)).To(ConsistOf("INBOX", "Private", "jail", "jail/INBOX", "jail/Done"))
		for mb, n := range map[string]uint32{"INBOX": 1, "jail/INBOX": 1, "Private": 1} {
			st, err := outside.Status(mb, &imap.StatusOptions{NumMessages: true}).Wait()
			Expect(err).NotTo(HaveOccurred())
			Expect(*st.NumMessages).To(Equal(n), mb)
		}
	})

	DescribeTable("answers BAD to what could leave the root, and forwards nothing",
		func(command string) {
			r := raw(proxy.ConfineOptions{})
			r.send("A1 " + command)
			Expect(r.readLine()).To(HavePrefix("A1 BAD"))
			r.send("A2 NOOP")
			Expect(r.readLine()).To(HavePrefix("A2 OK"))
			Expect(mailboxes(addr)).To(ConsistOf("INBOX", "Private", "jail", "jail/INBOX", "jail/Work"))
		},
		Entry("SELECT of a parent", `SELECT "../Private"`),
		Entry("DELETE of a parent", `DELETE ../Private`),
		Entry("RENAME out of the root", `RENAME Work "../Work"`),
		Entry("COPY to another namespace", `UID COPY 1 "#shared/x"`),
		Entry("a mailbox name as a literal", `DELETE {7}`),
		Entry("LIST with a parent reference", `LIST "../" "*"`),
		Entry("LIST of another namespace", `LIST "" "#shared/*"`),
		Entry("DELETE of the INBOX", `DELETE INBOX`),
		Entry("a command the confinement does not know", `GETQUOTAROOT INBOX`),
		Entry("STARTTLS, which would hide the stream", `STARTTLS`),
		Entry("COMPRESS, which would hide the stream", `COMPRESS DEFLATE`),
		Entry("APPEND CATENATE, whose URLs name mailboxes", `APPEND INBOX CATENATE (URL "/Private;UID=1")`),
	)

	DescribeTable("decodes mailbox names before it checks them, and says why it refuses",
		func(command, why string) {
			r := raw(proxy.ConfineOptions{})
			r.send("A1 " + command)
			line := r.readLine()
			Expect(line).To(HavePrefix("A1 BAD mailbox name not allowed inside the confinement"))
			Expect(line).To(ContainSubstring(why))
			Expect(mailboxes(addr)).To(ConsistOf("INBOX", "Private", "jail", "jail/INBOX", "jail/Work"))
		},
		Entry("SELECT of ../other/INBOX in modified UTF-7", `SELECT "&AC4-&AC4-/other/INBOX"`, "not valid modified UTF-7"),
		Entry("CREATE x/../../Outside with the dots encoded", `CREATE "x/&AC4ALg-/&AC4ALg-/Outside"`, "not valid modified UTF-7"),
		Entry("CREATE below INBOX spelt in lower case", `CREATE "inbox/sub"`, "spells INBOX in another case"),
	)

	It("answers a command itself when Intercept says so, and a BYE ends the connection", func() {
		left := 2
		r := raw(proxy.ConfineOptions{Intercept: func(cmd string) string {
			if cmd != "SELECT" || left == 0 {
				return ""
			}
			left--
			if left == 1 {
				return "NO [UNAVAILABLE] try later"
			}
			return "BYE going away"
		}})
		r.send("A1 SELECT INBOX")
		Expect(r.readLine()).To(Equal("A1 NO [UNAVAILABLE] try later"))
		r.send("A2 SELECT INBOX")
		Expect(r.readLine()).To(Equal("* BYE going away"))
		_, err := r.r.ReadString('\n')
		Expect(err).To(HaveOccurred())
	})

	It("hides capabilities and refuses their commands", func() {
		r := raw(proxy.ConfineOptions{Hidden: func() []string { return []string{"MOVE"} }})
		r.send("A1 CAPABILITY")
		lines := r.until("A1 ")
		Expect(lines[0]).To(HavePrefix("* CAPABILITY"))
		Expect(lines[0]).NotTo(ContainSubstring("MOVE"))
		r.send("A2 UID MOVE 1 Work")
		Expect(r.readLine()).To(HavePrefix("A2 BAD"))
	})

	It("shows the special use a server configuration would give", func() {
		c := login(proxy.ConfineOptions{SpecialUse: func(mb string) string {
			if mb == "Work" {
				return `\Trash`
			}
			return ""
		}})
		list, err := c.List("", "*", nil).Collect()
		Expect(err).NotTo(HaveOccurred())
		attrs := map[string][]imap.MailboxAttr{}
		for _, l := range list {
			attrs[l.Mailbox] = l.Attrs
		}
		Expect(attrs["Work"]).To(ContainElement(imap.MailboxAttr(`\Trash`)))
		Expect(attrs["INBOX"]).NotTo(ContainElement(imap.MailboxAttr(`\Trash`)))
	})

	It("never forwards a password after the server advertised LOGINDISABLED", func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(ln.Close)
		got := make(chan string, 1)
		go func() {
			defer GinkgoRecover()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = c.Write([]byte("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n"))
			br := bufio.NewReader(c)
			var seen strings.Builder
			for {
				line, err := br.ReadString('\n')
				seen.WriteString(line)
				if err != nil || strings.HasPrefix(line, "A2 ") {
					got <- seen.String()
					return
				}
			}
		}()
		up, err := net.Dial("tcp", ln.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		conn := proxy.Confine(up, proxy.ConfineOptions{Namespace: proxy.Namespace{Root: "jail"}})
		DeferCleanup(conn.Close)
		Expect(conn.SetDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		r := &rawConn{conn: conn, r: bufio.NewReader(conn)}
		Expect(r.readLine()).To(ContainSubstring("LOGINDISABLED"))
		r.send(`A1 LOGIN "alice" "secret-password"`)
		Expect(r.readLine()).To(HavePrefix("A1 BAD the server advertises LOGINDISABLED"))
		r.send("A2 NOOP")
		var seen string
		Eventually(got).Should(Receive(&seen))
		Expect(seen).To(ContainSubstring("A2 NOOP"))
		Expect(seen).NotTo(ContainSubstring("secret-password"))
		Expect(seen).NotTo(ContainSubstring("LOGIN"))
	})
})
