package scenarios

// parseExpect parses the arguments of every form of expect.
func parseExpect(lp *lineParser) {
	e := &Expect{}
	lp.st.Expect = e
	pos := lp.pos
	lp.pos = nil
	keyword := func(t token) string {
		if t.quoted() {
			return ""
		}
		return t.text
	}
	usage := func(kind string) {
		if lp.failed {
			return
		}
		lp.errorf("usage: %s", expectUsages[kind])
	}
	// where takes an optional [server|DEVICE].
	where := func() {
		e.Where = ActorServer
		if len(pos) > 0 && !pos[0].quoted() && (pos[0].text == ActorServer || lp.p.devices[pos[0].text]) {
			e.Where = pos[0].text
			e.explicitWhere = true
			pos = pos[1:]
		}
	}
	if len(pos) == 0 {
		lp.errorf("missing what to expect: converged, idempotent, missing, count, mailboxes or [server|DEVICE] MAILBOX …")
		return
	}
	switch kw := keyword(pos[0]); kw {
	case ExpectConverged, ExpectIdempotent:
		e.Kind = kw
		if len(pos) > 1 {
			usage(kw)
		}
	case ExpectMissing:
		e.Kind = kw
		pos = pos[1:]
		where()
		if len(pos) == 0 {
			usage(kw)
		}
		for _, t := range pos {
			e.Labels = append(e.Labels, lp.checkLabel(t))
		}
	case ExpectCount:
		e.Kind = kw
		pos = pos[1:]
		where()
		if len(pos) == 3 && e.Where == ActorServer && !e.explicitWhere {
			lp.errorf("unknown device %q", pos[0].text)
			return
		}
		if len(pos) != 2 {
			usage(kw)
			return
		}
		e.Mailbox = lp.checkMailbox(pos[0])
		e.N = lp.number(pos[1].text, "count", 0)
		lp.st.N = e.N
	case ExpectMailboxes:
		e.Kind = kw
		pos = pos[1:]
		where()
		if len(pos) == 0 {
			usage(kw)
		}
		for _, t := range pos {
			e.Mailboxes = append(e.Mailboxes, lp.checkMailbox(t))
		}
	default:
		where()
		if len(pos) > 0 && keyword(pos[0]) == ExpectQuarantined {
			e.Kind = ExpectQuarantined
			if e.Where == ActorServer {
				lp.errorf("quarantined is a device's state: name the device (expect phone quarantined m1)")
			}
			for _, t := range pos[1:] {
				e.Labels = append(e.Labels, lp.checkLabel(t))
			}
			break
		}
		if len(pos) == 0 {
			usage(ExpectContents)
			return
		}
		e.Mailbox = lp.checkMailbox(pos[0])
		pos = pos[1:]
		flagsAt := -1
		for i, t := range pos {
			if keyword(t) == "flags" {
				flagsAt = i
				break
			}
		}
		if flagsAt < 0 {
			e.Kind = ExpectContents
			for _, t := range pos {
				e.Labels = append(e.Labels, lp.checkLabel(t))
			}
			break
		}
		e.Kind = ExpectFlags
		if flagsAt == 0 {
			usage(ExpectFlags)
		}
		for _, t := range pos[:flagsAt] {
			e.Labels = append(e.Labels, lp.checkLabel(t))
		}
		e.Flags = []string{}
		for _, t := range pos[flagsAt+1:] {
			e.Flags = append(e.Flags, lp.settableFlag(t.text))
		}
		lp.st.Flags = e.Flags
	}
	lp.st.Mailbox = e.Mailbox
	lp.st.Labels = e.Labels
}
