package external

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// dirOf returns the directory of mailbox name, relative to the root of the Maildir tree.
// Names are kept on disk as the IMAP server spells them (modified UTF-7), as both built-in
// engines do.
func (l Layout) dirOf(name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return l.Inbox, nil
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", fmt.Errorf("mailbox name %q has an empty level", name)
	}
	enc := encodeUTF7(name)
	levels := strings.Split(enc, "/")
	for _, lv := range levels {
		if lv == "." || lv == ".." || strings.ContainsRune(lv, 0) {
			return "", fmt.Errorf("mailbox name %q cannot be a directory", name)
		}
		if l.Separator == "." && strings.Contains(lv, ".") {
			return "", fmt.Errorf("mailbox name %q: a level holds %q, the layout's separator", name, ".")
		}
	}
	if l.Separator == "/" {
		levels[0] = l.Prefix + levels[0]
		for _, lv := range levels {
			if lv == "tmp" || lv == "new" || lv == "cur" {
				return "", fmt.Errorf("mailbox name %q: level %q is a Maildir subdirectory", name, lv)
			}
		}
		return filepath.Join(levels...), nil
	}
	return l.Prefix + strings.Join(levels, "."), nil
}

// nameOf returns the mailbox name of a directory relative to the tree, or false when the
// directory is not a mailbox of this layout.
func (l Layout) nameOf(rel string) (string, bool) {
	rel = filepath.ToSlash(rel)
	if rel == "." {
		rel = ""
	}
	if rel == filepath.ToSlash(l.Inbox) {
		return "INBOX", true
	}
	if !strings.HasPrefix(rel, l.Prefix) || rel == l.Prefix {
		return "", false
	}
	enc := strings.TrimPrefix(rel, l.Prefix)
	if l.Separator == "." {
		if strings.Contains(enc, "/") {
			return "", false
		}
		enc = strings.ReplaceAll(enc, ".", "/")
	}
	name, err := decodeUTF7(enc)
	if err != nil {
		return enc, true
	}
	return name, true
}

// mailboxes lists the mailboxes of the tree at root: every directory that has a cur
// subdirectory and maps to a name, sorted by name.
func (l Layout) mailboxes(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		base := e.Name()
		if rel != "." {
			if base == "tmp" || base == "new" || base == "cur" || l.ignored(base) {
				return filepath.SkipDir
			}
		}
		if st, err := os.Stat(filepath.Join(p, "cur")); err == nil && st.IsDir() {
			if name, ok := l.nameOf(rel); ok {
				out[name] = p
			}
		}
		if l.Separator == "." && rel != "." {
			return filepath.SkipDir // Maildir++ folders are all direct children of the root
		}
		return nil
	})
	return out, err
}

func (l Layout) ignored(base string) bool {
	for _, g := range l.Ignore {
		if ok, _ := path.Match(g, base); ok {
			return true
		}
	}
	return false
}

// sortedNames returns the keys of m, sorted.
func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
