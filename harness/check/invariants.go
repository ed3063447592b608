package check

// The invariant IDs.
const (
	I1Converged    = "I1"
	I2UIDIntegrity = "I2"
	I3NoLoss       = "I3"
	I4NoDuplicates = "I4"
	I5NoResurrect  = "I5"
	I6Flags        = "I6"
	I7Mailboxes    = "I7"
	I8Idempotent   = "I8"
	I9Journals     = "I9"
	I10Watermarks  = "I10"
	I11Quarantine  = "I11"
	P1Push         = "P1"
)

var infos = []Info{
	{I1Converged, "converged", "Every device has the server's mailboxes and, in each, the same multiset of (label, flags, content hash); a device that shows no content hashes is compared on (label, flags)."},
	{I2UIDIntegrity, "UID integrity", "Every UID a device holds belongs to the server's current UIDVALIDITY and to the same content."},
	{I3NoLoss, "no loss", "Every message the history says is alive is on the server, in a mailbox the history allows."},
	{I4NoDuplicates, "no duplicates", "No label appears more often than the history allows, on the server or on a device."},
	{I5NoResurrect, "no resurrection", "An expunged message that nobody re-created stays gone everywhere."},
	{I6Flags, "flags", "A flag written by one side only has that value; racing writes end on one of them."},
	{I7Mailboxes, "mailboxes", "Created mailboxes exist, removed ones are gone, renamed ones hold the old content."},
	{I8Idempotent, "idempotent", "One more sync round sends no mutating command and changes no replica."},
	{I9Journals, "journals drained", "Nothing is pending or in flight in any device's journal."},
	{I10Watermarks, "watermarks", "No device skipped a server UID below its saved UIDNEXT: for every mailbox whose saved UIDVALIDITY equals the server's, the saved UIDNEXT is not above the server's, and every message now on the server with a UID below it is in the device's sync state. Messages expunged on the server are not on it, so a device that dropped them skipped nothing."},
	{I11Quarantine, "quarantine", "A message a device had synced that is gone from the server after a UIDVALIDITY change is quarantined on that device and reported, never dropped, uploaded again or paired with other mail (F1, F2)."},
	{P1Push, "push delivery", "A device in push mode that the server tells of a change while it idles (EXISTS, EXPUNGE, FETCH) fetches it before it idles again, without an explicit sync: in deterministic runs, before the next step."},
}

// Invariants returns the description of every invariant Check knows, in report order.
func Invariants() []Info {
	out := append([]Info(nil), infos...)
	for _, s := range serverInvariants {
		out = append(out, s.Info())
	}
	return out
}

func title(id string) string {
	for _, i := range infos {
		if i.ID == id {
			return i.Title
		}
	}
	for _, i := range serverInvariants {
		if i.ID == id {
			return i.Title
		}
	}
	return id
}
