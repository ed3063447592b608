package scenarios

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/txtar"
)

// Parse parses a scenario file and checks it. file names the file in errors and in the
// Scenario; data is its content. The error, if any, is an ErrorList holding every syntax
// and semantic error of the file, in line order. The Scenario is never nil: on error it
// holds every step that could be parsed.
func Parse(file string, data []byte) (*Scenario, error) {
	s, errs := parseSyntax(file, data)
	for _, e := range errs {
		if e.fatal {
			errs.sort()
			return s, errs.Err()
		}
	}
	errs = append(errs, check(s)...)
	errs.sort()
	return s, errs.Err()
}

// ParseSyntax parses a scenario file without the semantic checks (unknown devices,
// mailboxes, labels, attachments, setup order): what Format needs. Its error, if any, is
// an ErrorList.
func ParseSyntax(file string, data []byte) (*Scenario, error) {
	s, errs := parseSyntax(file, data)
	errs.sort()
	return s, errs.Err()
}

// ParseFS parses and checks every *.scn file in dir of fsys (not its subdirectories),
// sorted by name. The error, if any, is an ErrorList with the errors of every file; the
// scenarios returned are those without errors.
func ParseFS(fsys fs.FS, dir string) ([]*Scenario, error) {
	names, err := fs.Glob(fsys, path.Join(globEscape(dir), "*.scn"))
	if err != nil {
		return nil, fmt.Errorf("scenarios: list %s: %w", dir, err)
	}
	sort.Strings(names)
	var out []*Scenario
	var all ErrorList
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("scenarios: %w", err)
		}
		s, err := Parse(name, data)
		if err != nil {
			all = append(all, err.(ErrorList)...)
			continue
		}
		out = append(out, s)
	}
	return out, all.Err()
}

func globEscape(dir string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(dir)
}

// parser holds the state of parsing one file.
type parser struct {
	file        string
	devices     map[string]bool // every name on a devices line, for expect's [server|DEVICE]
	deviceOrder []string        // the same names in the order written
	errs        ErrorList
}

func (p *parser) errorf(line int, command, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Command: command, Msg: fmt.Sprintf(format, args...)})
}

// parseSyntax parses data into a Scenario, reporting syntax errors only.
func parseSyntax(file string, data []byte) (*Scenario, ErrorList) {
	ar := txtar.Parse(data)
	name := strings.TrimSuffix(filepath.Base(file), ".scn")
	cat, _, _ := strings.Cut(name, "_")
	s := &Scenario{
		Name:     name,
		File:     file,
		Category: cat,
		Files:    map[string][]byte{},
		Source:   data,
	}
	p := &parser{file: file, devices: map[string]bool{}}
	if at := binaryAt(data, len(ar.Comment)); at >= 0 {
		// One error for the whole file: its lines would be noise.
		return s, ErrorList{{File: file, Msg: fmt.Sprintf("not a text file (binary data at byte %d)", at), fatal: true}}
	}
	for _, f := range ar.Files {
		if _, dup := s.Files[f.Name]; dup {
			p.errorf(1, "", "file %q attached twice", f.Name)
			continue
		}
		s.Files[f.Name] = f.Data
		s.FileOrder = append(s.FileOrder, f.Name)
	}

	lines := strings.Split(string(ar.Comment), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	// Device names first: expect needs them to tell "expect phone INBOX m1" from
	// "expect INBOX m1", wherever the devices line is.
	for _, line := range lines {
		toks, _, _, err := splitLine(line)
		if err != nil || len(toks) == 0 || toks[0].quoted() || toks[0].text != "devices" {
			continue
		}
		for _, t := range toks[1:] {
			p.devices[t.text] = true
			p.deviceOrder = append(p.deviceOrder, t.text)
		}
	}

	var stack []*Step          // open blocks
	var openConcurrently *Step // the open concurrently block, if any
	tooDeep := false
	var pending []string
	add := func(st *Step) {
		if n := len(stack); n > 0 {
			stack[n-1].Body = append(stack[n-1].Body, st)
		} else {
			s.Steps = append(s.Steps, st)
		}
	}
	for i, line := range lines {
		n := i + 1
		toks, comment, hasComment, err := splitLine(line)
		if err != nil {
			p.errorf(n, "", "%v", err)
			continue
		}
		if len(toks) == 0 {
			if hasComment {
				pending = append(pending, comment)
			} else {
				pending = append(pending, "")
			}
			continue
		}
		before := len(p.errs)
		guards, rest := p.parseGuards(n, toks)
		if len(rest) == 0 {
			if len(p.errs) == before {
				p.errorf(n, "", "guard without a step")
			}
			continue
		}
		if !rest[0].quoted() && rest[0].text == "end" {
			switch {
			case len(stack) == 0:
				p.errorf(n, "end", "end without concurrently or repeat")
			default:
				if len(guards) > 0 {
					p.errorf(n, "end", "end takes no guard (guard the block's first line)")
				}
				if len(rest) > 1 {
					p.errorf(n, "end", "end takes no arguments")
				}
				blk := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if blk == openConcurrently {
					openConcurrently = nil
				}
				blk.EndBefore = pending
				blk.EndComment = comment
				pending = nil
			}
			continue
		}
		st := p.parseStep(n, guards, rest)
		if st == nil {
			continue
		}
		st.Before = pending
		pending = nil
		if hasComment {
			st.Comment = comment
		}
		add(st)
		if st.Verb == "concurrently" || st.Verb == "repeat" {
			if st.Verb == "concurrently" {
				if openConcurrently != nil {
					p.errorf(n, "concurrently", "concurrently inside concurrently (line %d): blocks of this kind do not nest", openConcurrently.Line)
				} else {
					openConcurrently = st
				}
			}
			stack = append(stack, st)
			if len(stack) > MaxDepth && !tooDeep {
				// Reported once, and the semantic checks are left out: the file is
				// rejected without walking what it nests.
				tooDeep = true
				p.errs = append(p.errs, &Error{File: file, Line: n, Command: st.Verb, fatal: true,
					Msg: fmt.Sprintf("blocks nested %d deep (at most %d)", len(stack), MaxDepth)})
			}
		}
	}
	for _, open := range stack {
		p.errorf(open.Line, open.Verb, "%s without end", open.Verb)
	}
	for _, open := range stack {
		open.EndBefore = pending
		pending = nil
	}
	s.Trailer = pending
	s.Description = description(s)
	return s, p.errs
}

// description returns the first group of comment lines before the first step.
func description(s *Scenario) string {
	lead := s.Trailer
	if len(s.Steps) > 0 {
		lead = s.Steps[0].Before
	}
	var out []string
	for _, l := range lead {
		if l == "" {
			if len(out) > 0 {
				break
			}
			continue
		}
		out = append(out, strings.TrimPrefix(l, " "))
	}
	return strings.Join(out, "\n")
}

// parseGuards takes the leading [guard] words of a line.
func (p *parser) parseGuards(line int, toks []token) ([]Guard, []token) {
	var guards []Guard
	for len(toks) > 0 && !toks[0].quoted() && strings.HasPrefix(toks[0].text, "[") {
		t := toks[0].text
		toks = toks[1:]
		if !strings.HasSuffix(t, "]") || len(t) < 3 {
			p.errorf(line, "", "bad guard %q: want [fake], [remote], [cap:NAME] or one of them negated with '!'", t)
			continue
		}
		body := t[1 : len(t)-1]
		var g Guard
		if strings.HasPrefix(body, "!") {
			g.Not = true
			body = body[1:]
		}
		name, arg, hasArg := strings.Cut(body, ":")
		g.Name = name
		switch {
		case (name == "fake" || name == "remote") && !hasArg:
		case name == "cap" && hasArg:
			c, ok := canonicalCap(arg)
			if !ok {
				p.errorf(line, "", "guard %s: unknown capability %q (known: %s)", t, arg, strings.Join(knownCaps, " "))
				continue
			}
			g.Arg = c
		default:
			p.errorf(line, "", "bad guard %q: want [fake], [remote], [cap:NAME] or one of them negated with '!'", t)
			continue
		}
		guards = append(guards, g)
	}
	return guards, toks
}

// parseStep parses one step line (guards already taken). It returns nil when the line is
// no known command; a step with a syntax error in its arguments is returned marked
// invalid, so that the checks can follow what it makes without reporting on it again.
func (p *parser) parseStep(line int, guards []Guard, toks []token) *Step {
	st := &Step{Line: line, Guards: guards, Options: map[string]string{}}
	first := toks[0]
	var class string
	var args []token
	switch {
	case first.quoted():
		p.errorf(line, "", "unknown command %s", first.raw)
		return nil
	case setupVerbs[first.text] || first.text == "expect" || first.text == "sync" ||
		first.text == "concurrently" || first.text == "repeat":
		class = classOf(first.text)
		st.Verb = first.text
		args = toks[1:]
	case first.text == ActorServer:
		if len(toks) < 2 {
			p.errorf(line, "server", "missing server command (one of: %s)", strings.Join(verbsOf("server"), ", "))
			return nil
		}
		class = "server"
		st.Actor = ActorServer
		st.Verb = toks[1].text
		args = toks[2:]
	default:
		if len(toks) < 2 && p.devices[first.text] {
			p.errorf(line, "", "missing command after device %q (one of: %s)", first.text, strings.Join(verbsOf("device"), ", "))
			return nil
		}
		if !p.devices[first.text] && (len(toks) < 2 || specs["device "+toks[1].text] == nil) {
			p.errorf(line, "", "unknown command %q%s", first.text, p.commandHint(first.text))
			return nil
		}
		class = "device"
		st.Actor = first.text
		st.Verb = toks[1].text
		args = toks[2:]
	}
	sp := specs[class+" "+st.Verb]
	if sp == nil {
		if class == "server" {
			p.errorf(line, st.Verb, "unknown server command (one of: %s)", strings.Join(verbsOf("server"), ", "))
		} else {
			p.errorf(line, st.Verb, "unknown device command (one of: %s)", strings.Join(verbsOf("device"), ", "))
		}
		return nil
	}
	lp := &lineParser{p: p, st: st, sp: sp, line: line}
	lp.split(args)
	sp.parse(lp)
	if len(lp.pos) > 0 && !lp.failed {
		lp.errorf("too many arguments %s (usage: %s)", rawWords(lp.pos), lp.usage())
	}
	lp.options()
	st.invalid = lp.failed
	return st
}

func rawWords(toks []token) string {
	w := make([]string, len(toks))
	for i, t := range toks {
		w[i] = t.raw
	}
	return strings.Join(w, " ")
}

// commandHint suggests what an unknown first word of a line may have meant.
func (p *parser) commandHint(word string) string {
	if specs["device "+word] != nil || specs["server "+word] != nil {
		example := "phone"
		if len(p.deviceOrder) > 0 {
			example = p.deviceOrder[0]
		}
		return fmt.Sprintf(": name who does it, a device or the server (%s %s …, server %s …)", example, word, word)
	}
	names := map[string]bool{}
	for _, sp := range specList {
		verb, _, _ := strings.Cut(sp.doc.Name, " ")
		names[verb] = true
	}
	if near := nearest(word, names); near != "" {
		return fmt.Sprintf(" (did you mean %q?)", near)
	}
	return ""
}

var setupVerbs = map[string]bool{"devices": true, "mailbox": true, "deliver": true, "caps": true}

func classOf(verb string) string {
	switch {
	case setupVerbs[verb]:
		return "setup"
	case verb == "expect":
		return "check"
	default:
		return "flow"
	}
}
