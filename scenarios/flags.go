package scenarios

import (
	"strconv"
	"strings"
)

// SystemFlags are the IMAP system flags a scenario can set, in their canonical spelling.
var systemFlags = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}

// SpecialUses are the RFC 6154 special-use attributes a mailbox can have.
var specialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

// knownCaps are the capabilities that caps, server caps and [cap:NAME] accept.
var knownCaps = []string{
	"MOVE", "UIDPLUS", "IDLE", "ESEARCH", "LIST-STATUS", "SPECIAL-USE", "LITERAL+",
	"NAMESPACE", "CONDSTORE", "QRESYNC", "ENABLE", "UNSELECT", "CHILDREN", "SASL-IR",
	"IMAP4rev2", "UTF8=ACCEPT", "STATUS=SIZE", "BINARY",
}

// canonicalCap returns the known spelling of a capability name, case-insensitively.
func canonicalCap(s string) (string, bool) {
	for _, c := range knownCaps {
		if strings.EqualFold(c, s) {
			return c, true
		}
	}
	return s, false
}

// checkFlag returns the canonical spelling of a flag that can be set on a message (system
// flags are case-insensitive), or a message saying why s is not one.
func checkFlag(s string) (string, string) {
	if strings.HasPrefix(s, `\`) {
		for _, f := range systemFlags {
			if strings.EqualFold(f, s) {
				return f, ""
			}
		}
		if strings.EqualFold(s, `\Recent`) {
			return s, `\Recent cannot be set: the server alone decides it`
		}
		return s, "not a flag: " + strconv.Quote(s) + ` (system flags are \Seen \Answered \Flagged \Deleted \Draft; keywords have no backslash, e.g. $Forwarded)`
	}
	if s == "" {
		return s, "empty flag"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return s, "not a flag: " + strconv.Quote(s) + ` (a keyword is an IMAP atom: no space, quote or any of (){%*\])`
		}
	}
	return s, ""
}

// canonicalSpecialUse returns the known spelling of a special-use attribute.
func canonicalSpecialUse(s string) (string, bool) {
	for _, u := range specialUses {
		if strings.EqualFold(u, s) {
			return u, true
		}
	}
	return s, false
}
