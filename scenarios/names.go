package scenarios

import "strings"

// checkMailboxNames refuses mailbox names that a run on a real server could not keep
// inside its folder, or that the server would read as another mailbox than the script
// means: "." and ".." levels, names starting with '#' or '~' (other namespaces, home
// directories), and INBOX in another case above a level ("inbox/sub", which RFC 3501
// §5.1 leaves to the server; the proxy refuses it too). A bare "Inbox" is INBOX already.
func checkMailboxNames(c *checker) {
	var walk func([]*Step)
	walk = func(steps []*Step) {
		for _, st := range steps {
			names := []string{st.Mailbox}
			switch st.Verb {
			case "move", "copy", "rename":
				names = append(names, st.Dest)
			}
			if st.Expect != nil {
				names = append(names, st.Expect.Mailbox)
				names = append(names, st.Expect.Mailboxes...)
			}
			for _, name := range names {
				if why := mailboxNameProblem(name); why != "" {
					c.errorf(st.Line, commandName(st), "bad mailbox name %q: %s", name, why)
				}
			}
			walk(st.Body)
		}
	}
	walk(c.s.Steps)
}

// mailboxNameProblem says what is wrong with a mailbox name of a script, or "".
func mailboxNameProblem(name string) string {
	if name == "" {
		return ""
	}
	if name[0] == '#' || name[0] == '~' {
		return "'#' and '~' start other namespaces and home directories"
	}
	levels := strings.Split(name, "/")
	for _, l := range levels {
		if l == "." || l == ".." {
			return "'.' and '..' levels name folders outside the mailbox"
		}
	}
	if len(levels) > 1 && levels[0] != "INBOX" && strings.EqualFold(levels[0], "INBOX") {
		return "write INBOX in upper case: below INBOX, servers may tell " + levels[0] + " from INBOX"
	}
	return ""
}
