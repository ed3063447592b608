package fakeserver

import "time"

// idleHold is how long a session in IDLE keeps its pending updates under the idle-every
// mode: until the next multiple of the period since the mode was switched on, as a server
// that polls its mailboxes every period instead of being woken by each change tells its
// IDLE clients (one was measured at 60 s: RFC 2177 sets no bound). Zero: write them now.
func (s *session) idleHold() time.Duration {
	u := s.user
	if u == nil {
		return 0
	}
	u.mu.Lock()
	every, epoch := u.idleEvery, u.idleEpoch
	u.mu.Unlock()
	if every <= 0 {
		return 0
	}
	s.qmu.Lock()
	pending := len(s.queue)
	s.qmu.Unlock()
	if pending == 0 {
		return 0
	}
	since := time.Since(epoch)
	next := (since/every + 1) * every
	return next - since
}

// IdleEvery returns the period of the idle-every mode for user, or 0 when it is off.
func (s *Server) IdleEvery(user string) time.Duration {
	u, err := s.lookupUser(user)
	if err != nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.idleEvery
}
