package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/maildir"
)

// Config is what New needs to build one device.
type Config struct {
	Name     string
	Profile  *Profile
	Dial     func(ctx context.Context) (net.Conn, error) // to the server, through the harness
	Username string
	Password string
	// Dir is an empty directory the device owns: the Maildir tree, the engine's state, its
	// configuration, the password file and the engine's output (log/).
	Dir string
}

// Device is a clients.Device whose replica is a Maildir tree kept by an external engine.
// Local actions are file operations on the tree; Sync runs the engine's command. It does not
// implement clients.SyncStater: the checks that need an engine's internal state are not
// applicable to it.
type Device struct {
	cfg  Config
	prof *Profile
	root string // the Maildir tree
	fwd  *forwarder
	data ConfigData
	args []string
	env  []string

	mu      sync.Mutex
	stopped *engineRun // an engine run stopped where the connection was cut, or nil
	runs    int
	logs    []string // log files of every run, in order
}

var _ clients.Device = (*Device)(nil)

// New builds a device: it writes the engine's configuration and the password file and
// starts the local listener the engine connects to. The engine binary must be installed.
func New(cfg Config) (*Device, error) {
	p := cfg.Profile
	if p == nil {
		return nil, errors.New("external device: no engine profile")
	}
	bin, err := p.LookBinary()
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, prof: p, root: filepath.Join(cfg.Dir, "mail")}
	for _, sub := range []string{"mail", "state", "log"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("external device %s: %w", cfg.Name, err)
		}
	}
	inbox, _ := p.Maildir.dirOf("INBOX")
	pwFile := filepath.Join(cfg.Dir, "password")
	if err := os.WriteFile(pwFile, []byte(cfg.Password), 0o600); err != nil {
		return nil, fmt.Errorf("external device %s: password file: %w", cfg.Name, err)
	}
	fwd, err := newForwarder(cfg.Dial, nil)
	if err != nil {
		return nil, fmt.Errorf("external device %s: %w", cfg.Name, err)
	}
	d.fwd = fwd
	host, port := fwd.hostPort()
	d.data = ConfigData{
		Host: host, Port: port, User: cfg.Username, PasswordFile: pwFile,
		Dir: cfg.Dir, Maildir: d.root + string(filepath.Separator), Inbox: filepath.Join(d.root, inbox),
		State: filepath.Join(cfg.Dir, "state") + string(filepath.Separator), Binary: bin, Name: cfg.Name,
	}
	if p.ConfigFile != "" {
		d.data.Config = filepath.Join(cfg.Dir, p.ConfigFile)
		text, err := render("config", p.Config, d.data)
		if err != nil {
			fwd.close()
			return nil, fmt.Errorf("engine profile %s: config: %w", p.source, err)
		}
		if err := os.WriteFile(d.data.Config, []byte(text), 0o600); err != nil {
			fwd.close()
			return nil, fmt.Errorf("external device %s: %w", cfg.Name, err)
		}
	}
	for _, a := range p.Command {
		s, err := render("command", a, d.data)
		if err != nil {
			fwd.close()
			return nil, fmt.Errorf("engine profile %s: command: %w", p.source, err)
		}
		d.args = append(d.args, s)
	}
	for _, a := range p.Env {
		s, err := render("env", a, d.data)
		if err != nil {
			fwd.close()
			return nil, fmt.Errorf("engine profile %s: env: %w", p.source, err)
		}
		d.env = append(d.env, s)
	}
	if cfg.Password != "" {
		for _, a := range append(append([]string{}, d.args...), d.env...) {
			if strings.Contains(a, cfg.Password) {
				fwd.close()
				return nil, fmt.Errorf("engine profile %s: the command or its environment would hold the password; use {{.PasswordFile}}", p.source)
			}
		}
	}
	// INBOX exists from the start, as on every server.
	if err := d.makeMailbox("INBOX"); err != nil {
		fwd.close()
		return nil, err
	}
	return d, nil
}

// Name returns the device's name.
func (d *Device) Name() string { return d.cfg.Name }

// Root returns the Maildir tree's directory.
func (d *Device) Root() string { return d.root }

// Profile returns the device's engine profile.
func (d *Device) Profile() *Profile { return d.prof }

// Do applies a local user action to the Maildir tree, as a mail reader would.
func (d *Device) Do(ctx context.Context, a clients.Action) error {
	if err := d.resume(); err != nil {
		return err
	}
	switch a.Kind {
	case clients.ActRead, clients.ActUnread, clients.ActFlag, clients.ActUnflag:
		return d.setFlag(a)
	case clients.ActMove:
		return d.move(a.Mailbox, a.Labels, a.Dest)
	case clients.ActTrash:
		// A mail reader knows its trash folder by name: the scenario's \Trash mailbox,
		// "Trash" when the action does not name one.
		trash := a.Dest
		if trash == "" {
			trash = "Trash"
		}
		return d.move(a.Mailbox, a.Labels, trash)
	case clients.ActCopy:
		return d.copy(a.Mailbox, a.Labels, a.Dest)
	case clients.ActDelete:
		return d.remove(a.Mailbox, a.Labels)
	case clients.ActAppend:
		return d.appendMessage(a)
	case clients.ActCreateMailbox:
		if _, ok, err := d.mailboxDir(a.Mailbox); err != nil || ok {
			if err == nil {
				err = fmt.Errorf("create %s: mailbox exists", a.Mailbox)
			}
			return err
		}
		return d.makeMailbox(a.Mailbox)
	case clients.ActDeleteMailbox:
		return d.removeMailbox(a.Mailbox)
	case clients.ActRenameMailbox:
		return d.renameMailbox(a.Mailbox, a.Dest)
	}
	return fmt.Errorf("%s: unknown action %q", d.cfg.Name, a.Kind)
}

// mailboxDir returns the directory of a mailbox and whether it exists (has cur/).
func (d *Device) mailboxDir(name string) (string, bool, error) {
	rel, err := d.prof.Maildir.dirOf(name)
	if err != nil {
		return "", false, err
	}
	dir := filepath.Join(d.root, rel)
	st, err := os.Stat(filepath.Join(dir, "cur"))
	return dir, err == nil && st.IsDir(), nil
}

func (d *Device) existing(name string) (string, error) {
	dir, ok, err := d.mailboxDir(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("no mailbox %q on %s", name, d.cfg.Name)
	}
	return dir, nil
}

func (d *Device) makeMailbox(name string) error {
	dir, _, err := d.mailboxDir(name)
	if err != nil {
		return err
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	return nil
}

// file is one message file of a mailbox.
type file struct {
	dir   string // the mailbox directory
	sub   string // "new" or "cur"
	name  string // base name
	label string
	raw   []byte
}

func (f file) path() string { return filepath.Join(f.dir, f.sub, f.name) }

// key is the file name before the info part.
func (f file) key() string { k, _, _ := strings.Cut(f.name, ":"); return k }

func (f file) info() string { _, i, _ := strings.Cut(f.name, ":"); return i }

func (f file) flags() (maildir.Flags, string) {
	letters, ok := strings.CutPrefix(f.info(), "2,")
	if !ok {
		return 0, ""
	}
	return maildir.ParseFlags(letters)
}

// files lists the messages of a mailbox directory, sorted by file name.
func (d *Device) files(dir string) ([]file, error) {
	var out []file
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, file{dir: dir, sub: sub, name: e.Name(), label: clients.Label(raw), raw: raw})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sub+out[i].name < out[j].sub+out[j].name })
	return out, nil
}

// find returns every file of mailbox that carries one of labels; each label must match at
// least one file.
func (d *Device) find(mailbox string, labels []string) ([]file, error) {
	dir, err := d.existing(mailbox)
	if err != nil {
		return nil, err
	}
	all, err := d.files(dir)
	if err != nil {
		return nil, err
	}
	var out []file
	for _, l := range labels {
		n := 0
		for _, f := range all {
			if f.label == l {
				out = append(out, f)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("no message %s in %s on %s", l, mailbox, d.cfg.Name)
		}
	}
	return out, nil
}

// rename moves f to dir's cur under key with flags (and f's other info letters).
func rename(f file, dir, key string, flags maildir.Flags, other string) error {
	letters := []byte(flags.String() + other)
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	dst := filepath.Join(dir, "cur", key+":2,"+string(letters))
	if dst == f.path() {
		return nil
	}
	return os.Rename(f.path(), dst)
}

func (d *Device) setFlag(a clients.Action) error {
	flag := a.Flag
	switch a.Kind {
	case clients.ActRead, clients.ActUnread:
		flag = `\Seen`
	}
	std, rest := maildir.FromIMAP([]string{flag})
	if len(rest) > 0 {
		return fmt.Errorf("%s: engine %s keeps no %s in its Maildir (not claimed)", d.cfg.Name, d.prof.Name, flag)
	}
	set := a.Kind == clients.ActRead || a.Kind == clients.ActFlag
	files, err := d.find(a.Mailbox, a.Labels)
	if err != nil {
		return err
	}
	for _, f := range files {
		fl, other := f.flags()
		if set {
			fl |= std
		} else {
			fl &^= std
		}
		if err := rename(f, f.dir, f.key(), fl, other); err != nil {
			return fmt.Errorf("%s %s: %w", a.Kind, f.label, err)
		}
	}
	return nil
}

// stripUID removes the engine's own identity parts from a file's key.
func (d *Device) stripUID(key string) string {
	for _, re := range d.prof.uidPart {
		key = re.ReplaceAllString(key, "")
	}
	return key
}

func (d *Device) move(src string, labels []string, dest string) error {
	to, err := d.existing(dest)
	if err != nil {
		return err
	}
	files, err := d.find(src, labels)
	if err != nil {
		return err
	}
	for _, f := range files {
		fl, other := f.flags()
		if err := rename(f, to, d.stripUID(f.key()), fl, other); err != nil {
			return fmt.Errorf("move %s to %s: %w", f.label, dest, err)
		}
	}
	return nil
}

func (d *Device) copy(src string, labels []string, dest string) error {
	to, err := d.existing(dest)
	if err != nil {
		return err
	}
	files, err := d.find(src, labels)
	if err != nil {
		return err
	}
	for _, f := range files {
		fl, _ := f.flags()
		if err := d.write(to, f.raw, fl); err != nil {
			return fmt.Errorf("copy %s to %s: %w", f.label, dest, err)
		}
	}
	return nil
}

func (d *Device) remove(mailbox string, labels []string) error {
	files, err := d.find(mailbox, labels)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f.path()); err != nil {
			return fmt.Errorf("delete %s: %w", f.label, err)
		}
	}
	return nil
}

func (d *Device) appendMessage(a clients.Action) error {
	dir, err := d.existing(a.Mailbox)
	if err != nil {
		return err
	}
	std, rest := maildir.FromIMAP(a.Flags)
	if len(rest) > 0 {
		return fmt.Errorf("%s: engine %s keeps no %s in its Maildir (not claimed)", d.cfg.Name, d.prof.Name, strings.Join(rest, " "))
	}
	return d.write(dir, a.Message, std)
}

// write adds a new message file to dir's cur, in the engine's line endings.
func (d *Device) write(dir string, raw []byte, flags maildir.Flags) error {
	md, err := maildir.Open(dir, maildir.Options{Hostname: "syncharness", NoSync: true})
	if err != nil {
		return err
	}
	if d.prof.Maildir.LineEndings == "lf" {
		raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	}
	_, err = md.Add(bytes.NewReader(raw), flags)
	return err
}

func (d *Device) removeMailbox(name string) error {
	if strings.EqualFold(name, "INBOX") {
		return errors.New("remove INBOX: not allowed")
	}
	dir, err := d.existing(name)
	if err != nil {
		return err
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	if d.prof.Maildir.RemoveCurOnly {
		return nil // the engine's state stays, so that it sees a deletion
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) == 0 {
		return os.Remove(dir)
	}
	return nil // child mailboxes stay, as IMAP DELETE leaves them
}

func (d *Device) renameMailbox(old, name string) error {
	if strings.EqualFold(old, "INBOX") {
		return errors.New("rename INBOX: not supported by a Maildir reader")
	}
	from, err := d.existing(old)
	if err != nil {
		return err
	}
	to, exists, err := d.mailboxDir(name)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("rename %s to %s: mailbox exists", old, name)
	}
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("rename %s to %s: %s is in the way", old, name, to)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("rename %s to %s: %w", old, name, err)
	}
	if d.prof.Maildir.Separator == "/" {
		return nil // children moved with the directory
	}
	// Maildir++: every child is a directory of its own beside the parent.
	boxes, err := d.prof.Maildir.mailboxes(d.root)
	if err != nil {
		return err
	}
	for _, child := range sortedNames(boxes) {
		if rest, ok := strings.CutPrefix(child, old+"/"); ok {
			dst, _, err := d.mailboxDir(name + "/" + rest)
			if err != nil {
				return err
			}
			if err := os.Rename(boxes[child], dst); err != nil {
				return fmt.Errorf("rename %s to %s: %w", child, name+"/"+rest, err)
			}
		}
	}
	return nil
}

// View returns the mailboxes of the Maildir tree and their messages. Files the engine
// stores with LF line endings are shown with CRLF, as the server holds them.
func (d *Device) View(ctx context.Context) (clients.Replica, error) {
	if err := d.resume(); err != nil {
		return clients.Replica{}, err
	}
	boxes, err := d.prof.Maildir.mailboxes(d.root)
	if err != nil {
		return clients.Replica{}, err
	}
	var r clients.Replica
	for _, name := range sortedNames(boxes) {
		files, err := d.files(boxes[name])
		if err != nil {
			return clients.Replica{}, err
		}
		mb := clients.Mailbox{Name: name}
		for _, f := range files {
			raw := f.raw
			if d.prof.Maildir.LineEndings == "lf" {
				raw = toCRLF(raw)
			}
			raw = dropHeaders(raw, d.prof.Maildir.AddedHeaders)
			fl, _ := f.flags()
			flags := append([]string{}, fl.IMAPFlags()...)
			sort.Strings(flags)
			mb.Messages = append(mb.Messages, clients.Message{Label: f.label, Hash: clients.ContentHash(raw), Flags: flags})
		}
		sort.Slice(mb.Messages, func(i, j int) bool {
			a, b := mb.Messages[i], mb.Messages[j]
			if a.Label != b.Label {
				return a.Label < b.Label
			}
			return a.Hash < b.Hash
		})
		r.Mailboxes = append(r.Mailboxes, mb)
	}
	return r, nil
}

// dropHeaders removes the header fields named in names (and their continuation lines)
// from the header of raw.
func dropHeaders(raw []byte, names []string) []byte {
	if len(names) == 0 {
		return raw
	}
	var out []byte
	rest := raw
	dropping := false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if len(bytes.TrimRight(line, "\r\n")) == 0 { // end of the header
			out = append(out, line...)
			return append(out, rest...)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !dropping {
				out = append(out, line...)
			}
			continue
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		dropping = false
		for _, n := range names {
			if strings.EqualFold(string(bytes.TrimSpace(name)), n) {
				dropping = true
			}
		}
		if !dropping {
			out = append(out, line...)
		}
	}
	return out
}

// toCRLF turns bare LFs into CRLF.
func toCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// snapshot returns the tree's mailbox directories and message file names, for counting
// what a sync changed locally.
func (d *Device) snapshot() map[string]bool {
	out := map[string]bool{}
	boxes, err := d.prof.Maildir.mailboxes(d.root)
	if err != nil {
		return out
	}
	for name, dir := range boxes {
		out["mailbox "+name] = true
		for _, sub := range []string{"new", "cur"} {
			entries, _ := os.ReadDir(filepath.Join(dir, sub))
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), ".") {
					out[name+"/"+sub+"/"+e.Name()] = true
				}
			}
		}
	}
	return out
}

func changes(before, after map[string]bool) int {
	n := 0
	for k := range before {
		if !after[k] {
			n++
		}
	}
	for k := range after {
		if !before[k] {
			n++
		}
	}
	return n
}
