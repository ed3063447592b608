package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/gomega"
)

func TestParseFlagAnswerReadsWhatGoIMAPWouldAndNothingElse(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []struct {
		line string
		want *flagAnswer // nil: left to go-imap
	}{
		{"* 1 FETCH (UID 10 FLAGS (\\Seen) RFC822.SIZE 100)\r\n", &flagAnswer{uid: 10, size: 100, flags: Flags{System: FlagSeen}}},
		{"* 2 FETCH (FLAGS () UID 11)\r\n", &flagAnswer{uid: 11}},
		{"* 2 FETCH (RFC822.SIZE 7 MODSEQ (123456789012) UID 4294967295 FLAGS (\\seen \\FLAGGED))\n",
			&flagAnswer{uid: 4294967295, size: 7, flags: Flags{System: FlagSeen | FlagFlagged}}},
		// Keywords: go-imap's spelling of those it knows, the server's of the others, sorted.
		{"* 3 FETCH (UID 12 FLAGS ($work $forwarded \\Recent $Work))\r\n", &flagAnswer{uid: 12, flags: Flags{Keywords: "$Forwarded $work"}}},
		{"* 3 FETCH (UID 12 FLAGS ( \\Answered))\r\n", &flagAnswer{uid: 12, flags: Flags{System: FlagAnswered}}},
		{"* 3 fetch (uid 12 flags (\\answered $junk) rfc822.size 9)\r\n", &flagAnswer{uid: 12, size: 9, flags: Flags{System: FlagAnswered, Keywords: "$Junk"}}},
		{"* 4 FETCH (UID 13 FLAGS (caf\xc3\xa9))\r\n", &flagAnswer{uid: 13, flags: Flags{Keywords: "caf\xc3\xa9"}}},

		{"* 5 FETCH (FLAGS (\\Deleted))\r\n", nil},                             // no UID
		{"* 5 FETCH (UID 0 FLAGS ())\r\n", nil},                                // UID 0
		{"* 0 FETCH (UID 5 FLAGS ())\r\n", nil},                                // sequence number 0
		{"* 5 FETCH (UID 5 UID 6 FLAGS ())\r\n", nil},                          // an item twice
		{"* 5 FETCH (UID 5 FLAGS (\\Seen) X-GM-THRID 1)\r\n", nil},             // an item the tap does not know
		{"* 5 FETCH (UID 5 BODY[HEADER] {5}\r\n", nil},                         // a literal
		{"* 5 FETCH (UID 5 FLAGS (\\*))\r\n", nil},                             // not a message's flag
		{"* 5 FETCH (UID 5 FLAGS (\"quoted\"))\r\n", nil},                      // not an atom
		{"* 5 FETCH (UID 5 FLAGS (a]b))\r\n", nil},                             // not an atom
		{"* 5 FETCH (UID 5 FLAGS (\x85x))\r\n", nil},                           // a control character
		{"* 5 FETCH (UID 5 FLAGS (\\Seen)\r\n", nil},                           // unbalanced
		{"* 5 FETCH (UID 5 FLAGS (\\Seen)))\r\n", nil},                         // unbalanced
		{"* 5 FETCH (UID 99999999999 FLAGS ())\r\n", nil},                      // over 32 bits
		{"* 5 FETCH (UID 5  FLAGS ())\r\n", nil},                               // two spaces
		{"* 5 FETCH (UID 5 FLAGS ())", nil},                                    // no line end
		{"* 5 EXISTS\r\n", nil},                                                // not FETCH
		{"T4 OK * 5 FETCH (UID 5 FLAGS ())\r\n", nil},                          // tagged
		{"* 5 FETCH (UID 5 MODSEQ (x) FLAGS ())\r\n", nil},                     // MODSEQ not a number
		{"* 5 FETCH (UID 5 RFC822.SIZE 1 RFC822.SIZE 2 FLAGS ())\r\n", nil},    // an item twice
		{"* 5 FETCH (UID 5 FLAGS (\\Seen) FLAGS (\\Flagged))\r\n", nil},        // an item twice
		{"* 5 FETCH (UID 5 MODSEQ (1) MODSEQ (2) FLAGS (\\Flagged))\r\n", nil}, // an item twice
	} {
		got, ok := parseFlagAnswer([]byte(c.line))
		if c.want == nil {
			g.Expect(ok).To(BeFalse(), "%q", c.line)
			continue
		}
		g.Expect(ok).To(BeTrue(), "%q", c.line)
		g.Expect(got).To(Equal(*c.want), "%q", c.line)
	}
}

// flagStream is a server's answer to a flag scan with answers the tap must take and lines
// it must pass on, among them answers it cannot read exactly and a literal whose bytes
// look like an answer.
const flagStream = "* 3 EXISTS\r\n" +
	"* 1 FETCH (UID 10 FLAGS (\\Seen $forwarded) RFC822.SIZE 100)\r\n" +
	"* 2 FETCH (FLAGS () UID 11 RFC822.SIZE 200 MODSEQ (5))\r\n" +
	"* 3 FETCH (UID 12 BODY[HEADER] {37}\r\n* 9 FETCH (UID 99 FLAGS (\\Seen))\r\n FLAGS (\\Seen))\r\n" +
	"* 4 FETCH (UID 13 FLAGS (\\Flagged))\r\n" +
	"* 5 FETCH (UID 16 BODY[HEADER] {0}\r\n* 9 FETCH (UID 98 FLAGS ())\r\n" +
	"* 5 FETCH (FLAGS (\\Deleted))\r\n" +
	"* 6 FETCH (UID 10 FLAGS (\\Answered))\r\n" +
	"* 7 FETCH (UID 14 FLAGS (\\Seen) X-GM-THRID 1)\r\n" +
	"* 8 FETCH (UID 15 FLAGS (" + "$" + "Long" + "))\r\n" +
	"T5 OK done\r\n" +
	"* 10 FETCH (UID 17 FLAGS (\\Seen))\r\n"

// passed is what go-imap must get of flagStream: all but the answers about 10, 11, 13 and 15.
const passed = "* 3 EXISTS\r\n" +
	"* 3 FETCH (UID 12 BODY[HEADER] {37}\r\n* 9 FETCH (UID 99 FLAGS (\\Seen))\r\n FLAGS (\\Seen))\r\n" +
	"* 5 FETCH (UID 16 BODY[HEADER] {0}\r\n* 9 FETCH (UID 98 FLAGS ())\r\n" +
	"* 5 FETCH (FLAGS (\\Deleted))\r\n" +
	"* 6 FETCH (UID 10 FLAGS (\\Answered))\r\n" +
	"* 7 FETCH (UID 14 FLAGS (\\Seen) X-GM-THRID 1)\r\n" +
	"T5 OK done\r\n" +
	"* 10 FETCH (UID 17 FLAGS (\\Seen))\r\n"

// tapThrough runs a tap over a connection whose server answers the flag scan's command with
// stream, written in pieces of chunk bytes, then closes. It returns what the tap passed on
// and what it took.
func tapThrough(t *testing.T, stream string, chunk int) (string, []flagAnswer) {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		if _, err := bufio.NewReader(server).ReadString('\n'); err != nil {
			return
		}
		for i := 0; i < len(stream); i += chunk {
			if _, err := io.WriteString(server, stream[i:min(i+chunk, len(stream))]); err != nil {
				return
			}
		}
	}()
	tap := &tapConn{Conn: client}
	defer tap.Close()
	var took []flagAnswer
	seen := map[uint32]bool{}
	tap.takeFlags(func(a flagAnswer) bool {
		if seen[a.uid] {
			return false
		}
		seen[a.uid] = true
		took = append(took, a)
		return true
	})
	if _, err := io.WriteString(tap, "T5 UID FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	buf := make([]byte, 7) // go-imap's reads are not aligned on lines either
	for {
		n, err := tap.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return out.String(), took
}

func TestTapTakesTheFlagScanAnswersWhereverTheReadsCut(t *testing.T) {
	g := NewWithT(t)
	want := []flagAnswer{
		{uid: 10, size: 100, flags: Flags{System: FlagSeen, Keywords: "$Forwarded"}},
		{uid: 11, size: 200},
		{uid: 13, flags: Flags{System: FlagFlagged}},
		{uid: 15, flags: Flags{Keywords: "$Long"}},
	}
	for _, chunk := range []int{1, 2, 3, 5, 13, 64, len(flagStream)} {
		out, took := tapThrough(t, flagStream, chunk)
		g.Expect(out).To(Equal(passed), "pieces of %d bytes", chunk)
		g.Expect(took).To(Equal(want), "pieces of %d bytes", chunk)
	}
}

func TestTapPassesALineTooLongToTakeAndKeepsItsBytes(t *testing.T) {
	g := NewWithT(t)
	kws := make([]string, 400)
	for i := range kws {
		kws[i] = fmt.Sprintf("$k%d", i)
	}
	long := "* 1 FETCH (UID 10 FLAGS (" + strings.Join(kws, " ") + "))\r\n"
	g.Expect(len(long)).To(BeNumerically(">", maxTakenLine))
	stream := long + "* 2 FETCH (UID 11 FLAGS ())\r\nT5 OK done\r\n"
	for _, chunk := range []int{1, 100, len(stream)} {
		out, took := tapThrough(t, stream, chunk)
		g.Expect(out).To(Equal(long+"T5 OK done\r\n"), "pieces of %d bytes", chunk)
		g.Expect(took).To(Equal([]flagAnswer{{uid: 11}}), "pieces of %d bytes", chunk)
	}
}

// Before the command is written, and after stopTaking, the tap takes nothing: a line it
// held back when taking stopped is passed on whole.
func TestTapTakesOnlyBetweenTheCommandAndItsEnd(t *testing.T) {
	g := NewWithT(t)
	client, server := net.Pipe()
	defer server.Close()
	tap := &tapConn{Conn: client}
	defer tap.Close()
	took := 0
	tap.takeFlags(func(flagAnswer) bool { took++; return true })
	go func() { _, _ = io.WriteString(server, "* 1 FETCH (UID 10 FLAGS ())\r\n* 2 FETCH (UID 1") }()
	r := bufio.NewReader(tap)
	line, err := r.ReadString('\n')
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(line).To(Equal("* 1 FETCH (UID 10 FLAGS ())\r\n"), "no command written yet: nothing is taken")
	tap.stopTaking()
	go func() { _, _ = io.WriteString(server, "1 FLAGS ())\r\n") }()
	line, err = r.ReadString('\n')
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(line).To(Equal("* 2 FETCH (UID 11 FLAGS ())\r\n"))
	g.Expect(took).To(BeZero())
}

// goIMAPAnswer has go-imap's client read line as the whole answer to a flag scan and
// returns the messages it gave the command, or its error.
func goIMAPAnswer(t testing.TB, line string) ([]flagAnswer, error) {
	t.Helper()
	client, server := net.Pipe()
	deadline := time.Now().Add(5 * time.Second)
	_ = client.SetDeadline(deadline)
	_ = server.SetDeadline(deadline)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		// With its capabilities in the greeting, go-imap asks for none before the FETCH.
		if _, err := io.WriteString(server, "* OK [CAPABILITY IMAP4rev1] ready\r\n"); err != nil {
			return
		}
		r := bufio.NewReader(server)
		for {
			cmd, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, rest, _ := strings.Cut(cmd, " ")
			answer := tag + " OK done\r\n"
			if strings.HasPrefix(rest, "UID FETCH ") {
				answer = line + answer
			}
			if _, err := io.WriteString(server, answer); err != nil {
				return
			}
		}
	}()
	c := imapclient.New(client, nil)
	defer func() {
		c.Close()
		<-done
	}()
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true})
	var out []flagAnswer
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var a flagAnswer
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				a.uid = uint32(it.UID)
			case imapclient.FetchItemDataFlags:
				a.flags = parseIMAPFlags(it.Flags)
			case imapclient.FetchItemDataRFC822Size:
				a.size = uint32(it.Size)
			}
		}
		out = append(out, a)
	}
	return out, cmd.Close()
}

// FuzzFlagAnswerReadAsGoIMAPReadsIt: every answer line the tap takes, go-imap reads without
// error as one message with the same UID, flags and size (the seeds run with go test; go
// test -fuzz=FuzzFlagAnswer explores).
func FuzzFlagAnswerReadAsGoIMAPReadsIt(f *testing.F) {
	for _, s := range []string{
		"* 1 FETCH (UID 10 FLAGS (\\Seen) RFC822.SIZE 100)\r\n",
		"* 2 FETCH (FLAGS () UID 11)\r\n",
		"* 2 FETCH (FLAGS ( ) UID 11)\r\n",
		"* 2 FETCH (FLAGS ( \\Seen  $x) UID 11)\r\n",
		"* 2 FETCH (FLAGS (\\Seen ) UID 11)\r\n",
		"* 2 FETCH (RFC822.SIZE 7 MODSEQ (123456789012) UID 4294967295 FLAGS (\\seen \\FLAGGED))\n",
		"* 3 fetch (uid 12 flags (\\answered $junk $work $Work) rfc822.size 9)\r\n",
		"* 4 FETCH (UID 13 FLAGS (caf\xc3\xa9 a\x7fb))\r\n",
		"* 0001 FETCH (UID 0012 FLAGS (\\Draft))\r\n",
		"* 1 FETCH (UID 10 MODSEQ ( 5) FLAGS ())\r\n",
		"* 1 FETCH (UID 10 MODSEQ (18446744073709551615) FLAGS ())\r\n",
		"* 1 FETCH (UID 10 MODSEQ (18446744073709551616) FLAGS ())\r\n",
		"* 1 FETCH (UID 10 FLAGS (\\Recent \\Unknown))\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		a, ok := parseFlagAnswer([]byte(line))
		if !ok {
			return // go-imap reads it, whatever it is
		}
		got, err := goIMAPAnswer(t, line)
		if err != nil {
			t.Fatalf("the tap took %q, which go-imap refuses: %v", line, err)
		}
		if len(got) != 1 || got[0] != a {
			t.Fatalf("%q: the tap read %+v, go-imap %+v", line, a, got)
		}
	})
}
