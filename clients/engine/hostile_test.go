package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing/iotest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// rewriter sits between a device and the server and rewrites the server's answers, to
// play a server that misbehaves on purpose. Every server response (a line with the
// literals it announces) goes through the answer function with the command it answers;
// what it returns is sent instead (nil drops the response).
type rewriter struct {
	target string

	// preauth: each new connection is logged in by the rewriter, which greets the
	// device with PREAUTH instead of the server's greeting.
	preauth bool

	mu       sync.Mutex
	answer   func(cmd string, resp []byte) io.Reader
	commands []string
	closers  []func()

	// The goroutines of every connection, waited for by close: an answer function may
	// run after the device hung up, never after the spec ended.
	running sync.WaitGroup
}

// newRewriter makes a rewriter for the server at target, closed when the spec ends.
func newRewriter(target string) *rewriter {
	rw := &rewriter{target: target}
	DeferCleanup(rw.close)
	return rw
}

// close closes every connection made through rw and waits for their goroutines.
func (rw *rewriter) close() {
	rw.mu.Lock()
	closers := rw.closers
	rw.mu.Unlock()
	for _, c := range closers {
		c()
	}
	rw.running.Wait()
}

// set installs the answer function (nil passes every response on).
func (rw *rewriter) set(fn func(cmd string, resp []byte) io.Reader) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.answer = fn
}

// sent returns the command lines sent so far.
func (rw *rewriter) sent() []string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return append([]string(nil), rw.commands...)
}

// readResponse reads one line and the literals it announces, continuing lines included.
func readResponse(r *bufio.Reader) ([]byte, error) {
	var out bytes.Buffer
	for {
		line, err := r.ReadBytes('\n')
		out.Write(line)
		if err != nil {
			return out.Bytes(), err
		}
		m := literalRE.FindSubmatch(line)
		if m == nil {
			return out.Bytes(), nil
		}
		n, _ := strconv.Atoi(string(m[1]))
		if _, err := io.CopyN(&out, r, int64(n)); err != nil {
			return out.Bytes(), err
		}
	}
}

func (rw *rewriter) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", rw.target)
	if err != nil {
		return nil, err
	}
	upR := bufio.NewReader(up)
	if rw.preauth {
		if err := logIn(up, upR); err != nil {
			_ = up.Close()
			return nil, err
		}
	}
	a, b := net.Pipe()
	closeAll := func() {
		_ = a.Close()
		_ = b.Close()
		_ = up.Close()
	}
	rw.mu.Lock()
	rw.closers = append(rw.closers, closeAll)
	rw.mu.Unlock()
	var cmdMu sync.Mutex
	current := "" // the command being answered (the greeting: "")
	rw.running.Add(2)
	go func() {
		defer rw.running.Done()
		defer GinkgoRecover()
		defer closeAll()
		r := bufio.NewReader(b)
		more := false // the next line continues a command after its literal
		for {
			// Line by line: a client waits for the server's "+" before it sends a
			// synchronizing literal (APPEND's message, say).
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				if first := bytes.TrimRight(line, "\r\n"); !more && !bytes.HasPrefix(first, []byte("DONE")) {
					cmdMu.Lock()
					current = string(first)
					cmdMu.Unlock()
					rw.mu.Lock()
					rw.commands = append(rw.commands, string(first))
					rw.mu.Unlock()
				}
				if _, err := up.Write(line); err != nil {
					return
				}
				m := literalRE.FindSubmatch(line)
				if more = m != nil; more {
					n, _ := strconv.Atoi(string(m[1]))
					if _, err := io.CopyN(up, r, int64(n)); err != nil {
						return
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer rw.running.Done()
		defer GinkgoRecover()
		defer closeAll()
		if rw.preauth {
			if _, err := io.WriteString(b, "* PREAUTH logged in by the test\r\n"); err != nil {
				return
			}
		}
		for {
			resp, err := readResponse(upR)
			if err != nil {
				return
			}
			rw.mu.Lock()
			fn := rw.answer
			rw.mu.Unlock()
			cmdMu.Lock()
			cmd := current
			cmdMu.Unlock()
			var out io.Reader = bytes.NewReader(resp)
			if fn != nil {
				out = fn(cmd, resp)
			}
			if out == nil {
				continue
			}
			if _, err := io.Copy(b, out); err != nil {
				return
			}
		}
	}()
	return a, nil
}

// logIn reads the server's greeting from r and logs in on up.
func logIn(up io.Writer, r *bufio.Reader) error {
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(up, "P1 LOGIN %s %s\r\n", user, password); err != nil {
		return err
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "P1 ") {
			if !strings.HasPrefix(line, "P1 OK") {
				return fmt.Errorf("LOGIN: %s", line)
			}
			return nil
		}
	}
}

// endless reads as an endless run of one byte.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// generated reads as line(1), line(2), … without end; line appends to buf and returns it.
type generated struct {
	line func(buf []byte, i int) []byte
	i    int
	buf  []byte
	rest []byte
}

func (g *generated) Read(p []byte) (int, error) {
	if len(g.rest) == 0 {
		g.i++
		g.buf = g.line(g.buf[:0], g.i)
		g.rest = g.buf
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// bodyLiteral matches a body section's literal announcement in a FETCH response.
var bodyLiteral = regexp.MustCompile(`BODY\[[^\]]*\] \{(\d+)\}\r\n`)

// withLiterals is resp, a FETCH response with a body section, whose section's literal is
// replaced by n literals of size bytes each under the same section name.
func withLiterals(resp []byte, n, size int) io.Reader {
	m := bodyLiteral.FindSubmatchIndex(resp)
	Expect(m).NotTo(BeNil(), "no body literal in %q", resp)
	old, _ := strconv.Atoi(string(resp[m[2]:m[3]]))
	section := string(resp[m[0] : bytes.LastIndexByte(resp[m[0]:m[1]], '{')+m[0]])
	parts := []io.Reader{bytes.NewReader(resp[:m[0]])}
	for i := range n {
		if i > 0 {
			parts = append(parts, text(" "))
		}
		parts = append(parts, text(fmt.Sprintf("%s{%d}\r\n", section, size)), io.LimitReader(endless('x'), int64(size)))
	}
	return io.MultiReader(append(parts, bytes.NewReader(resp[m[1]+old:]))...)
}

// allocated runs f and returns the bytes the process allocated meanwhile.
func allocated(f func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	f()
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc - before
}

// bodyOf reads a response's bytes as a string reader (a rewritten answer).
func text(s string) io.Reader { return strings.NewReader(s) }

var _ = DescribeHostileServer(storeKinds[0])
var _ = DescribeHostileServer(storeKinds[1])

// DescribeHostileServer declares the specs of a server whose answers contradict what it
// said before or the protocol, for devices on one kind of store.
func DescribeHostileServer(kind storeKind) bool {
	return Describe("a hostile server ("+kind.name+" store)", func() {
		var w *world
		var rw *rewriter
		var tablet *engine.Device
		var phone clients.Device
		// hostileDevice makes a device whose connections go through rw, with opts changed by tune.
		hostileDevice := func(name string, tune func(o *engine.Options)) *engine.Device {
			GinkgoHelper()
			o := w.options(kind.open(), 0)
			o.Dial = rw.dial
			if tune != nil {
				tune(&o)
			}
			d, err := engine.NewDevice(name, o)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			return d
		}
		BeforeEach(func() {
			w = newWorld(fakeserver.Options{Seed: 1})
			w.store = kind.open
			w.create("Archive")
			w.deliver("INBOX", "m1", "m2", "m3")
			rw = newRewriter(w.addr)
			tablet = hostileDevice("tablet", nil)
			phone = w.device("phone")
			settle(tablet, phone)
		})
		flag := func(d clients.Device, label, f string) {
			do(d, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{label}, Flag: f})
		}
		// refused runs a round that must fail with an error containing every one of want and
		// leave the replica as it was; the next round, against a sane server, converges with
		// nothing downloaded again.
		refused := func(final []string, want ...string) {
			GinkgoHelper()
			before := replica(tablet)
			_, err := tablet.Sync(context.Background())
			Expect(err).To(HaveOccurred(), "commands sent:\n%s", strings.Join(rw.sent(), "\n"))
			for _, s := range want {
				Expect(err.Error()).To(ContainSubstring(s))
			}
			Expect(err.Error()).NotTo(ContainSubstring("store"), "a server's answer is not a store error")
			Expect(replica(tablet)).To(Equal(before), "the refused answer changed the replica")
			rw.set(nil)
			st := syncOK(tablet)
			Expect(st.Downloaded).To(BeZero(), "messages downloaded again after the refused answer")
			w.expectConverged(final, tablet, phone)
		}
		inbox := func(cmd string, resp []byte) bool {
			return strings.HasPrefix(string(resp), "* LIST ") && regexp.MustCompile(`[ "]INBOX"?\r\n$`).Match(resp)
		}

		Context("point 5: never deletes local mail on the strength of an answer", func() {
			BeforeEach(func() {
				flag(tablet, "m1", `\Flagged`)
				flag(tablet, "m2", `\Flagged`)
			})
			final := []string{"Archive:", `INBOX: m1[\Flagged] m2[\Flagged] m3`}

			It("refuses a LIST that leaves out INBOX", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if inbox(cmd, resp) {
						return nil
					}
					return bytes.NewReader(resp)
				})
				refused(final, "LIST", "INBOX")
			})

			It("refuses a LIST that marks INBOX \\Noselect", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if inbox(cmd, resp) {
						return text(strings.Replace(string(resp), "* LIST (", `* LIST (\Noselect `, 1))
					}
					return bytes.NewReader(resp)
				})
				refused(final, "LIST", "INBOX")
			})

			It("refuses a LIST that leaves out a mailbox STATUS still finds", func() {
				w.deliver("Archive", "a1")
				settle(tablet, phone)
				do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "Archive", Labels: []string{"a1"}, Flag: `\Seen`})
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.HasPrefix(string(resp), "* LIST ") && strings.Contains(string(resp), `"Archive"`) {
						return nil
					}
					return bytes.NewReader(resp)
				})
				refused([]string{`Archive: a1[\Seen]`, `INBOX: m1[\Flagged] m2[\Flagged] m3`}, "LIST", `left out "Archive", which STATUS finds`)
			})

			It("refuses a SELECT that announces an empty mailbox where UID SEARCH lists messages", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, "SELECT INBOX") && regexp.MustCompile(`^\* \d+ EXISTS`).Match(resp) {
						return text("* 0 EXISTS\r\n")
					}
					return bytes.NewReader(resp)
				})
				refused(final, `UID SEARCH "INBOX"`, "3 UIDs listed where the mailbox has 0 messages (EXISTS)")
			})

			// answeredInRenamed puts a1 in Archive, which the phone renames Done while the
			// tablet marks a1 \Answered.
			answeredInRenamed := func() {
				GinkgoHelper()
				w.deliver("Archive", "a1")
				settle(tablet, phone)
				do(phone, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "Archive", Dest: "Done"})
				syncOK(phone)
				do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "Archive", Labels: []string{"a1"}, Flag: `\Answered`})
			}

			// The SELECT of a mailbox new to the replica has no record to check against: an
			// answer read as empty lost the pending flag of a message in a mailbox another
			// device renamed (found by the corruption sweep).
			It("refuses a SELECT without EXISTS, even of a mailbox new to the replica", func() {
				answeredInRenamed()
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, `SELECT "Done"`) && regexp.MustCompile(`^\* \d+ EXISTS`).Match(resp) {
						return nil // go-imap reads a SELECT without EXISTS as empty
					}
					return bytes.NewReader(resp)
				})
				_, err := tablet.Sync(context.Background())
				Expect(err).To(MatchError(ContainSubstring(`SELECT "Done": refused the server's answer: no EXISTS in the answer (RFC 3501 §6.3.1 requires one)`)))
				rw.set(nil)
				st := syncOK(tablet)
				Expect(st.Downloaded).To(BeZero(), "messages downloaded again")
				w.expectConverged([]string{`Done: a1[\Answered]`, `INBOX: m1[\Flagged] m2[\Flagged] m3`}, tablet, phone)
			})

			// Found by the corruption sweep: Archive, renamed Done by another device, was
			// confirmed gone by STATUS, Done was not listed, and Archive's messages, found
			// nowhere, were deleted with a flag pending on one.
			It("holds for a round the messages of a mailbox gone from a LIST that left out its new name", func() {
				answeredInRenamed()
				rw.set(func(cmd string, resp []byte) io.Reader {
					if bytes.HasPrefix(resp, []byte("* LIST ")) && bytes.Contains(resp, []byte("Done")) {
						return nil
					}
					return bytes.NewReader(resp)
				})
				syncOK(tablet)
				Expect(replica(tablet)).To(ContainElement(`Archive: a1[\Answered]`))
				rw.set(nil)
				st := syncOK(tablet)
				Expect(st.Downloaded).To(BeZero(), "messages downloaded again")
				w.expectConverged([]string{`Done: a1[\Answered]`, `INBOX: m1[\Flagged] m2[\Flagged] m3`}, tablet, phone)
			})

			It("refuses a LIST with no mailbox at all, and does not call it a store error", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.HasPrefix(string(resp), "* LIST ") {
						return nil
					}
					return bytes.NewReader(resp)
				})
				refused(final, "LIST", "no mailboxes")
			})
		})

		// The fake server offers no CONDSTORE: every round scans all flags.
		// Found by the corruption sweep: one digit off in an APPENDUID or COPYUID gave a
		// record another message's UID; every later scan found other content under it
		// and refused, and the mailbox never synced again.
		Context("point 5: takes no UID a new message cannot have", func() {
			// shifted rewrites the UID in code (APPENDUID or COPYUID, tagged, or untagged as
			// MOVE sends it) of the answer to a command containing cmd: the last number of
			// the code becomes uid.
			shifted := func(cmd, code string, uid func() uint32) func(string, []byte) io.Reader {
				re := regexp.MustCompile(`(\[` + code + ` [0-9 :,]* )(\d+)\]`)
				return func(c string, resp []byte) io.Reader {
					if strings.Contains(c, cmd) && re.Match(resp) {
						return text(re.ReplaceAllString(string(resp), fmt.Sprintf("${1}%d]", uid())))
					}
					return bytes.NewReader(resp)
				}
			}
			It("looks up an appended message whose APPENDUID names a message the replica has", func() {
				do(tablet, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
				rw.set(shifted("APPEND", "APPENDUID", func() uint32 { return w.uid("INBOX", "m3") }))
				syncOK(tablet)
				rw.set(nil)
				syncOK(tablet)
				w.expectConverged([]string{"Archive:", "INBOX: d1 m1 m2 m3"}, tablet, phone)
			})
			It("looks up a moved message whose COPYUID names a message the replica has", func() {
				w.deliver("Archive", "a1")
				settle(tablet, phone)
				do(tablet, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				rw.set(shifted("MOVE", "COPYUID", func() uint32 { return w.uid("Archive", "a1") }))
				syncOK(tablet)
				rw.set(nil)
				syncOK(tablet)
				w.expectConverged([]string{"Archive: a1 m1", "INBOX: m2 m3"}, tablet, phone)
			})
			It("looks up a moved message whose COPYUID lists ten million UIDs, without expanding them", func() {
				do(tablet, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				re := regexp.MustCompile(`\[COPYUID (\d+) [0-9:,]+ [0-9:,]+\]`)
				rw.set(func(c string, resp []byte) io.Reader {
					if strings.Contains(c, "MOVE") && re.Match(resp) {
						return text(re.ReplaceAllString(string(resp), "[COPYUID ${1} 1:10000000 1:10000000]"))
					}
					return bytes.NewReader(resp)
				})
				took := allocated(func() { syncOK(tablet) })
				Expect(took).To(BeNumerically("<", 32<<20), "bytes allocated during the round")
				rw.set(nil)
				w.expectConverged([]string{"Archive: m1", "INBOX: m2 m3"}, tablet, phone)
			})
			It("finds an appended message once when STATUS said a UIDNEXT one too high before the APPEND", func() {
				do(tablet, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
				next := regexp.MustCompile(`UIDNEXT (\d+)`)
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, "STATUS") && bytes.HasPrefix(resp, []byte("* STATUS")) {
						return text(next.ReplaceAllStringFunc(string(resp), func(m string) string {
							n, _ := strconv.Atoi(next.FindStringSubmatch(m)[1])
							return fmt.Sprintf("UIDNEXT %d", n+1)
						}))
					}
					return bytes.NewReader(resp)
				})
				st := syncOK(tablet)
				Expect(st.Uploaded).To(Equal(1))
				rw.set(nil)
				syncOK(tablet)
				w.expectConverged([]string{"Archive:", "INBOX: d1 m1 m2 m3"}, tablet, phone)
			})
		})

		Context("point 5: checks a full flag scan against EXISTS and UIDNEXT", func() {
			// m3 matches m3's UID item in a FETCH line: go-imap asks the items in any order,
			// and the server answers in that order, so UID may be the last item.
			var m3 *regexp.Regexp
			BeforeEach(func() {
				// A flag another device set, which the scan must not lose.
				Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m2")},
					Add: true, Flags: []string{`\Flagged`}})).To(Succeed())
				m3 = regexp.MustCompile(fmt.Sprintf(`\bUID %d([ )])`, w.uid("INBOX", "m3")))
			})
			// go-imap lists the items asked in any order.
			flagScan := func(cmd string) bool {
				return strings.Contains(cmd, "UID FETCH 1:* (") && strings.Contains(cmd, "FLAGS") && !strings.Contains(cmd, "BODY")
			}
			final := []string{"Archive:", `INBOX: m1 m2[\Flagged] m3`}

			It("takes a FETCH answer short of EXISTS for an error, not for expunges", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if flagScan(cmd) && m3.Match(resp) {
						return nil
					}
					return bytes.NewReader(resp)
				})
				refused(final, `UID FETCH "INBOX"`, "2 messages where the mailbox has 3")
			})

			It("takes a BYE in the middle of a FETCH answer, then a tagged OK, for an error, and says BYE", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if flagScan(cmd) && m3.Match(resp) {
						return text("* BYE going away now\r\n")
					}
					return bytes.NewReader(resp)
				})
				refused(final, `UID FETCH "INBOX"`, `BYE "going away now"`)
			})

			It("refuses an answer where two messages claim one UID", func() {
				m2 := fmt.Sprintf("UID %d$1", w.uid("INBOX", "m2"))
				rw.set(func(cmd string, resp []byte) io.Reader {
					if flagScan(cmd) && m3.Match(resp) {
						// go-imap gives the command each UID once: the second claimant is left out.
						return text(m3.ReplaceAllString(string(resp), m2))
					}
					return bytes.NewReader(resp)
				})
				refused(final, `UID FETCH "INBOX"`, "2 messages where the mailbox has 3")
			})

			It("refuses a UIDNEXT that went back", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, `SELECT INBOX`) || strings.Contains(cmd, `SELECT "INBOX"`) {
						return text(regexp.MustCompile(`\[UIDNEXT \d+\]`).ReplaceAllString(string(resp), "[UIDNEXT 2]"))
					}
					return bytes.NewReader(resp)
				})
				refused(final, `SELECT "INBOX"`, "UIDNEXT went back")
			})
		})

		// The tap reads a flag scan's plain answers itself and leaves the others to go-imap
		// (flagtap.go): however the server cuts and spells them, the flags are the same.
		It("reads the same flags from a flag scan cut into single bytes, in small letters, with odd spaces", func() {
			flag(phone, "m1", `\Seen`)
			flag(phone, "m1", "$Forwarded")
			flag(phone, "m2", "$Work")
			flag(phone, "m3", `\Answered`)
			syncOK(phone)
			m1 := regexp.MustCompile(fmt.Sprintf(`\bUID %d[ )]`, w.uid("INBOX", "m1")))
			m2 := regexp.MustCompile(fmt.Sprintf(`\bUID %d[ )]`, w.uid("INBOX", "m2")))
			scans := 0
			rw.set(func(cmd string, resp []byte) io.Reader {
				if !strings.Contains(cmd, "UID FETCH 1:* (") || !bytes.Contains(resp, []byte(" FETCH (")) {
					return bytes.NewReader(resp)
				}
				scans++
				s := string(resp)
				switch {
				case m1.MatchString(s):
					s = strings.ToLower(s) // go-imap spells \seen and $forwarded its way
				case m2.MatchString(s):
					s = strings.Replace(s, "FLAGS (", "FLAGS ( ", 1)
				default:
					s = strings.Replace(s, "FLAGS (", "FLAGS (\\Recent ", 1)
				}
				return iotest.OneByteReader(strings.NewReader(s))
			})
			syncOK(tablet)
			Expect(scans).To(BeNumerically(">=", 3))
			w.expectConverged([]string{"Archive:", `INBOX: m1[$Forwarded,\Seen] m2[$Work] m3[\Answered]`}, tablet, phone)
		})

		Context("point 6: memory stays bounded whatever size the server announces", func() {
			It("refuses a body literal announced as 2 GB without reading it", func() {
				w.deliver("Archive", "big")
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, "BODY.PEEK[]") && bytes.HasPrefix(resp, []byte("* ")) && bytes.Contains(resp, []byte(" FETCH ")) {
						uid := regexp.MustCompile(`UID (\d+)`).FindSubmatch(resp)
						return io.MultiReader(text(fmt.Sprintf("* 1 FETCH (UID %s BODY[] {2147483648}\r\n", uid[1])),
							io.LimitReader(endless(0), 2147483648), text(")\r\n"))
					}
					return bytes.NewReader(resp)
				})
				fresh := hostileDevice("laptop", nil)
				var err error
				took := allocated(func() { _, err = fresh.Sync(context.Background()) })
				Expect(err).To(MatchError(engine.ErrMessageTooBig))
				Expect(err.Error()).To(ContainSubstring(`UID FETCH "Archive": message too big: UID 1 is 2147483648 bytes, over the limit of 67108864`))
				Expect(took).To(BeNumerically("<", 32<<20), "bytes allocated during the round")
				rw.set(nil)
				w.expectConverged([]string{"Archive: big", "INBOX: m1 m2 m3"}, fresh, tablet, phone)
			})

			// refusedSmall is refused, allocating less than max bytes (the round after it, on
			// three small messages, takes well under a mebibyte).
			refusedSmall := func(max uint64, want ...string) {
				GinkgoHelper()
				took := allocated(func() { refused([]string{"Archive:", "INBOX: m1 m2 m3"}, want...) })
				Expect(took).To(BeNumerically("<", max), "bytes allocated during the rounds")
			}

			It("hangs up on a line of 2 GB, holding no more of it than the longest line it takes", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, "UID FETCH 1:*") && bytes.HasPrefix(resp, []byte("* 1 FETCH ")) {
						return io.MultiReader(text(`* 1 FETCH (FLAGS (\Seen `), io.LimitReader(endless('a'), 2<<30))
					}
					return bytes.NewReader(resp)
				})
				refusedSmall(64<<20, `UID FETCH "INBOX"`, "a line longer than 8388608 bytes; the connection was closed")
			})

			// patient makes a device whose commands time out after two minutes: under the
			// race detector, go-imap takes more than ten seconds to read the 34 MB of
			// SEARCH lines the engine takes before it hangs up.
			patient := func() *engine.Device {
				return hostileDevice("laptop", func(o *engine.Options) { o.CommandTimeout = 2 * time.Minute })
			}
			// endlessRound runs a round of d in which the answer to the command containing
			// cmd is, from its first response beginning with prefix on, line(1), line(2), …
			// without end; it returns the bytes the round allocated and its error.
			endlessRound := func(d *engine.Device, cmd, prefix string, line func(buf []byte, i int) []byte) (uint64, error) {
				rw.set(func(c string, resp []byte) io.Reader {
					if strings.Contains(c, cmd) && bytes.HasPrefix(resp, []byte(prefix)) {
						return &generated{line: line}
					}
					return bytes.NewReader(resp)
				})
				var err error
				took := allocated(func() { _, err = d.Sync(context.Background()) })
				rw.set(nil)
				w.expectConverged([]string{"Archive:", "INBOX: m1 m2 m3"}, d, tablet, phone)
				return took, err
			}

			// Without the bound, the next three run until the command's watchdog, holding
			// every response.
			It("hangs up on a flag scan that names new UIDs without end", func() {
				d := patient()
				settle(d)
				took, err := endlessRound(d, "UID FETCH 1:*", "* 1 FETCH ", func(buf []byte, i int) []byte {
					return fmt.Appendf(buf, "* %d FETCH (UID %d FLAGS (\\Seen))\r\n", i, i+1000)
				})
				Expect(err).To(MatchError(ContainSubstring(`UID FETCH "INBOX": refused the server's answer: more than 100006 untagged responses to one command (twice the largest mailbox, 3 messages, and 100000); the connection was closed`)))
				Expect(took).To(BeNumerically("<", 64<<20), "bytes allocated during the rounds")
			})

			It("hangs up on a LIST of mailboxes without end", func() {
				took, err := endlessRound(patient(), "LIST", "* LIST ", func(buf []byte, i int) []byte {
					return fmt.Appendf(buf, "* LIST () \"/\" Box%d\r\n", i)
				})
				Expect(err).To(MatchError(ContainSubstring(`LIST: refused the server's answer: more than 100000 untagged responses to one command`)))
				Expect(took).To(BeNumerically("<", 128<<20), "bytes allocated during the rounds")
			})

			It("hangs up on a UID SEARCH answered by long lines without end", func() {
				Expect(w.srv.Apply(fakeserver.SetCaps{Disable: []string{"ESEARCH"}})).To(Succeed())
				took, err := endlessRound(patient(), "UID SEARCH", "* SEARCH", func(buf []byte, i int) []byte {
					buf = append(buf, "* SEARCH"...)
					for u := range 100_000 { // 1 MiB, UIDs no two in a row
						buf = strconv.AppendInt(append(buf, ' '), int64(2*(i*100_000+u)), 10)
					}
					return append(buf, "\r\n"...)
				})
				Expect(err).To(MatchError(ContainSubstring(`UID SEARCH "INBOX": refused the server's answer: more than 33990144 bytes of untagged responses to one command`)))
				// go-imap allocates about ten bytes for each byte of a SEARCH line it reads.
				Expect(took).To(BeNumerically("<", 512<<20), "bytes allocated during the rounds")
			})

			It("refuses an ESEARCH that lists four billion UIDs, without expanding them", func() {
				all := regexp.MustCompile(` ALL [0-9:,]+`)
				rw.set(func(c string, resp []byte) io.Reader {
					if bytes.HasPrefix(resp, []byte("* ESEARCH ")) {
						return text(all.ReplaceAllString(string(resp), " ALL 1:4294967295"))
					}
					return bytes.NewReader(resp)
				})
				fresh := hostileDevice("laptop", nil)
				var err error
				took := allocated(func() { _, err = fresh.Sync(context.Background()) })
				Expect(err).To(MatchError(ContainSubstring(`UID SEARCH "INBOX": refused the server's answer: 4294967295 UIDs listed where the mailbox has 3 messages (EXISTS)`)))
				Expect(took).To(BeNumerically("<", 16<<20), "bytes allocated during the round")
				rw.set(nil)
				w.expectConverged([]string{"Archive:", "INBOX: m1 m2 m3"}, fresh, tablet, phone)
			})

			It("hangs up on a literal of 2 GB outside a body, at its announcement", func() {
				rw.set(func(cmd string, resp []byte) io.Reader {
					if bytes.HasPrefix(resp, []byte("* LIST ")) && bytes.Contains(resp, []byte("Archive")) {
						return io.MultiReader(text("* LIST () \"/\" {2147483648}\r\n"), io.LimitReader(endless(0), 2<<30), text("\r\n"))
					}
					return bytes.NewReader(resp)
				})
				refusedSmall(16<<20, "LIST", "a literal of 2147483648 bytes, over the limit of 67108864 (MaxMessageSize); the connection was closed")
			})

			// overRound runs a round of d in which each body section of the answers to
			// commands containing cmd comes as n literals of size bytes; it returns the bytes
			// the round allocated and its error.
			overRound := func(d *engine.Device, cmd string, n, size int) (uint64, error) {
				rw.set(func(c string, resp []byte) io.Reader {
					if strings.Contains(c, cmd) && bodyLiteral.Match(resp) {
						return withLiterals(resp, n, size)
					}
					return bytes.NewReader(resp)
				})
				var err error
				took := allocated(func() { _, err = d.Sync(context.Background()) })
				return took, err
			}

			It("holds at most the limit and two batches of message text from one answer, whatever RFC822.SIZE said", func() {
				small := hostileDevice("laptop", func(o *engine.Options) { o.MaxMessageSize = 1 << 20 })
				settle(small)
				for i := range 40 {
					w.deliver("INBOX", fmt.Sprintf("n%d", i))
				}
				// Each new message's Message-ID header comes as 1 MiB.
				took, err := overRound(small, "HEADER.FIELDS", 1, 1<<20)
				Expect(err).To(MatchError(ContainSubstring(`UID FETCH "INBOX": refused the server's answer: more than 17825792 bytes of message text in one answer; the connection was closed`)))
				Expect(took).To(BeNumerically("<", 48<<20), "bytes allocated during the round")
				Expect(replica(small)).To(Equal([]string{"Archive:", "INBOX: m1 m2 m3"}))
				rw.set(nil)
				syncOK(small)
				Expect(replica(small)).To(HaveLen(2))
				Expect(replica(small)[1]).To(HavePrefix("INBOX: m1 m2 m3 n0 n1 "))
			})

			It("holds at most the limit of message text from one message that sends its body over and over", func() {
				fresh := hostileDevice("laptop", func(o *engine.Options) { o.MaxMessageSize = 1 << 20 })
				took, err := overRound(fresh, "BODY.PEEK[]", 1000, 1<<19)
				Expect(err).To(MatchError(ContainSubstring(`UID FETCH "INBOX": refused the server's answer: more than 1048576 bytes of message text in one message; the connection was closed`)))
				Expect(took).To(BeNumerically("<", 16<<20), "bytes allocated during the round")
				rw.set(nil)
				w.expectConverged([]string{"Archive:", "INBOX: m1 m2 m3"}, fresh, tablet, phone)
			})

			It("refuses a message whose RFC822.SIZE is over the limit before fetching its body", func() {
				small := hostileDevice("laptop", func(o *engine.Options) { o.MaxMessageSize = 4096 })
				settle(small)
				w.deliver("INBOX", "big")
				uid := w.uid("INBOX", "big")
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(string(resp), fmt.Sprintf("UID %d ", uid)) {
						return text(regexp.MustCompile(`RFC822\.SIZE \d+`).ReplaceAllString(string(resp), "RFC822.SIZE 3000000000"))
					}
					return bytes.NewReader(resp)
				})
				from := len(rw.sent())
				_, err := small.Sync(context.Background())
				Expect(err).To(MatchError(engine.ErrMessageTooBig))
				Expect(err.Error()).To(ContainSubstring(fmt.Sprintf(`UID FETCH "INBOX": message too big: UID %d is 3000000000 bytes`, uid)))
				for _, c := range rw.sent()[from:] {
					Expect(c).NotTo(ContainSubstring("BODY.PEEK[]"), "a body was fetched")
				}
				Expect(replica(small)).To(Equal([]string{"Archive:", "INBOX: m1 m2 m3"}))
			})
		})

		// RFC 3501 §7.1.4: a connection greeted with PREAUTH is logged in already, and a
		// LOGIN there is a command in the wrong state (BAD).
		It("syncs through a connection greeted with PREAUTH, sending no LOGIN", func() {
			pre := newRewriter(w.addr)
			pre.preauth = true
			o := w.options(kind.open(), 0)
			o.Dial = pre.dial
			d, err := engine.NewDevice("laptop", o)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			flag(phone, "m2", `\Flagged`)
			settle(d, phone)
			w.expectConverged([]string{"Archive:", `INBOX: m1 m2[\Flagged] m3`}, d, tablet, phone)
			for _, c := range pre.sent() {
				Expect(c).NotTo(ContainSubstring("LOGIN"))
			}
		})

		It("point 7: falls back to COPY when the server stops offering MOVE on an open connection", func() {
			do(tablet, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
			Expect(w.srv.Apply(fakeserver.SetCaps{Disable: []string{"MOVE"}})).To(Succeed())
			syncOK(tablet)
			w.expectConverged([]string{"Archive: m1", "INBOX: m2 m3"}, tablet, phone)
		})

		Context("point 8: errors say what happened", func() {
			It("says a command timed out when the watchdog closed the connection", func() {
				slow := hostileDevice("laptop", func(o *engine.Options) { o.CommandTimeout = 200 * time.Millisecond })
				settle(slow)
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, "SELECT") {
						return nil // never answered
					}
					return bytes.NewReader(resp)
				})
				_, err := slow.Sync(context.Background())
				Expect(err).To(MatchError(ContainSubstring(`SELECT "Archive": command timed out after 200ms`)))
				Expect(err.Error()).NotTo(ContainSubstring("use of closed network connection"))
				rw.set(nil)
				syncOK(slow)
			})

			It("hangs up at a BYE instead of waiting for a server that keeps the connection open", func() {
				slow := hostileDevice("laptop", func(o *engine.Options) { o.CommandTimeout = time.Minute })
				settle(slow)
				rw.set(func(cmd string, resp []byte) io.Reader {
					if strings.Contains(cmd, "SELECT") && bytes.Contains(resp, []byte(" OK ")) && !bytes.HasPrefix(resp, []byte("* ")) {
						return text("* BYE going away\r\n") // and the connection stays open
					}
					return bytes.NewReader(resp)
				})
				start := time.Now()
				_, err := slow.Sync(context.Background())
				Expect(err).To(MatchError(ContainSubstring(`BYE "going away"`)))
				Expect(time.Since(start)).To(BeNumerically("<", 30*time.Second), "the round waited for the watchdog")
				rw.set(nil)
				syncOK(slow)
			})

			It("keeps the text of a BYE that ends the connection", func() {
				Expect(w.srv.Apply(fakeserver.Fail{N: 2, Command: "SELECT", Response: "BYE shutting down for maintenance"})).To(Succeed())
				_, err := tablet.Sync(context.Background())
				Expect(err).To(MatchError(ContainSubstring(`"shutting down for maintenance"`)))
				syncOK(tablet)
			})

			It("names the device once, where the caller wraps it", func() {
				Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: "LIST", Response: "BAD no"})).To(Succeed())
				_, err := tablet.Sync(context.Background())
				Expect(err).To(MatchError(HavePrefix("engine: LIST: ")))
			})
		})
	})
}
