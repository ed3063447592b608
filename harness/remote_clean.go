package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// The run marker. A remote run proves that its folder syncharness-RUNID is its own with a
// child folder, syncharness-RUNID/syncharness-run, that holds one marker message: its
// Message-ID is <run-marker.RUNID@syncharness.invalid>, and headers give the run id, the
// start time and a heartbeat, the time the run last wrote the marker. The run writes a new
// marker every HeartbeatInterval and expunges the old one, so a run in progress always has a
// recent heartbeat. A marker message in a folder of its own works on every IMAP server:
// METADATA (RFC 5464) would fit better but is off in Dovecot's default configuration and
// missing from many servers, a message in the run folder itself is impossible where a
// folder holds either mail or folders (mbox), and the folder's own name cannot carry a
// heartbeat.

// MarkerFolder is the name of the child folder of a run folder that holds the run marker.
const MarkerFolder = "syncharness-run"

// DefaultHeartbeat is how often a remote run refreshes its marker.
const DefaultHeartbeat = time.Minute

// DefaultCleanAge is the heartbeat age below which clean leaves a run folder alone: the run
// may be in progress.
const DefaultCleanAge = 10 * time.Minute

const (
	hdrRun       = "X-Syncharness-Run"
	hdrStarted   = "X-Syncharness-Started"
	hdrHeartbeat = "X-Syncharness-Heartbeat"
)

// runIDPattern is what a run id may be (see NewRemoteTarget).
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// RunMarker returns the marker message a run writes into its marker folder: run runID,
// started at started, heartbeat beat.
func RunMarker(runID string, started, beat time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("From: syncharness <syncharness@" + clients.LabelDomain + ">\r\n")
	b.WriteString("Subject: syncharness run " + runID + "\r\n")
	b.WriteString("Date: " + beat.Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: <run-marker." + runID + "@" + clients.LabelDomain + ">\r\n")
	b.WriteString(hdrRun + ": " + runID + "\r\n")
	b.WriteString(hdrStarted + ": " + started.UTC().Format(time.RFC3339Nano) + "\r\n")
	b.WriteString(hdrHeartbeat + ": " + beat.UTC().Format(time.RFC3339Nano) + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.WriteString("This folder belongs to a syncharness run against this account. The run removes it\r\n" +
		"when it ends; `syncharness clean` removes it once the run is gone.\r\n")
	return b.Bytes()
}

// writeMarker appends a fresh marker to the marker folder and expunges the older ones (the
// folder holds nothing else, so a plain EXPUNGE is safe without UIDPLUS).
func (t *RemoteTarget) writeMarker(c *imapclient.Client, beat time.Time) error {
	folder := t.root + string(t.sep) + MarkerFolder
	body := RunMarker(strings.TrimPrefix(t.root, RunFolderPrefix), t.started, beat)
	cmd := c.Append(folder, int64(len(body)), &imap.AppendOptions{Time: beat})
	if _, err := cmd.Write(body); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("APPEND to %s: %w", folder, err)
	}
	sel, err := c.Select(folder, nil).Wait()
	if err != nil {
		return fmt.Errorf("SELECT %s: %w", folder, err)
	}
	if sel.NumMessages > 1 {
		var old imap.SeqSet
		old.AddRange(1, sel.NumMessages-1)
		if err := c.Store(old, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		if err := c.Expunge().Close(); err != nil {
			return err
		}
	}
	return c.Unselect().Wait()
}

// heartbeat refreshes the marker until stop is closed. A failed refresh is tried again at
// the next beat: clean leaves a run alone for DefaultCleanAge, many beats.
func (t *RemoteTarget) heartbeat(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := t.opts.HeartbeatInterval
	if every <= 0 {
		every = DefaultHeartbeat
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every+t.timeout())
		if c, err := t.admin(ctx); err == nil {
			if t.writeMarker(c, time.Now()) == nil {
				_ = c.Logout().Wait()
			}
			c.Close()
		}
		cancel()
	}
}

// CleanOptions configure CleanRemote.
type CleanOptions struct {
	Remote RemoteOptions
	// OlderThan is the heartbeat age a run folder must have to be removed; zero:
	// DefaultCleanAge.
	OlderThan time.Duration
	// Force removes run folders whatever the age of their heartbeat (a run in progress
	// then fails).
	Force bool
	// DryRun removes nothing: the decisions say what would be removed.
	DryRun bool
}

// A CleanDecision is what clean did, or would do, with one top-level syncharness-* folder.
type CleanDecision struct {
	Folder string
	Remove bool   // removed (or, with DryRun, would be)
	Why    string // the reason, for the user
}

// CleanRemote removes the run folders that killed runs left on the account, and only
// those it can prove are such: a top-level folder syncharness-RUNID (RUNID of letters,
// digits, '-' and '_') that holds a run marker for RUNID (see MarkerFolder) whose heartbeat
// is older than OlderThan (unless Force), and in which every message, in every folder below
// it, was made by syncharness: a Message-ID <LABEL.RUN@syncharness.invalid>, or none and a
// From at syncharness.invalid. Every other syncharness-* folder is kept, with the reason.
// Nothing else is touched.
func CleanRemote(ctx context.Context, opts CleanOptions) ([]CleanDecision, error) {
	ro := opts.Remote
	ro.RunID = "clean"
	t, err := NewRemoteTarget(ro)
	if err != nil {
		return nil, err
	}
	age := opts.OlderThan
	if age <= 0 {
		age = DefaultCleanAge
	}
	c, err := t.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	list, err := c.List("", RunFolderPrefix+"%", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("LIST on %s: %v", t.addr, err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Mailbox < list[j].Mailbox })
	var out []CleanDecision
	for _, l := range list {
		id, ok := strings.CutPrefix(l.Mailbox, RunFolderPrefix)
		if !ok {
			continue
		}
		d := CleanDecision{Folder: l.Mailbox}
		if !runIDPattern.MatchString(id) {
			d.Why = "not a run folder name (syncharness-RUNID, RUNID of letters, digits, '-' and '_')"
			out = append(out, d)
			continue
		}
		why, err := judgeRunFolder(c, l.Mailbox, id, l.Delim, age, opts.Force)
		if err != nil {
			return out, fmt.Errorf("%s: %w", l.Mailbox, err)
		}
		if why != "" && !strings.HasPrefix(why, "+") {
			d.Why = why
			out = append(out, d)
			continue
		}
		d.Remove, d.Why = true, strings.TrimPrefix(why, "+")
		if !opts.DryRun {
			if err := removeTree(c, l.Mailbox); err != nil {
				return out, err
			}
		}
		out = append(out, d)
	}
	_ = c.Logout().Wait()
	return out, nil
}

// judgeRunFolder returns why root must be kept, or "+" and why it may go.
func judgeRunFolder(c *imapclient.Client, root, id string, delim rune, age time.Duration, force bool) (string, error) {
	if delim == 0 {
		delim = '/'
	}
	sep := string(delim)
	marker := root + sep + MarkerFolder
	beat, found, err := readMarker(c, marker, id)
	if err != nil {
		return "", err
	}
	if !found {
		return "no run marker (" + marker + " with a marker message for run " + id + "): not made by this version of syncharness, or not by syncharness", nil
	}
	since := time.Since(beat).Truncate(time.Second)
	if since < age && !force {
		return fmt.Sprintf("may be in progress: its heartbeat is %s old, younger than %s (--older-than; --force removes it anyway)", since, age), nil
	}
	list, err := c.List("", root+sep+"*", nil).Collect()
	if err != nil {
		return "", fmt.Errorf("LIST: %w", err)
	}
	folders := []string{root}
	for _, l := range list {
		folders = append(folders, l.Mailbox)
	}
	n := 0
	for _, f := range folders {
		foreign, count, err := foreignMessage(c, f)
		if err != nil {
			return "", err
		}
		if foreign != "" {
			return fmt.Sprintf("holds mail syncharness did not make (%s in %s)", foreign, f), nil
		}
		n += count
	}
	return fmt.Sprintf("+run marker for %s, heartbeat %s old; %d folders, %d messages, all made by syncharness", id, since, len(folders), n), nil
}

// readMarker returns the newest heartbeat of run id's markers in folder.
func readMarker(c *imapclient.Client, folder, id string) (time.Time, bool, error) {
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return time.Time{}, false, nil // no such folder
		}
		return time.Time{}, false, fmt.Errorf("EXAMINE %s: %w", folder, err)
	}
	defer func() { _ = c.Unselect().Wait() }()
	if sel.NumMessages == 0 {
		return time.Time{}, false, nil
	}
	hdrs, err := headers(c, sel.NumMessages, "MESSAGE-ID", hdrRun, hdrHeartbeat)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("FETCH in %s: %w", folder, err)
	}
	var newest time.Time
	found := false
	for _, h := range hdrs {
		if h.Get(hdrRun) != id || strings.Trim(h.Get("Message-Id"), "<> ") != "run-marker."+id+"@"+clients.LabelDomain {
			continue
		}
		beat, err := time.Parse(time.RFC3339Nano, h.Get(hdrHeartbeat))
		if err != nil {
			continue
		}
		found = true
		if beat.After(newest) {
			newest = beat
		}
	}
	return newest, found, nil
}

// foreignMessage returns a description of the first message in folder that syncharness
// did not make ("" if none), and the number of messages.
func foreignMessage(c *imapclient.Client, folder string) (string, int, error) {
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return "", 0, nil // \Noselect: holds no mail
		}
		return "", 0, fmt.Errorf("EXAMINE %s: %w", folder, err)
	}
	defer func() { _ = c.Unselect().Wait() }()
	if sel.NumMessages == 0 {
		return "", 0, nil
	}
	hdrs, err := headers(c, sel.NumMessages, "MESSAGE-ID", "FROM")
	if err != nil {
		return "", 0, fmt.Errorf("FETCH in %s: %w", folder, err)
	}
	for i, h := range hdrs {
		if !madeBySyncharness(h) {
			if id := h.Get("Message-Id"); id != "" {
				return "message " + strings.TrimSpace(id), len(hdrs), nil
			}
			return fmt.Sprintf("message %d, without a Message-ID", i+1), len(hdrs), nil
		}
	}
	return "", len(hdrs), nil
}

var labelMessageID = regexp.MustCompile(`^<[^<>@\s.]+\.[^<>@\s]+@` + regexp.QuoteMeta(clients.LabelDomain) + `>$`)

// madeBySyncharness reports whether a message's headers are those of a message the
// harness makes (clients.MakeMessage, the run marker).
func madeBySyncharness(h textproto.MIMEHeader) bool {
	ids := h.Values("Message-Id")
	switch len(ids) {
	case 1:
		return labelMessageID.MatchString(strings.TrimSpace(ids[0]))
	case 0:
		from := h.Values("From")
		return len(from) == 1 && strings.HasSuffix(strings.TrimSpace(from[0]), "@"+clients.LabelDomain+">")
	}
	return false
}

// headers fetches the given header fields of messages 1:n.
func headers(c *imapclient.Client, n uint32, fields ...string) ([]textproto.MIMEHeader, error) {
	var all imap.SeqSet
	all.AddRange(1, n)
	sect := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: fields, Peek: true}
	msgs, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sect}}).Collect()
	if err != nil {
		return nil, err
	}
	var out []textproto.MIMEHeader
	for _, m := range msgs {
		raw := m.FindBodySection(sect)
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(raw, "\r\n"...)))).ReadMIMEHeader()
		if err != nil && len(h) == 0 {
			h = textproto.MIMEHeader{}
		}
		out = append(out, h)
	}
	return out, nil
}
