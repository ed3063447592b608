package explore

import (
	"slices"
	"strings"
)

// shrinker cuts a failing script down while fails still holds, by delta debugging over the
// items, then the lines of blocks, the devices, the messages and the mailboxes (first the
// setup's unused mailboxes all at once, then one mailbox at a time with the steps that name
// it), then by simplifying arguments. fails is called at most budget times.
type shrinker struct {
	fails  func(*script) bool
	budget int
	tries  int
}

// try reports whether candidate still fails, within the budget.
func (sh *shrinker) try(candidate *script) bool {
	if sh.tries >= sh.budget {
		return false
	}
	sh.tries++
	return sh.fails(candidate)
}

// shrink returns the smallest failing script it finds, starting from s (which must fail).
func (sh *shrinker) shrink(s *script) *script {
	for sh.tries < sh.budget {
		before := sh.size(s)
		s = sh.items(s)
		s = sh.blocks(s)
		s = sh.devices(s)
		s = sh.labels(s)
		s = sh.unusedMailboxes(s)
		s = sh.mailboxes(s)
		s = sh.options(s)
		if sh.size(s) >= before {
			break
		}
	}
	return s
}

// size orders scripts: fewer steps first, then fewer words.
func (sh *shrinker) size(s *script) int {
	words := 0
	for _, l := range s.setup {
		words += len(l)
	}
	for _, it := range s.items {
		words += len(it.words)
		for _, l := range it.body {
			words += len(l)
		}
	}
	return s.steps()*1000 + len(s.setup)*100 + words
}

// items removes chunks of top-level items, halving the chunk size down to one (ddmin).
func (sh *shrinker) items(s *script) *script {
	for n := max(len(s.items)/2, 1); n >= 1; n /= 2 {
		for start := 0; start < len(s.items); {
			c := s.clone()
			c.items = append(c.items[:start:start], c.items[min(start+n, len(c.items)):]...)
			if len(c.items) < len(s.items) && sh.try(c) {
				s = c
				continue
			}
			start += n
		}
		if n == 1 {
			break
		}
	}
	return s
}

// blocks removes lines of concurrently blocks and turns blocks into plain steps.
func (sh *shrinker) blocks(s *script) *script {
	for i := 0; i < len(s.items); i++ {
		if !s.items[i].block {
			continue
		}
		for b := 0; b < len(s.items[i].body) && len(s.items[i].body) > 1; {
			c := s.clone()
			c.items[i].body = append(c.items[i].body[:b:b], c.items[i].body[b+1:]...)
			if sh.try(c) {
				s = c
				continue
			}
			b++
		}
		// A block of one line, or one whose order does not matter, becomes plain steps.
		c := s.clone()
		var flat []*item
		for _, l := range c.items[i].body {
			flat = append(flat, &item{words: l})
		}
		c.items = append(c.items[:i:i], append(flat, c.items[i+1:]...)...)
		if sh.try(c) {
			s = c
		}
	}
	return s
}

// without returns a copy of s without the lines keep rejects (setup lines included, the
// devices line excepted).
func without(s *script, drop func(words []string) bool) *script {
	c := &script{header: s.header}
	for _, l := range s.setup {
		if l[0] == "devices" || !drop(l) {
			c.setup = append(c.setup, append([]string(nil), l...))
		}
	}
	for _, it := range s.items {
		if it.group {
			if !slices.ContainsFunc(it.body, drop) {
				c.items = append(c.items, it.clone())
			}
			continue
		}
		if !it.block {
			if !drop(it.words) {
				c.items = append(c.items, it.clone())
			}
			continue
		}
		nb := &item{words: it.words, block: true}
		for _, l := range it.body {
			if !drop(l) {
				nb.body = append(nb.body, append([]string(nil), l...))
			}
		}
		switch len(nb.body) {
		case 0:
		case 1:
			c.items = append(c.items, &item{words: nb.body[0]})
		default:
			c.items = append(c.items, nb)
		}
	}
	return c
}

// devices removes one device at a time with every step it takes.
func (sh *shrinker) devices(s *script) *script {
	for i := 1; i < len(s.setup[0]) && len(s.setup[0]) > 2; {
		d := s.setup[0][i]
		c := without(s, func(w []string) bool { return w[0] == d })
		c.setup[0] = append(append([]string(nil), c.setup[0][:i]...), c.setup[0][i+1:]...)
		if sh.try(c) {
			s = c
			continue
		}
		i++
	}
	return s
}

// labels removes one message at a time: from the setup's deliver lines, and every step
// that names it.
func (sh *shrinker) labels(s *script) *script {
	for _, l := range scriptLabels(s) {
		c := without(s, func(w []string) bool {
			if w[0] == "deliver" && len(w) > 3 {
				return false
			}
			for _, x := range w[1:] {
				if x == l {
					return true
				}
			}
			return false
		})
		for i, w := range c.setup {
			if w[0] == "deliver" {
				c.setup[i] = removeWord(w, l)
			}
		}
		if sh.try(c) {
			s = c
		}
	}
	return s
}

func removeWord(words []string, w string) []string {
	var out []string
	for _, x := range words {
		if x != w {
			out = append(out, x)
		}
	}
	return out
}

// scriptLabels lists the labels the setup delivers, in order.
func scriptLabels(s *script) []string {
	var out []string
	for _, w := range s.setup {
		if w[0] == "deliver" {
			out = append(out, w[2:]...)
		}
	}
	return out
}

// needs lists the verbs of steps that need a mailbox of a special use: they go with it.
var needs = map[string][]string{`\Trash`: {"trash"}, `\Sent`: {"reply", "forward"}}

// unusedMailboxes removes, in one go, the setup's mailbox lines that nothing else needs: a
// mailbox that no other line names and whose special use no step needs. One at a time
// they may not go (the mailboxes pass tries that): the server's seeded state depends on
// how many mailboxes it has, so a failure may need either all of them or none.
func (sh *shrinker) unusedMailboxes(s *script) *script {
	named := map[string]bool{}
	verbs := map[string]bool{}
	note := func(line []string) {
		for _, x := range line {
			named[x] = true
		}
		if len(line) > 1 {
			verbs[line[1]] = true // a device step: DEVICE VERB …
		}
	}
	for _, w := range s.setup {
		if w[0] != "mailbox" {
			note(w)
		}
	}
	for _, it := range s.items {
		note(it.words)
		for _, l := range it.body {
			note(l)
		}
	}
	c := s.clone()
	c.setup = c.setup[:0]
	for _, w := range s.setup {
		used := w[0] != "mailbox" || named[w[1]]
		if !used {
			for _, v := range needs[strings.Join(w[2:], "")] {
				used = used || verbs[v]
			}
		}
		if used {
			c.setup = append(c.setup, w)
		}
	}
	if len(c.setup) == len(s.setup) || !sh.try(c) {
		return s
	}
	return c
}

// mailboxes removes one declared mailbox at a time, with every step that names it.
func (sh *shrinker) mailboxes(s *script) *script {
	var names, uses []string
	for _, w := range s.setup {
		if w[0] == "mailbox" {
			names = append(names, w[1])
			uses = append(uses, strings.Join(w[2:], ""))
		}
	}
	for i, m := range names {
		c := without(s, func(w []string) bool {
			for _, x := range w {
				if x == m {
					return true
				}
			}
			for _, verb := range needs[uses[i]] {
				if len(w) > 1 && w[1] == verb {
					return true
				}
			}
			return false
		})
		if sh.try(c) {
			s = c
		}
	}
	return s
}

// options drops key=value options, one at a time, and lowers the numbers of the others.
func (sh *shrinker) options(s *script) *script {
	edit := func(i, b, k int, words []string) *script {
		c := s.clone()
		if b < 0 {
			c.items[i].words = words
		} else {
			c.items[i].body[b] = words
		}
		return c
	}
	for i := range s.items {
		if s.items[i].group {
			continue
		}
		lines := [][]string{s.items[i].words}
		if s.items[i].block {
			lines = s.items[i].body
		}
		for b := range lines {
			bi := -1
			if s.items[i].block {
				bi = b
			}
			words := lines[b]
			for k := len(words) - 1; k >= 1; k-- {
				key, val, ok := strings.Cut(words[k], "=")
				if !ok {
					continue
				}
				c := edit(i, bi, k, append(append([]string(nil), words[:k]...), words[k+1:]...))
				if sh.try(c) {
					s = c
					break
				}
				if n := atoi(val); n > 1 {
					w := append([]string(nil), words...)
					w[k] = key + "=" + itoa(n/2)
					if c := edit(i, bi, k, w); sh.try(c) {
						s = c
					}
				}
			}
		}
	}
	return s
}
