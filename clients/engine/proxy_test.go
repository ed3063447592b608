package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"

	. "github.com/onsi/ginkgo/v2"
)

// cutter sits between a device and the server and counts the IMAP commands the device
// sends. With CutAfter set to n > 0, it forwards the n-th command, waits until the server
// has answered it, and then drops the connection without passing the answer on: the
// server did the work and the device never learned of it, the worst moment for a crash.
type cutter struct {
	target string

	mu sync.Mutex
	// before, when set, runs before each command is passed on (the command line as sent):
	// a test makes another client act at an exact point of a round.
	before func(cmd string)
	// hide, when set, drops the server lines it returns true for (hostile server data).
	hide     func(line []byte) bool
	count    int
	cutAfter int
	cutMatch string // cut after the first command containing it
	cutNext  string // cut after the command that follows the first one containing it
	nextSeen bool   // the command cutNext names went by
}

func newCutter(target string) *cutter {
	return &cutter{target: target}
}

// arm resets the counter and sets the command after which to cut (0: never).
func (c *cutter) arm(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count, c.cutAfter, c.cutMatch, c.cutNext = 0, n, "", ""
}

// armMatch resets the counter and cuts after the first command that contains s.
func (c *cutter) armMatch(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count, c.cutAfter, c.cutMatch, c.cutNext = 0, 0, s, ""
}

// armNext resets the counter and cuts after the command that follows the first one that
// contains s: what that command started is committed, the rest of the round is lost.
func (c *cutter) armNext(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count, c.cutAfter, c.cutMatch, c.cutNext, c.nextSeen = 0, 0, "", s, false
}

// setBefore sets the hook run before each command.
func (c *cutter) setBefore(fn func(cmd string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before = fn
}

// setHide sets the filter of server lines.
func (c *cutter) setHide(fn func(line []byte) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hide = fn
}

func (c *cutter) commands() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

var literalRE = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)

// dial connects through the cutter.
func (c *cutter) dial(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	crashed := c.cutAfter > 0 && c.count >= c.cutAfter
	c.mu.Unlock()
	if crashed {
		// The device process is down until it restarts (arm again).
		return nil, errors.New("cutter: device crashed")
	}
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", c.target)
	if err != nil {
		return nil, err
	}
	a, b := net.Pipe()
	var mute sync.Mutex
	muted := false
	wantTag := ""
	answered := make(chan struct{}) // the cut command's answer went by, or the server left
	var answerOnce sync.Once
	answer := func() { answerOnce.Do(func() { close(answered) }) }
	closeAll := func() {
		_ = a.Close()
		_ = b.Close()
		_ = up.Close()
	}
	// device → server: whole commands, literals included.
	go func() {
		defer GinkgoRecover()
		defer closeAll()
		r := bufio.NewReader(b)
		for {
			var cmd bytes.Buffer
			for {
				line, err := r.ReadBytes('\n')
				cmd.Write(line)
				if err != nil {
					return
				}
				m := literalRE.FindSubmatch(line)
				if m == nil {
					break
				}
				n, _ := strconv.Atoi(string(m[1]))
				if _, err := io.CopyN(&cmd, r, int64(n)); err != nil {
					return
				}
			}
			if bytes.HasPrefix(cmd.Bytes(), []byte("DONE")) {
				if _, err := up.Write(cmd.Bytes()); err != nil {
					return
				}
				continue
			}
			c.mu.Lock()
			before := c.before
			c.mu.Unlock()
			if before != nil {
				before(cmd.String())
			}
			c.mu.Lock()
			c.count++
			if c.cutMatch != "" && c.cutAfter == 0 && bytes.Contains(cmd.Bytes(), []byte(c.cutMatch)) {
				c.cutAfter = c.count
			}
			if c.cutNext != "" && c.cutAfter == 0 {
				if c.nextSeen {
					c.cutAfter = c.count
				} else if bytes.Contains(cmd.Bytes(), []byte(c.cutNext)) {
					c.nextSeen = true
				}
			}
			cutNow := c.cutAfter > 0 && c.count == c.cutAfter
			c.mu.Unlock()
			if cutNow {
				tag, _, _ := bytes.Cut(cmd.Bytes(), []byte(" "))
				mute.Lock()
				muted, wantTag = true, string(tag)
				mute.Unlock()
			}
			if _, err := up.Write(cmd.Bytes()); err != nil {
				return
			}
			if cutNow {
				<-answered // the server did the work; the device never learns of it
				return
			}
		}
	}()
	// server → device, line by line; after the cut, nothing more is passed on.
	go func() {
		defer GinkgoRecover()
		defer closeAll()
		defer answer()
		r := bufio.NewReader(up)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			mute.Lock()
			m, tag := muted, wantTag
			mute.Unlock()
			if m {
				if bytes.HasPrefix(line, []byte(tag+" ")) {
					return // answer() runs on the way out
				}
				continue
			}
			c.mu.Lock()
			hide := c.hide
			c.mu.Unlock()
			if hide != nil && hide(line) {
				continue
			}
			if _, err := b.Write(line); err != nil {
				return
			}
		}
	}()
	return a, nil
}
