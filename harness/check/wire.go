package check

// WireLine is one line of a device's proxy transcript.
type WireLine struct {
	Device string
	Conn   int  // connection number within the device
	Dir    byte // 'C' client to server, 'S' server to client
	Text   string
}

// CheckWire checks the server invariants seen on the wire (S1–S4) on the transcripts lines
// and returns every violation, with Server set. It is conservative: what it cannot follow
// for sure (a line it cannot parse, a selection it did not see start) it does not judge.
func CheckWire(lines []WireLine) []Result {
	return nil
}
