package proxy_test

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// literalEnd matches a line that announces a literal, capturing its size and the "+".
var literalEnd = regexp.MustCompile(`~?\{(\d+)(\+?)\}\r\n$`)

// startRecorder runs an upstream that greets, records every byte it receives, answers a
// synchronizing literal with "+ go" and every complete command with "TAG OK". It
// understands literals itself, so it can tell where commands end.
func startRecorder() (addr string, received func() string) {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var (
		mu  sync.Mutex
		got strings.Builder
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "* OK ready\r\n"); err != nil {
			return
		}
		r := bufio.NewReader(conn)
		tag := ""
		for {
			line, err := r.ReadString('\n')
			mu.Lock()
			got.WriteString(line)
			mu.Unlock()
			if err != nil {
				return
			}
			if tag == "" {
				tag, _, _ = strings.Cut(line, " ")
			}
			m := literalEnd.FindStringSubmatch(line)
			if m == nil {
				if _, err := io.WriteString(conn, tag+" OK done\r\n"); err != nil {
					return
				}
				tag = ""
				continue
			}
			if m[2] == "" {
				if _, err := io.WriteString(conn, "+ go\r\n"); err != nil {
					return
				}
			}
			n, _ := strconv.Atoi(m[1])
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			mu.Lock()
			got.Write(buf)
			mu.Unlock()
		}
	}()
	DeferCleanup(func() {
		Expect(ln.Close()).To(Succeed())
		wg.Wait()
	})
	return ln.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		return got.String()
	}
}

var _ = Describe("Literals", func() {
	DescribeTable("pass through byte for byte and are never taken for commands",
		func(parts []string, commands int) {
			addr, received := startRecorder()
			p := startProxy(addr, nil)
			rc, _ := dialRaw(p)
			sent := ""
			for _, part := range parts {
				_, err := io.WriteString(rc.conn, part)
				Expect(err).NotTo(HaveOccurred())
				sent += part
				if strings.HasSuffix(part, "}\r\n") && !strings.HasSuffix(part, "+}\r\n") {
					Expect(rc.readLine()).To(Equal("+ go"))
				}
			}
			Expect(rc.until("z9 ")).To(ContainElement("z9 OK done"))
			Eventually(received).Should(Equal(sent))
			Expect(p.Commands()).To(Equal(commands))
		},
		Entry("a literal holding CRLF and command-like lines",
			[]string{"a1 APPEND INBOX {24}\r\n", "a2 LOGOUT\r\nb3 NOOP {3}\r\n\r\n", "z9 NOOP\r\n"}, 2),
		Entry("non-synchronizing literals in one write with the next command",
			[]string{"a1 APPEND INBOX {6+}\r\nx\r\ny\r\n a2 {2+}\r\nab\r\nz9 NOOP\r\n"}, 2),
		Entry("a literal8 with NUL bytes",
			[]string{"a1 APPEND INBOX ~{4}\r\n", "\x00\r\x00\n\r\n", "z9 NOOP\r\n"}, 2),
		Entry("an empty literal",
			[]string{"a1 LOGIN {0}\r\n", " x\r\n", "z9 NOOP\r\n"}, 2),
		Entry("a line longer than the read buffer",
			[]string{"a1 SEARCH TEXT " + strings.Repeat("q", 200<<10) + "\r\n", "z9 NOOP\r\n"}, 2),
		Entry("a literal longer than the read buffer",
			[]string{"a1 APPEND INBOX {204800+}\r\n" + strings.Repeat("r\n", 100<<10) + "\r\nz9 NOOP\r\n"}, 2),
	)
})
