package harness

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

// An Admin performs the faults of a remote server that need its administrator, such as a
// UIDVALIDITY change. The remote target calls it with the server's real (confined)
// mailbox name.
type Admin interface {
	// Name describes the profile in skip reasons: "dovecot", "generic".
	Name() string
	// Fault performs f. It returns an error wrapping ErrUnsupported for a fault the
	// profile cannot do.
	Fault(ctx context.Context, f AdminFault) error
}

// AdminFault is one administrator fault.
type AdminFault struct {
	// Kind is "uidvalidity-bump" (a new UIDVALIDITY, every UID kept) or
	// "uidvalidity-reset" (a new UIDVALIDITY and the messages renumbered in another order,
	// content, flags and keywords kept).
	Kind string
	// User is the account; Mailbox is the server's full name of the mailbox.
	User    string
	Mailbox string
}

// AdminFaults are the fault kinds an admin profile may perform.
var AdminFaults = []string{"uidvalidity-bump", "uidvalidity-reset"}

// DovecotAdmin is the built-in admin profile for a Dovecot server on this machine with
// Maildir storage. It runs doveadm: a bump is `doveadm mailbox update --uid-validity`; a
// reset removes the mailbox's dovecot-uidlist and index files and gives the message files
// fresh names whose order is the reverse of their old UIDs, so that Dovecot numbers them
// anew under a new UIDVALIDITY.
type DovecotAdmin struct {
	// Doveadm is the doveadm command and its leading arguments, for example
	// []string{"doveadm", "-c", "/etc/dovecot/test.conf"}; empty means "doveadm".
	Doveadm []string
}

// Name implements Admin.
func (DovecotAdmin) Name() string { return "dovecot" }

// Fault implements Admin.
func (a DovecotAdmin) Fault(ctx context.Context, f AdminFault) error {
	switch f.Kind {
	case "uidvalidity-bump":
		_, err := a.bump(ctx, f.User, f.Mailbox)
		return err
	case "uidvalidity-reset":
		return a.reset(ctx, f.User, f.Mailbox)
	}
	return fmt.Errorf("admin dovecot: %s: %w", f.Kind, ErrUnsupported)
}

func (a DovecotAdmin) run(ctx context.Context, args ...string) (string, error) {
	cmd := a.Doveadm
	if len(cmd) == 0 {
		cmd = []string{"doveadm"}
	}
	full := append(append([]string(nil), cmd[1:]...), args...)
	c := exec.CommandContext(ctx, cmd[0], full...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("admin dovecot: %s %s: %v: %s", strings.Join(cmd, " "), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (a DovecotAdmin) uidValidity(ctx context.Context, user, mailbox string) (uint32, error) {
	out, err := a.run(ctx, "-f", "flow", "mailbox", "status", "-u", user, "uidvalidity", mailbox)
	if err != nil {
		return 0, err
	}
	_, v, ok := strings.Cut(strings.TrimSpace(out), "uidvalidity=")
	if !ok || len(strings.Fields(v)) == 0 {
		return 0, fmt.Errorf("admin dovecot: uidvalidity of %q: unexpected doveadm output %q", mailbox, out)
	}
	n, err := strconv.ParseUint(strings.Fields(v)[0], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("admin dovecot: uidvalidity of %q: %w", mailbox, err)
	}
	return uint32(n), nil
}

func (a DovecotAdmin) bump(ctx context.Context, user, mailbox string) (uint32, error) {
	old, err := a.uidValidity(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	next := old + 1
	if next == 0 {
		next = 1
	}
	if _, err := a.run(ctx, "mailbox", "update", "-u", user, "--uid-validity", strconv.FormatUint(uint64(next), 10), mailbox); err != nil {
		return 0, err
	}
	got, err := a.uidValidity(ctx, user, mailbox)
	if err != nil {
		return 0, err
	}
	if got != next {
		return 0, fmt.Errorf("admin dovecot: bump UIDVALIDITY of %q: asked for %d, server has %d", mailbox, next, got)
	}
	return next, nil
}

func (a DovecotAdmin) reset(ctx context.Context, user, mailbox string) error {
	old, err := a.uidValidity(ctx, user, mailbox)
	if err != nil {
		return err
	}
	out, err := a.run(ctx, "mailbox", "path", "-u", user, mailbox)
	if err != nil {
		return err
	}
	dir := strings.TrimPrefix(strings.TrimSpace(out), "path=")
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("admin dovecot: path of %q: unexpected doveadm output %q", mailbox, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
		return fmt.Errorf("admin dovecot: reset %q: not a Maildir on this machine: %w", mailbox, ErrUnsupported)
	}
	order, err := readUIDList(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		return err
	}
	type file struct {
		sub, name, base string
		uid             uint32
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return fmt.Errorf("admin dovecot: reset %q: %w", mailbox, err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			files = append(files, file{sub: sub, name: e.Name(), base: base, uid: order[base]})
		}
	}
	// Highest old UID first, so the new numbering runs the other way.
	sort.SliceStable(files, func(i, j int) bool {
		a, b := files[i].uid, files[j].uid
		if a == 0 || b == 0 {
			return a == 0 && b != 0
		}
		return a > b
	})
	victims := []string{filepath.Join(dir, "dovecot-uidlist")}
	idx, err := filepath.Glob(filepath.Join(dir, "dovecot.index*"))
	if err != nil {
		return err
	}
	victims = append(victims, idx...)
	for _, v := range victims {
		if err := os.Remove(v); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("admin dovecot: reset %q: %w", mailbox, err)
		}
	}
	start := time.Now().Unix()
	for i, f := range files {
		info := strings.TrimPrefix(f.name, f.base)
		base := fmt.Sprintf("%d.M%06dP%dQ%d.syncharness-reset", start+int64(i), 0, os.Getpid(), i+1)
		if err := os.Rename(filepath.Join(dir, f.sub, f.name), filepath.Join(dir, f.sub, base+info)); err != nil {
			return fmt.Errorf("admin dovecot: reset %q: %w", mailbox, err)
		}
	}
	// doveadm opens the mailbox, numbers the files and records the new UIDVALIDITY.
	if _, err := a.run(ctx, "force-resync", "-u", user, mailbox); err != nil {
		return err
	}
	got, err := a.uidValidity(ctx, user, mailbox)
	if err != nil {
		return err
	}
	if got == old {
		_, err = a.bump(ctx, user, mailbox)
	}
	return err
}

// readUIDList returns the UID of every file base name in a dovecot-uidlist (version 3: a
// header line, then "UID [extensions] :filename").
func readUIDList(path string) (map[string]uint32, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]uint32{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin dovecot: read uidlist: %w", err)
	}
	order := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		uidStr, rest, ok := strings.Cut(sc.Text(), " ")
		i := strings.Index(rest, ":")
		if !ok || i < 0 {
			continue
		}
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("admin dovecot: read uidlist %q: bad line %q", path, sc.Text())
		}
		base, _, _ := strings.Cut(rest[i+1:], ":")
		order[base] = uint32(uid)
	}
	return order, sc.Err()
}

// GenericAdmin runs a shell command template per fault kind. In a template, {user} and
// {mailbox} are replaced by the account and the server's mailbox name, each quoted for the
// shell; the command runs with sh -c and must exit 0 once the fault is done. A kind
// without a template is unsupported.
type GenericAdmin struct {
	// Commands maps a fault kind (see AdminFaults) to its template.
	Commands map[string]string
}

// Name implements Admin.
func (GenericAdmin) Name() string { return "generic" }

// Fault implements Admin.
func (a GenericAdmin) Fault(ctx context.Context, f AdminFault) error {
	tmpl, ok := a.Commands[f.Kind]
	if !ok {
		return fmt.Errorf("admin generic: no command for %s: %w", f.Kind, ErrUnsupported)
	}
	line := strings.NewReplacer("{user}", shellQuote(f.User), "{mailbox}", shellQuote(f.Mailbox)).Replace(tmpl)
	c := exec.CommandContext(ctx, "sh", "-c", line)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("admin generic: %s: %q: %v: %s", f.Kind, line, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// ParseAdminCommand parses a FAULT=TEMPLATE argument of --admin-cmd.
func ParseAdminCommand(s string) (kind, tmpl string, err error) {
	kind, tmpl, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(tmpl) == "" {
		return "", "", fmt.Errorf("admin command %q: want FAULT=COMMAND", s)
	}
	for _, k := range AdminFaults {
		if k == kind {
			return kind, tmpl, nil
		}
	}
	return "", "", fmt.Errorf("admin command %q: unknown fault %q (known: %s)", s, kind, strings.Join(AdminFaults, ", "))
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
