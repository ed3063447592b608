package fakeserver

import "time"

// idleState is what a session in IDLE tells IdleQuiet.
type idleState struct {
	on       bool // the session is in IDLE
	flushing bool // it is writing updates out
	woken    bool // it wrote an update since IDLE began: the client has something to react to
	held     bool // its updates wait for the next poll of the idle-every mode
}

// IdleQuiet reports on the session whose client connected from addr (as the client sees
// its own local address): known is false when no session has that address; quiet is true
// when the session is in IDLE, has written no update since IDLE began, and has none
// waiting to be written (updates the idle-every mode holds until its next poll do not
// count: the client has nothing to react to before then). A client whose IDLE connection
// is quiet has nothing to react to until the next change: the harness's deterministic
// mode waits for that before it goes on, so that push episodes happen at the same point
// of every run.
func (s *Server) IdleQuiet(addr string) (known, quiet bool) {
	sess := s.sessionFrom(addr)
	if sess == nil {
		return false, false
	}
	sess.qmu.Lock()
	defer sess.qmu.Unlock()
	st := sess.idle
	return true, st.on && !st.flushing && !st.woken && (len(sess.queue) == 0 || st.held) && sess.gone == ""
}

// ClosedConn reports whether the server closed, or has begun to close (a BYE on its way),
// the connection whose client is at addr. The harness waits, after each step of a
// deterministic run, until the client side of such a connection is gone too: whether the
// client learnt of the close before its next command would otherwise depend on timing.
func (s *Server) ClosedConn(addr string) bool {
	_, ok := s.closedAddrs.Load(addr)
	return ok
}

// SetClock gives the server the logical clock of a deterministic run (nil takes it away).
// Each change the server queues for a session is dated on it when the change is made, and
// each line an idling session writes about changes is dated by the latest change it reports
// (or, in the idle-every mode, by when the held lines went out): PushStamp hands those
// dates out. A harness that dated the lines itself when its reader got them would see
// other work take the clock forward in between, by an amount that depends on timing. now
// must be safe for concurrent use and must not wait for anything the server holds.
func (s *Server) SetClock(now func() time.Duration) {
	if now == nil {
		s.logical.Store(nil)
		return
	}
	s.logical.Store(&now)
}

// now reads the logical clock; ok is false without one.
func (s *Server) now() (at time.Duration, ok bool) {
	if f := s.logical.Load(); f != nil {
		return (*f)(), true
	}
	return 0, false
}

// PushStamp returns the date of the oldest line about changes (an EXISTS, an EXPUNGE or a
// FETCH of flags) that the idling session whose client is at addr has written and nobody
// has asked for yet, and forgets it. ok is false when there is none (no clock, no such
// session, or the line was not written in IDLE). Ask once per such line, in the order the
// lines arrive: the dates are kept in the order the lines were written, and are dropped
// when the session's next IDLE begins.
func (s *Server) PushStamp(addr string) (at time.Duration, ok bool) {
	sess := s.sessionFrom(addr)
	if sess == nil {
		return 0, false
	}
	sess.qmu.Lock()
	defer sess.qmu.Unlock()
	if len(sess.stamps) == 0 {
		return 0, false
	}
	at = sess.stamps[0]
	sess.stamps = sess.stamps[1:]
	return at, true
}

// sessionFrom returns the session whose client is at addr, or nil.
func (s *Server) sessionFrom(addr string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.byID {
		if x.tc != nil && x.tc.RemoteAddr().String() == addr {
			return x
		}
	}
	return nil
}

// dateLine records the date of an update line an idling session is about to write: the
// date of the change it reports, or later when the line was held (idle-every mode).
func (s *session) dateLine(at time.Duration) {
	s.qmu.Lock()
	s.stamps = append(s.stamps, max(at, s.heldUntil))
	s.qmu.Unlock()
}
