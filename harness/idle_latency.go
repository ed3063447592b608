package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/syncharness/syncharness/scenarios"
)

// IdleLatency is how long a server took to tell an idling client of a new message, as
// MeasureIdleLatency measured it once for a run.
type IdleLatency struct {
	// D is the longer time from a probe message's delivery to the client's * EXISTS, of
	// two deliveries; with Over, the probe's limit, which the server exceeded.
	D    time.Duration
	Over bool
}

func (l IdleLatency) String() string {
	if l.Over {
		return "more than " + seconds1(l.D)
	}
	return seconds1(l.D)
}

func seconds1(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// MaxWithin returns the longest within= of the scenarios' expectations, zero without any:
// push scenarios are those with one.
func MaxWithin(list []*scenarios.Scenario) time.Duration {
	var most time.Duration
	var walk func([]*scenarios.Step)
	walk = func(steps []*scenarios.Step) {
		for _, st := range steps {
			if st.Expect != nil && st.Expect.Within > most {
				most = st.Expect.Within
			}
			walk(st.Body)
		}
	}
	for _, s := range list {
		walk(s.Steps)
	}
	return most
}

// MeasureIdleLatency measures, once, how long the target's server takes to tell a client
// in IDLE (RFC 2177) of a message delivered by another: one client selects INBOX and
// idles, the harness delivers a message as a server step and times, in real time, the
// client's wait for * EXISTS; then it delivers a second one as soon as the first was
// told. The longer wait is the latency: a server that polls its mailboxes every minute
// instead of being woken by each change tells of the first at a poll whose phase is
// chance, of the second a whole period later, and push scenarios expecting a change
// within seconds cannot pass against it. It waits at most limit for each message
// (IdleProbeLimit) and stops when ctx ends. The probe runs in a scenario folder of its
// own, removed afterwards.
func MeasureIdleLatency(ctx context.Context, target Target, limit time.Duration) (IdleLatency, error) {
	if target == nil {
		target = FakeTarget{}
	}
	srv, err := target.Open(ctx, ServerConfig{Scenario: "idle-latency-probe", Seed: 1})
	if err != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: open server: %w", err)
	}
	defer srv.Close()
	conn, err := srv.Dial(ctx)
	if err != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: connect: %w", err)
	}
	defer conn.Close()
	// Waiting up to five minutes (--idle-wait) must still end at Ctrl-C.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	lat, err := probe(ctx, srv, conn, limit)
	if err != nil && ctx.Err() != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: %w", ctx.Err())
	}
	return lat, err
}

// probe logs conn in, idles in INBOX and times two deliveries (MeasureIdleLatency).
func probe(ctx context.Context, srv Server, conn net.Conn, limit time.Duration) (IdleLatency, error) {
	c := &probeConn{conn: conn, r: bufio.NewReader(conn)}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	user, pass := srv.Credentials()
	if _, err := c.line(); err != nil { // the greeting
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: greeting: %w", err)
	}
	if err := c.do(fmt.Sprintf("LOGIN %q %q", user, pass)); err != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: LOGIN: %w", err)
	}
	caps, err := c.untagged("CAPABILITY")
	if err != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: CAPABILITY: %w", err)
	}
	if !hasIdle(caps) {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: the server does not offer IDLE")
	}
	if err := c.do("SELECT INBOX"); err != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: SELECT INBOX: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "p9 IDLE\r\n"); err != nil {
		return IdleLatency{}, err
	}
	if l, err := c.line(); err != nil || !strings.HasPrefix(l, "+") {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: IDLE not accepted: %q %v", l, err)
	}
	// Two deliveries: the first may fall just before a polling server's next poll, the
	// second, made as soon as the first was told, waits a whole period. The longer is the
	// latency, so a push scenario that waits for it (--idle-wait) waits long enough
	// whatever the phase of the server's polls.
	var most time.Duration
	for n := 1; n <= 2; n++ {
		lat, err := c.deliverAndWait(ctx, srv, n, limit)
		if err != nil || lat.Over {
			return lat, err
		}
		most = max(most, lat.D)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = fmt.Fprintf(conn, "DONE\r\n")
	return IdleLatency{D: most}, nil
}

// deliverAndWait delivers probe message n to INBOX as a server step and waits, at most
// limit, for the idling client to read its * EXISTS.
func (c *probeConn) deliverAndWait(ctx context.Context, srv Server, n int, limit time.Duration) (IdleLatency, error) {
	body := fmt.Appendf(nil, "From: probe@syncharness.invalid\r\nMessage-ID: <idle-probe-%d@syncharness.invalid>\r\nSubject: idle latency probe %d\r\n\r\nprobe\r\n", n, n)
	label := fmt.Sprintf("idle-probe-%d", n)
	if err := srv.Do(ctx, ServerOp{Kind: "deliver", Mailbox: "INBOX", Messages: []ServerMessage{{Label: label, Body: body}}}); err != nil {
		return IdleLatency{}, fmt.Errorf("IDLE latency probe: deliver %s: %w", label, err)
	}
	start := time.Now()
	_ = c.conn.SetDeadline(start.Add(limit))
	for {
		l, err := c.line()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return IdleLatency{D: limit, Over: true}, nil
		}
		if err != nil {
			return IdleLatency{}, fmt.Errorf("IDLE latency probe: waiting for EXISTS of %s: %w", label, err)
		}
		if strings.HasPrefix(l, "p9 ") {
			return IdleLatency{}, fmt.Errorf("IDLE latency probe: IDLE ended: %s", l)
		}
		if f := strings.Fields(l); len(f) == 3 && f[0] == "*" && strings.EqualFold(f[2], "EXISTS") {
			return IdleLatency{D: time.Since(start)}, nil
		}
	}
}

type probeConn struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func (c *probeConn) line() (string, error) {
	l, err := c.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// do sends a command and reads up to its tagged answer, which must be OK.
func (c *probeConn) do(cmd string) error {
	_, err := c.untagged(cmd)
	return err
}

// untagged sends a command and returns its untagged answers; the tagged one must be OK.
func (c *probeConn) untagged(cmd string) ([]string, error) {
	c.n++
	tag := fmt.Sprintf("p%d", c.n)
	if _, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, cmd); err != nil {
		return nil, err
	}
	var out []string
	for {
		l, err := c.line()
		if err != nil {
			return out, err
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(strings.ToUpper(rest), "OK") {
				return out, fmt.Errorf("%s", rest)
			}
			return out, nil
		}
		out = append(out, l)
	}
}

func hasIdle(lines []string) bool {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "*" && strings.EqualFold(f[1], "CAPABILITY") {
			for _, c := range f[2:] {
				if strings.EqualFold(c, "IDLE") {
					return true
				}
			}
		}
	}
	return false
}

// idleSkip returns why the scenario cannot pass against a server with the measured IDLE
// latency (IdleSkipReason), or "".
func (r *runner) idleSkip() string {
	return IdleSkipReason(r.scn, r.opts.IdleLatency, r.opts.IdleWait)
}

// IdleSkipReason returns why scn cannot pass against a server with the IDLE latency lat
// (an expectation's within= shorter than it): the reason a run skips it with. It is "" when
// it can, when lat was not measured, or when wait makes every within= wait for the server
// (Options.IdleWait). explore compares a skipped run's reason with it to count the runs
// skipped for the server's slowness apart.
func IdleSkipReason(scn *scenarios.Scenario, lat IdleLatency, wait bool) string {
	if lat.D <= 0 || wait {
		return ""
	}
	var reason string
	var walk func([]*scenarios.Step)
	walk = func(steps []*scenarios.Step) {
		for _, st := range steps {
			if reason != "" {
				return
			}
			if e := st.Expect; e != nil && e.Within > 0 && (lat.Over || lat.D > e.Within) {
				reason = fmt.Sprintf("push: the server told an idling client of a new message after %s (measured once for this run), longer than within=%s on line %d; RFC 2177 sets no bound, so this is no engine failure (--idle-wait waits for the server instead)",
					lat, e.Within, st.Line)
			}
			walk(st.Body)
		}
	}
	walk(scn.Steps)
	return reason
}

// IdleProbeLimit is how long MeasureIdleLatency waits for each notification when the
// longest within= is most: a second beyond it, enough to tell that the server is too slow
// for it; with wait (--idle-wait), five minutes, to learn how long to wait.
func IdleProbeLimit(most time.Duration, wait bool) time.Duration {
	if wait {
		return 5 * time.Minute
	}
	return most + time.Second
}

// idleExtra is what every within= waits on top, for a slow IDLE server (Options.IdleWait).
func (r *runner) idleExtra() time.Duration {
	if !r.opts.IdleWait {
		return 0
	}
	return r.opts.IdleLatency.D
}
