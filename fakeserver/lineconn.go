package fakeserver

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"sync"
)

// lineConn is a connection whose IMAP lines pass, in each direction, through a function that
// may rewrite them; literals pass untouched. Wire bugs and server modes that the go-imap
// server cannot express are made this way.
type lineConn struct {
	net.Conn
	client func(string) string // rewrites a line from the client; immutable
	server func(string) string // rewrites a line from the server; immutable

	rmu  sync.Mutex
	rin  []byte // read from the client, not yet parsed
	rout []byte // parsed, not yet returned
	rlit int    // literal bytes still to pass from the client

	wmu  sync.Mutex
	win  []byte // written by the server, not yet parsed
	wlit int    // literal bytes still to pass from the server
}

var literalEnd = regexp.MustCompile(`\{(\d+)\+?\}$`)

func (c *lineConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rout) == 0 {
		buf := make([]byte, 32<<10)
		n, err := c.Conn.Read(buf)
		c.rin = append(c.rin, buf[:n]...)
		c.rout = streamLines(c.rout, &c.rin, &c.rlit, c.client)
		if err != nil && len(c.rout) == 0 {
			return 0, err
		}
	}
	n := copy(p, c.rout)
	c.rout = c.rout[n:]
	return n, nil
}

func (c *lineConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.win = append(c.win, p...)
	out := streamLines(nil, &c.win, &c.wlit, c.server)
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// streamLines moves complete lines (rewritten by line) and literals from in to out.
func streamLines(out []byte, in *[]byte, lit *int, line func(string) string) []byte {
	for len(*in) > 0 {
		if *lit > 0 {
			n := min(*lit, len(*in))
			out = append(out, (*in)[:n]...)
			*in, *lit = (*in)[n:], *lit-n
			continue
		}
		i := bytes.Index(*in, []byte("\r\n"))
		if i < 0 {
			break
		}
		l := string((*in)[:i])
		*in = (*in)[i+2:]
		if m := literalEnd.FindStringSubmatch(l); m != nil {
			*lit, _ = strconv.Atoi(m[1])
			out = append(out, l...)
		} else {
			out = append(out, line(l)...)
		}
		out = append(out, "\r\n"...)
	}
	return out
}
