package check

// The server invariants, checked on the wire (CheckWire): every response the server sends
// is held against the IMAP RFCs as the proxy recorded it. Their failures are server
// findings: the server, not a device, broke the rule.
const (
	S1UIDsAscending   = "S1"
	S2UIDNext         = "S2"
	S3UIDReuse        = "S3"
	S4Expunge         = "S4"
	S5Malformed       = "S5"
	S6SeqNumber       = "S6"
	S7UIDNextMonotone = "S7"
	S8ExpungeOnce     = "S8"
	S9InternalError   = "S9"
	S10NoOnUID        = "S10"
	S11ResponseCode   = "S11"
	S12Keywords       = "S12"
	S13Search         = "S13"
)

// ServerInvariant describes one server invariant: its ID, the rule in words and the RFC
// section that states it.
type ServerInvariant struct {
	ID    string // "S5"
	Title string // "well-formed responses"
	Doc   string // the rule, one or two sentences
	RFC   string // the section that states it: "RFC 3501 §9"
}

// Info returns the invariant as an Info, its RFC section appended to the doc.
func (s ServerInvariant) Info() Info {
	return Info{ID: s.ID, Title: s.Title, Doc: s.Doc + " (" + s.RFC + ")"}
}

var serverInvariants = []ServerInvariant{
	{S1UIDsAscending, "UIDs ascending", "Within one selection, UIDs ascend with sequence numbers.", "RFC 3501 §2.3.1.1"},
	{S2UIDNext, "UIDNEXT above every UID", "No message of a selection has a UID at or above the UIDNEXT announced for it, until new messages are announced.", "RFC 3501 §2.3.1.1"},
	{S3UIDReuse, "no UID reused", "A mailbox name, its UIDVALIDITY and a UID name one immutable message forever: the same UID never shows two different contents.", "RFC 3501 §2.3.1.1"},
	{S4Expunge, "EXPUNGE consistent", "An EXPUNGE names a sequence number within the mailbox's current message count.", "RFC 3501 §7.4.1"},
	{S5Malformed, "well-formed responses", "Every response follows the formal syntax: a tagged status is OK, NO or BAD, response codes with arguments (UIDNEXT, UIDVALIDITY, APPENDUID, COPYUID…) carry numbers and UID sets, FETCH lists and SEARCH results parse; the raw line is kept.", "RFC 3501 §9, RFC 4315 §4"},
	{S6SeqNumber, "sequence numbers from 1", "Message sequence numbers start at 1: no FETCH or EXPUNGE names message 0.", "RFC 3501 §2.3.1.2"},
	{S7UIDNextMonotone, "UIDNEXT never decreases", "Within one UIDVALIDITY, a mailbox's UIDNEXT announced to a command sent after another announcement is not below it (a mailbox re-created under an old name needs a new UIDVALIDITY).", "RFC 3501 §2.3.1.1"},
	{S8ExpungeOnce, "one EXPUNGE per expunged message", "An EXPUNGE response removes a message that is gone: a message the server reported expunged is not listed by a later FETCH or SEARCH of the same mailbox and UIDVALIDITY (a MOVE or EXPUNGE of one UID answered with two EXPUNGEs takes an innocent message from the client's view).", "RFC 3501 §7.4.1, RFC 6851 §3.3"},
	{S9InternalError, "no internal errors", "The server does not answer with [SERVERBUG] or [UNAVAILABLE] unless the scenario injected such failures: they say the server itself failed.", "RFC 5530 §3"},
	{S10NoOnUID, "UID commands on expunged UIDs succeed", "UID FETCH, UID STORE, UID COPY and UID MOVE ignore UIDs that do not exist: a NO without a response code that names a legitimate reason (TRYCREATE, OVERQUOTA, LIMIT, READ-ONLY, NOPERM, CANNOT, INUSE, EXPUNGEISSUE) is a server failure.", "RFC 3501 §6.4.8, RFC 6851 §3.3"},
	{S11ResponseCode, "response codes", "A CREATE refused because the mailbox exists carries [ALREADYEXISTS], so that a client can tell it from a failure.", "RFC 5530 §3"},
	{S12Keywords, "keywords kept", "A keyword a STORE sets, in a mailbox whose PERMANENTFLAGS allow it, is in the FLAGS the server answers, spelled as it was given unless the mailbox already held it in another case.", "RFC 3501 §2.3.2, §6.4.6"},
	{S13Search, "SEARCH agrees with FLAGS", "A UID SEARCH by flag (DELETED, FLAGGED, SEEN, KEYWORD…) lists no message whose FLAGS the server sent to the same session contradict it, when nothing that could change them happened in between.", "RFC 3501 §6.4.4"},
}

// ServerInvariants returns the server invariants checked on the wire, in report order.
func ServerInvariants() []ServerInvariant {
	return append([]ServerInvariant(nil), serverInvariants...)
}

// ServerRFC returns the RFC section of server invariant id, or "".
func ServerRFC(id string) string {
	for _, s := range serverInvariants {
		if s.ID == id {
			return s.RFC
		}
	}
	return ""
}
