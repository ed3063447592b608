package dovecot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// exitNoUsers is doveadm's exit code when a command matched no user (kick with nobody
// logged in).
const exitNoUsers = 68

// Doveadm runs doveadm with the server's configuration and the given arguments (for
// example "mailbox", "status", "-u", "user", "messages", "INBOX") and returns its standard
// output. A non-zero exit is an error carrying doveadm's output.
func (s *Server) Doveadm(ctx context.Context, args ...string) (string, error) {
	out, err := s.doveadm(ctx, args...)
	if err != nil {
		return "", err
	}
	return out, nil
}

func (s *Server) doveadm(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-c", s.conf}, args...)
	cmd := exec.CommandContext(ctx, s.doveadmBin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &DoveadmError{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

// DoveadmError is a failed doveadm command.
type DoveadmError struct {
	Args   []string
	Err    error // usually an *exec.ExitError
	Stderr string
}

func (e *DoveadmError) Error() string {
	return fmt.Sprintf("dovecot: doveadm %s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *DoveadmError) Unwrap() error { return e.Err }

// ExitCode returns doveadm's exit code, or -1 if it did not exit normally.
func (e *DoveadmError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// UIDValidity returns the UIDVALIDITY of a user's mailbox.
func (s *Server) UIDValidity(ctx context.Context, user, mailbox string) (uint32, error) {
	out, err := s.doveadm(ctx, "-f", "flow", "mailbox", "status", "-u", user, "uidvalidity", mailbox)
	if err != nil {
		return 0, err
	}
	_, v, ok := strings.Cut(strings.TrimSpace(out), "uidvalidity=")
	if !ok {
		return 0, fmt.Errorf("dovecot: uidvalidity of %s/%s: unexpected doveadm output %q", user, mailbox, out)
	}
	n, err := strconv.ParseUint(strings.Fields(v)[0], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("dovecot: uidvalidity of %s/%s: %w", user, mailbox, err)
	}
	return uint32(n), nil
}

// UIDValidityBump gives a user's mailbox a new UIDVALIDITY while every message keeps its
// UID: the spurious change some servers make (doveadm mailbox update --uid-validity). The
// new value is the old one plus one. It returns the new value.
//
// Sessions that have the mailbox selected are not told; like a real server after such a
// change, they see the new value on their next SELECT.
func (s *Server) UIDValidityBump(ctx context.Context, user, mailbox string) (uint32, error) {
	old, err := s.UIDValidity(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	next := old + 1
	if next == 0 {
		next = 1
	}
	if _, err := s.doveadm(ctx, "mailbox", "update", "-u", user, "--uid-validity", strconv.FormatUint(uint64(next), 10), mailbox); err != nil {
		return 0, err
	}
	got, err := s.UIDValidity(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	if got != next {
		return 0, fmt.Errorf("dovecot: bump UIDVALIDITY of %s/%s: asked for %d, server has %d", user, mailbox, next, got)
	}
	return next, nil
}

// Kick disconnects every IMAP session of user. Having nobody to kick is not an error.
func (s *Server) Kick(ctx context.Context, user string) error {
	_, err := s.doveadm(ctx, "kick", user)
	var de *DoveadmError
	if errors.As(err, &de) && de.ExitCode() == exitNoUsers {
		return nil
	}
	return err
}

// UIDValidityReset makes a genuine UIDVALIDITY reset of a user's mailbox, the kind that
// follows a restore from backup or a rebuilt index: the same messages (content, flags and
// keywords) come back under a new UIDVALIDITY with their UIDs renumbered in a different
// order. It returns the new UIDVALIDITY.
//
// How: Dovecot's Maildir backend keeps the UID of each file in dovecot-uidlist and its
// state in the dovecot.index* files; without them it starts a new UIDVALIDITY and numbers
// the files it finds by the time in their names. So the reset
//
//  1. disconnects the user's sessions (their view of the mailbox becomes meaningless; a
//     real server that loses its index drops them too), so no process holds the old
//     index in memory and writes it back;
//  2. reads the current UID order from dovecot-uidlist;
//  3. removes dovecot-uidlist and dovecot.index* of the mailbox, and the mailbox list
//     index of the account (it caches the old UIDVALIDITY for STATUS);
//  4. renames every message file in place (new stays new, cur stays cur, the ":2,"
//     flag letters and so the flags and keywords are kept) to a fresh name whose
//     timestamps run in the reverse of the old UID order, so the message with the highest
//     UID gets UID 1 (with a single message only UIDVALIDITY changes);
//  5. opens the mailbox with doveadm, which assigns the new UIDs, and checks that the
//     UIDVALIDITY changed (if Dovecot happened to pick the old value, it is bumped).
//
// The caller must not deliver to the mailbox while it runs.
func (s *Server) UIDValidityReset(ctx context.Context, user, mailbox string) (uint32, error) {
	old, err := s.UIDValidity(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	dir, err := s.MailboxPath(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	if err := s.Kick(ctx, user); err != nil {
		return 0, err
	}
	order, err := readUIDList(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		return 0, err
	}

	type file struct {
		sub, name, base string
		uid             uint32 // 0: not in the uidlist yet
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return 0, fmt.Errorf("dovecot: reset %s/%s: %w", user, mailbox, err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			files = append(files, file{sub: sub, name: e.Name(), base: base, uid: order[base]})
		}
	}
	// Highest old UID first; files Dovecot had not numbered yet come first of all.
	sort.SliceStable(files, func(i, j int) bool {
		a, b := files[i].uid, files[j].uid
		if a == 0 || b == 0 {
			return a == 0 && b != 0
		}
		return a > b
	})

	if err := removeIndexes(dir, s.MaildirPath(user)); err != nil {
		return 0, fmt.Errorf("dovecot: reset %s/%s: %w", user, mailbox, err)
	}
	start := time.Now().Unix()
	for i, f := range files {
		info := strings.TrimPrefix(f.name, f.base)
		// Whole seconds apart, so any comparison of the names' times gives this order.
		base := fmt.Sprintf("%d.M%06dP%dQ%d.syncharness-reset", start+int64(i), 0, os.Getpid(), i+1)
		from := filepath.Join(dir, f.sub, f.name)
		to := filepath.Join(dir, f.sub, base+info)
		if err := os.Rename(from, to); err != nil {
			return 0, fmt.Errorf("dovecot: reset %s/%s: %w", user, mailbox, err)
		}
	}

	got, err := s.UIDValidity(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	if got == old {
		return s.UIDValidityBump(ctx, user, mailbox)
	}
	return got, nil
}

// MailboxPath returns the directory of a user's mailbox as Dovecot resolves it.
func (s *Server) MailboxPath(ctx context.Context, user, mailbox string) (string, error) {
	out, err := s.doveadm(ctx, "mailbox", "path", "-u", user, mailbox)
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(out)
	p = strings.TrimPrefix(p, "path=")
	if p == "" || !filepath.IsAbs(p) {
		return "", fmt.Errorf("dovecot: path of %s/%s: unexpected doveadm output %q", user, mailbox, out)
	}
	return p, nil
}

// readUIDList returns the UID of every file base name in a dovecot-uidlist (version 3:
// a header line, then "UID [extensions] :filename").
func readUIDList(path string) (map[string]uint32, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]uint32{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dovecot: read uidlist: %w", err)
	}
	defer f.Close()
	order := make(map[string]uint32)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			continue
		}
		uidStr, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("dovecot: read uidlist %q: bad line %q", path, line)
		}
		i := strings.Index(rest, ":")
		if i < 0 {
			return nil, fmt.Errorf("dovecot: read uidlist %q: bad line %q", path, line)
		}
		name := rest[i+1:]
		base, _, _ := strings.Cut(name, ":")
		order[base] = uint32(uid)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dovecot: read uidlist %q: %w", path, err)
	}
	return order, nil
}

// removeIndexes removes a mailbox's uidlist and index files, and the account's mailbox
// list index.
func removeIndexes(mailboxDir, root string) error {
	var victims []string
	victims = append(victims, filepath.Join(mailboxDir, "dovecot-uidlist"))
	for _, pattern := range []string{
		filepath.Join(mailboxDir, "dovecot.index*"),
		filepath.Join(root, "dovecot.list.index*"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return err
		}
		victims = append(victims, m...)
	}
	for _, v := range victims {
		if err := os.Remove(v); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
