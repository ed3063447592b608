package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
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
	// content, flags and keywords kept; without a profile that makes it, the remote target
	// recreates the mailbox over IMAP).
	Kind string
	// User is the account; Mailbox is the server's full name of the mailbox.
	User    string
	Mailbox string
}

// AdminFaults are the fault kinds an admin profile may perform.
var AdminFaults = []string{"uidvalidity-bump", "uidvalidity-reset"}

// DovecotAdmin is the built-in admin profile for a Dovecot server this machine can run
// doveadm for. A bump is `doveadm mailbox update --uid-validity` (the old value plus one).
//
// It does not make resets: removing a mailbox's dovecot-uidlist and index files while
// Dovecot processes have the mailbox open corrupts their view ("duplicate transaction log
// sequence", then "Internal error occurred" for every SELECT), and kicking the user to
// avoid that would also cut every other scenario running on the account. The remote
// target makes a reset over IMAP instead (see RemoteTarget).
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
