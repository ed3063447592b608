// Package external makes any command-driven sync engine that keeps a Maildir replica a
// device of the harness (mbsync, OfflineIMAP, or an engine of your own). What differs
// between engines is data, an engine profile (a small TOML file): how to find the binary
// and its version, the configuration to write for each device, the command that runs one
// sync, the Maildir layout the engine keeps, the part of a file name that holds its UIDs,
// and what the engine claims to support. The device acts on the Maildir as a careful mail
// reader does and runs the engine's command for every sync.
package external

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"
)

//go:embed profiles/*.toml
var builtin embed.FS

// A Profile describes one external engine. See docs/engines.md for every field.
type Profile struct {
	// Name names the engine in reports ("mbsync").
	Name string `toml:"name"`
	// Description is one line for --help and reports.
	Description string `toml:"description"`
	// Binary is the engine's executable, looked up in PATH unless it contains a slash.
	Binary string `toml:"binary"`
	// VersionArgs are the arguments that make the binary print its version.
	VersionArgs []string `toml:"version_args"`
	// ConfigFile is the name of the configuration file written in the device's directory.
	ConfigFile string `toml:"config_file"`
	// Config is a text/template of the configuration (see ConfigData for its fields).
	Config string `toml:"config"`
	// Command runs one sync and exits; each element is a template like Config.
	Command []string `toml:"command"`
	// Timeout bounds one run of Command ("60s"); default 60s.
	Timeout string `toml:"timeout"`
	// Env holds extra environment variables for the engine (templates, "NAME=value").
	Env []string `toml:"env"`

	// Policies lists the policy relaxations of the checker's model the engine follows
	// (syncharness help relaxations), by ID or name; none by default.
	Policies []string `toml:"policies"`

	Maildir Layout `toml:"maildir"`
	Claims  Claims `toml:"claims"`

	timeout time.Duration
	uidPart []*regexp.Regexp
	source  string // file the profile came from, for errors
}

// Layout is how the engine lays out mailboxes and names files in its Maildir tree.
type Layout struct {
	// Separator joins the levels of a mailbox name on disk: "/" for nested directories,
	// "." for one flat directory per mailbox (Maildir++ style).
	Separator string `toml:"separator"`
	// Prefix goes before every mailbox directory other than INBOX ("." for Maildir++).
	Prefix string `toml:"prefix"`
	// Inbox is the directory of INBOX relative to the tree: "" puts INBOX at the root of the
	// tree (Maildir++), "INBOX" in a directory of that name.
	Inbox string `toml:"inbox"`
	// UIDPart lists regular expressions for the parts of a file name that hold the engine's
	// own identity of the message (",U=[0-9]+"). A move into another folder removes them, as
	// the engine's documentation asks mail readers to do.
	UIDPart []string `toml:"uid_part"`
	// Ignore lists glob patterns (path.Match, on the base name) of files and directories the
	// engine keeps in the tree for itself; the device never shows them as mailboxes.
	Ignore []string `toml:"ignore"`
	// RemoveCurOnly removes a mailbox by deleting its cur subdirectory only (mbsync's way of
	// marking a Maildir deleted while its sync state remains inside it).
	RemoveCurOnly bool `toml:"remove_cur_only"`
	// LineEndings is how the engine stores messages: "crlf" (as on the wire, the default)
	// or "lf" (it turns CRLF into LF when it writes a file and back when it uploads).
	LineEndings string `toml:"line_endings"`
	// AddedHeaders lists header fields the engine adds to its own copy of a message for its
	// bookkeeping (mbsync's X-TUID). The device shows messages without them, so that their
	// content compares equal to the server's.
	AddedHeaders []string `toml:"added_headers"`
}

// Claims says what the engine claims to support. A scenario that needs what is not claimed
// is skipped with the reason; a claimed feature that fails is a failure.
type Claims struct {
	// Flags lists the IMAP flags the engine keeps in file names; other flags (keywords) are
	// not synchronised.
	Flags []string `toml:"flags"`
	// Keywords: arbitrary IMAP keywords are synchronised.
	Keywords bool `toml:"keywords"`
	// CreateFolder, RenameFolder, DeleteFolder: a folder created, renamed or deleted on
	// either side is created, renamed or deleted on the other.
	CreateFolder bool `toml:"create_folder"`
	RenameFolder bool `toml:"rename_folder"`
	DeleteFolder bool `toml:"delete_folder"`
	// Expunge: a message deleted on one side is removed from the other (not only marked).
	Expunge bool `toml:"expunge"`
	// Push: the engine can wait for server changes (IDLE) between runs of the harness.
	Push bool `toml:"push"`
}

// ConfigData is what the Config and Command templates see.
type ConfigData struct {
	Host         string // the device's server address (the harness's proxy), "127.0.0.1"
	Port         int
	User         string
	PasswordFile string // a file holding the password, readable by its owner only
	Dir          string // the device's private directory
	Maildir      string // root of the Maildir tree
	Inbox        string // directory of INBOX
	State        string // a private directory for the engine's sync state
	Config       string // path of the configuration file
	Binary       string // the resolved binary
	Name         string // the device's name
}

// Builtin returns the names of the built-in profiles, sorted.
func Builtin() []string {
	entries, _ := builtin.ReadDir("profiles")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// LoadBuiltin returns the built-in profile of that name.
func LoadBuiltin(name string) (*Profile, error) {
	b, err := builtin.ReadFile("profiles/" + name + ".toml")
	if err != nil {
		return nil, fmt.Errorf("unknown engine %q (built in: go, %s)", name, strings.Join(Builtin(), ", "))
	}
	return Parse("profiles/"+name+".toml", b)
}

// LoadFile reads a profile from a file.
func LoadFile(file string) (*Profile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("engine profile: %w", err)
	}
	return Parse(file, b)
}

// Parse parses a profile; file names it in errors ("file:line: …").
func Parse(file string, b []byte) (*Profile, error) {
	var p Profile
	md, err := toml.Decode(string(b), &p)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s:%d: %s", file, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %q", file, und[0].String())
	}
	p.source = file
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &p, nil
}

func (p *Profile) validate() error {
	switch {
	case p.Name == "":
		return errors.New("name is missing")
	case p.Binary == "":
		return errors.New("binary is missing")
	case len(p.Command) == 0:
		return errors.New("command is missing")
	case p.ConfigFile == "" && p.Config != "":
		return errors.New("config is set but config_file is not")
	case p.ConfigFile != "" && strings.ContainsAny(p.ConfigFile, "/\\"):
		return fmt.Errorf("config_file %q must be a plain file name", p.ConfigFile)
	}
	switch p.Maildir.Separator {
	case "/", ".":
	case "":
		return errors.New(`maildir.separator is missing ("/" or ".")`)
	default:
		return fmt.Errorf(`maildir.separator %q: want "/" or "."`, p.Maildir.Separator)
	}
	switch p.Maildir.LineEndings {
	case "", "crlf", "lf":
	default:
		return fmt.Errorf(`maildir.line_endings %q: want "crlf" or "lf"`, p.Maildir.LineEndings)
	}
	if strings.Contains(p.Maildir.Inbox, "/") && p.Maildir.Separator != "/" {
		return fmt.Errorf("maildir.inbox %q: nested, but the separator is %q", p.Maildir.Inbox, p.Maildir.Separator)
	}
	p.timeout = 60 * time.Second
	if p.Timeout != "" {
		d, err := time.ParseDuration(p.Timeout)
		if err != nil || d <= 0 {
			return fmt.Errorf("timeout %q: want a positive duration such as 60s", p.Timeout)
		}
		p.timeout = d
	}
	for _, s := range p.Maildir.UIDPart {
		re, err := regexp.Compile(s)
		if err != nil {
			return fmt.Errorf("maildir.uid_part %q: %v", s, err)
		}
		p.uidPart = append(p.uidPart, re)
	}
	for _, g := range p.Maildir.Ignore {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("maildir.ignore %q: %v", g, err)
		}
	}
	for _, f := range p.Claims.Flags {
		if !strings.HasPrefix(f, `\`) && !strings.HasPrefix(f, "$") {
			return fmt.Errorf(`claims.flags: %q is neither a system flag (\Seen) nor a keyword ($Forwarded)`, f)
		}
	}
	// Templates must parse now, not at the first sync.
	if _, err := template.New("config").Option("missingkey=error").Parse(p.Config); err != nil {
		return fmt.Errorf("config: %v", err)
	}
	for _, a := range append(append([]string{}, p.Command...), p.Env...) {
		if _, err := template.New("command").Option("missingkey=error").Parse(a); err != nil {
			return fmt.Errorf("command %q: %v", a, err)
		}
	}
	return nil
}

// TimeoutDuration is how long one run of the engine may take.
func (p *Profile) TimeoutDuration() time.Duration { return p.timeout }

// LookBinary returns the binary's path, or an error saying the engine is not installed.
func (p *Profile) LookBinary() (string, error) {
	bin, err := exec.LookPath(p.Binary)
	if err != nil {
		return "", fmt.Errorf("engine %s: %s is not installed: %w", p.Name, p.Binary, err)
	}
	return bin, nil
}

// Version runs the binary with VersionArgs and returns the first line it prints.
func (p *Profile) Version() (string, error) {
	bin, err := p.LookBinary()
	if err != nil {
		return "", err
	}
	if len(p.VersionArgs) == 0 {
		return "", nil
	}
	out, err := exec.Command(bin, p.VersionArgs...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil && line == "" {
		return "", fmt.Errorf("engine %s: %s %s: %w", p.Name, bin, strings.Join(p.VersionArgs, " "), err)
	}
	return strings.TrimSpace(line), nil
}

func render(name, text string, data ConfigData) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}
