package fakeserver

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
	s.mu.Lock()
	var sess *session
	for _, x := range s.byID {
		if x.tc != nil && x.tc.RemoteAddr().String() == addr {
			sess = x
			break
		}
	}
	s.mu.Unlock()
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
