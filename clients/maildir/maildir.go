// Package maildir reads and writes Maildir directories as described in the Maildir
// specification (cr.yp.to/proto/maildir.html): three subdirectories tmp, new and cur; a
// message is written under tmp with a unique name and then moved to new or cur, so that a
// reader sees it whole or not at all; its flags live in the ":2,FLAGS" suffix of its name in
// cur, with the standard letters D F P R S T in ASCII order.
//
// A message is named by its Key: the unique part of its file name, before the ":". The key
// never changes while the message lives, even when its flags (and so its file name) change.
//
// Keywords (IMAP flags other than the six standard ones) have no place in a standard
// Maildir name. This package keeps the letters it does not know when it renames a file,
// but it never invents letters for keywords: a caller that needs keywords keeps them in
// its own index keyed by Key (FromIMAP splits a flag list into the two parts).
//
// Crash safety: a delivered message is fsynced in tmp, hard-linked into new or cur (which
// fails instead of overwriting an existing name) and the directory is fsynced before the
// call returns; a crash leaves either the complete message in new or cur or at most an
// orphan file in tmp, which CleanTmp removes.
package maildir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned (wrapped) for a key that names no message of the Maildir.
var ErrNotFound = errors.New("maildir: no such message")

// Options configures Open.
type Options struct {
	// Hostname is the host part of new file names; empty: os.Hostname. "/" and ":" are
	// encoded as the specification says ("\057" and "\072").
	Hostname string
	// NoSync skips every fsync: a crash may then leave an empty or partial message. For
	// throwaway directories (tests, benchmarks), and for writers of many messages at once
	// that call SyncMessages before they rely on them.
	NoSync bool
	// NoSyncRenames skips the directory fsync after SetFlags and Remove (deliveries are
	// still fsynced): a crash may then undo a recent flag rename or removal. For owners
	// that keep the truth elsewhere and repair names on open.
	NoSyncRenames bool
	// Perm is the mode of directories Open creates; zero: 0700.
	Perm fs.FileMode
}

// A Dir is one Maildir. Its methods are safe for concurrent use. Other processes may
// change the Maildir at the same time (deliver, rename, remove): a Dir finds a message
// again by its key when its file name changed under it.
type Dir struct {
	path string
	host string
	pid  int
	sync bool // fsync deliveries
	// syncRenames: fsync the directory after renames and removals
	syncRenames bool
	seq         atomic.Uint64

	mu    sync.Mutex
	names map[string]string // key → file name relative to path ("new/K" or "cur/K:2,FS"); nil until scanned
}

// A Message is one message of a Maildir as found on disk.
type Message struct {
	Key   string // unique name, stable across flag changes
	Flags Flags  // standard flags from the ":2," suffix; always zero in new
	Other string // info letters that are not standard flags, kept on renames
	New   bool   // the message is in new (not yet seen by a mail reader)
	Path  string // the file's current path
}

// Open opens the Maildir at path, creating path and its tmp, new and cur subdirectories if
// they are missing.
func Open(path string, opts Options) (*Dir, error) {
	perm := opts.Perm
	if perm == 0 {
		perm = 0o700
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(path, sub), perm); err != nil {
			return nil, fmt.Errorf("maildir: create %q: %w", filepath.Join(path, sub), err)
		}
	}
	host := opts.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("maildir: hostname: %w", err)
		}
		host = h
	}
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return &Dir{path: path, host: host, pid: os.Getpid(), sync: !opts.NoSync,
		syncRenames: !opts.NoSync && !opts.NoSyncRenames}, nil
}

// Path returns the Maildir's directory.
func (d *Dir) Path() string { return d.path }

// Deliver writes the message read from r into new, as a mail delivery agent does, and
// returns it. The message is complete on disk (fsynced unless NoSync) when Deliver returns.
func (d *Dir) Deliver(r io.Reader) (Message, error) {
	return d.put(r, "new", "")
}

// Add writes the message read from r directly into cur with the given flags, as a mail
// reader that saves a message it already knows does, and returns it. The message is
// complete on disk (fsynced unless NoSync) when Add returns.
func (d *Dir) Add(r io.Reader, flags Flags) (Message, error) {
	return d.put(r, "cur", ":2,"+flags.String())
}

func (d *Dir) put(r io.Reader, sub, info string) (Message, error) {
	key, tmp, err := d.writeTmp(r)
	if err != nil {
		return Message{}, err
	}
	rel := filepath.Join(sub, key+info)
	dst := filepath.Join(d.path, rel)
	if err := publish(tmp, dst); err != nil {
		_ = os.Remove(tmp) // best effort: an orphan in tmp is harmless and CleanTmp removes it
		return Message{}, fmt.Errorf("maildir: deliver %q: %w", key, err)
	}
	if err := d.syncDir(sub); err != nil {
		return Message{}, err
	}
	d.remember(key, rel)
	return messageFor(d.path, rel), nil
}

// writeTmp writes r to a new unique file in tmp, fsyncs it and returns its key and path.
func (d *Dir) writeTmp(r io.Reader) (key, path string, err error) {
	for attempt := 0; ; attempt++ {
		key, err = d.uniqueName()
		if err != nil {
			return "", "", err
		}
		path = filepath.Join(d.path, "tmp", key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && attempt < 5 {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("maildir: create %q: %w", path, err)
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			os.Remove(path)
			return "", "", fmt.Errorf("maildir: write %q: %w", path, err)
		}
		if d.sync {
			if err := f.Sync(); err != nil {
				f.Close()
				os.Remove(path)
				return "", "", fmt.Errorf("maildir: fsync %q: %w", path, err)
			}
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return "", "", fmt.Errorf("maildir: close %q: %w", path, err)
		}
		return key, path, nil
	}
}

// uniqueName returns a name in the form the specification recommends:
// seconds.M<microseconds>P<pid>Q<counter>R<random>.host.
func (d *Dir) uniqueName() (string, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("maildir: random: %w", err)
	}
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, d.pid,
		d.seq.Add(1), hex.EncodeToString(rnd[:]), d.host), nil
}

// publish moves the complete file tmp to dst, never over an existing file: a rename
// after checking that dst is free. The name is unique (time, process, sequence and 48
// random bits); a rename changes the directories once where the classic link and unlink
// change them twice (a first sync of 10,000 messages spent a fifth less time in the
// kernel).
func publish(tmp, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%q: %w", dst, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return rename(tmp, dst)
}

func (d *Dir) syncDir(sub string) error {
	if !d.sync {
		return nil
	}
	return fsyncDir(filepath.Join(d.path, sub))
}

func (d *Dir) syncDirAfterRename(sub string) error {
	if !d.syncRenames {
		return nil
	}
	return fsyncDir(filepath.Join(d.path, sub))
}

func fsyncDir(p string) error { return fsyncFile(p) }

// syncWorkers is how many fsyncs SyncMessages runs at once: file systems with a journal
// commit concurrent fsyncs together.
const syncWorkers = 8

// SyncMessages makes the messages with the given keys durable: their content and their
// names in new or cur (a leftover tmp name after a crash is an orphan for CleanTmp). With a Dir opened with NoSync, a
// caller that writes many messages calls it once before it relies on them; this is much
// cheaper than an fsync per delivery, as the files are synced in parallel and each
// directory once.
func (d *Dir) SyncMessages(keys []string) error {
	msgs := make([]Message, 0, len(keys))
	for _, key := range keys {
		rel, err := d.find(key, false)
		if err != nil {
			return fmt.Errorf("maildir: sync: %w", err)
		}
		msgs = append(msgs, messageFor(d.path, rel))
	}
	return d.Sync(msgs)
}

// Sync is SyncMessages for messages as Deliver or Add returned them, by their paths: it
// needs no lookup, so a process that only writes never reads the directory.
func (d *Dir) Sync(msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	paths := make(chan string)
	errs := make(chan error, syncWorkers)
	var wg sync.WaitGroup
	for i := 0; i < min(syncWorkers, len(msgs)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for p := range paths {
				if first != nil {
					continue // drain
				}
				first = fsyncFile(p)
			}
			errs <- first
		}()
	}
	subs := map[string]bool{}
	for _, m := range msgs {
		subs[filepath.Base(filepath.Dir(m.Path))] = true
		paths <- m.Path
	}
	close(paths)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	for _, sub := range []string{"new", "cur"} {
		if subs[sub] {
			if err := fsyncDir(filepath.Join(d.path, sub)); err != nil {
				return err
			}
		}
	}
	return nil
}

func fsyncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("maildir: open %q: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("maildir: fsync %q: %w", p, err)
	}
	return nil
}

// List returns every message in new and cur, sorted by key. Files whose names start with
// a dot are ignored, as the specification requires. It leaves the key index as it was: a
// process that lists once and then only writes keeps no index growing with the Maildir.
func (d *Dir) List() ([]Message, error) {
	names, err := d.readNames()
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(names))
	for _, rel := range names {
		out = append(out, messageFor(d.path, rel))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// scan reads new and cur and replaces the key index. It returns the new index.
func (d *Dir) scan() (map[string]string, error) {
	names, err := d.readNames()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.names = names
	d.mu.Unlock()
	return names, nil
}

// readNames reads new and cur: the relative file name of each key.
func (d *Dir) readNames() (map[string]string, error) {
	names := make(map[string]string)
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(d.path, sub))
		if err != nil {
			return nil, fmt.Errorf("maildir: list %q: %w", filepath.Join(d.path, sub), err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || e.IsDir() {
				continue
			}
			key, _, _ := strings.Cut(name, ":")
			// A key present in both (a crash between link and unlink of another tool)
			// resolves to cur, the later state.
			names[key] = sub + "/" + name
		}
	}
	return names, nil
}

func (d *Dir) remember(key, rel string) {
	d.mu.Lock()
	if d.names != nil {
		d.names[key] = filepath.ToSlash(rel)
	}
	d.mu.Unlock()
}

func (d *Dir) forget(key string) {
	d.mu.Lock()
	if d.names != nil {
		delete(d.names, key)
	}
	d.mu.Unlock()
}

// find returns the relative file name of key, from the index when it has it, else after
// a scan. rescan forces the scan (after a file was not where the index said).
func (d *Dir) find(key string, rescan bool) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if !rescan {
		d.mu.Lock()
		rel, ok := d.names[key]
		d.mu.Unlock()
		if ok {
			return rel, nil
		}
	}
	names, err := d.scan()
	if err != nil {
		return "", err
	}
	rel, ok := names[key]
	if !ok {
		return "", fmt.Errorf("%w: %q in %q", ErrNotFound, key, d.path)
	}
	return rel, nil
}

// retry runs op on the file of key; if the file vanished (another process renamed it), it
// finds the key again and retries once.
func (d *Dir) retry(key string, op func(rel string) error) error {
	rel, err := d.find(key, false)
	if err != nil {
		return err
	}
	err = op(rel)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	rel, err = d.find(key, true)
	if err != nil {
		return err
	}
	return op(rel)
}

// Lookup returns the message with the given key, or an error wrapping ErrNotFound.
func (d *Dir) Lookup(key string) (Message, error) {
	var m Message
	err := d.retry(key, func(rel string) error {
		if _, err := os.Lstat(filepath.Join(d.path, rel)); err != nil {
			return err
		}
		m = messageFor(d.path, rel)
		return nil
	})
	if err != nil {
		return Message{}, fmt.Errorf("maildir: lookup %q: %w", key, err)
	}
	return m, nil
}

// OpenMessage opens the message with the given key for reading. The caller closes it.
func (d *Dir) OpenMessage(key string) (*os.File, error) {
	var f *os.File
	err := d.retry(key, func(rel string) error {
		var err error
		f, err = os.Open(filepath.Join(d.path, rel))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("maildir: open %q: %w", key, err)
	}
	return f, nil
}

// ReadMessage returns the content of the message with the given key.
func (d *Dir) ReadMessage(key string) ([]byte, error) {
	var b []byte
	err := d.retry(key, func(rel string) error {
		var err error
		b, err = os.ReadFile(filepath.Join(d.path, rel))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("maildir: read %q: %w", key, err)
	}
	return b, nil
}

// SetFlags replaces the standard flags of the message with the given key by renaming its
// file into cur with a ":2," suffix; letters that are not standard flags are kept. A
// message in new moves to cur. Setting the flags it already has in cur renames nothing.
func (d *Dir) SetFlags(key string, flags Flags) (Message, error) {
	var m Message
	err := d.retry(key, func(rel string) error {
		cur := messageFor(d.path, rel)
		newRel := "cur/" + key + ":2," + mergeLetters(flags.String(), cur.Other)
		if newRel == rel {
			m = cur
			return nil
		}
		if err := rename(filepath.Join(d.path, rel), filepath.Join(d.path, newRel)); err != nil {
			return err
		}
		if err := d.syncDirAfterRename("cur"); err != nil {
			return err
		}
		if cur.New {
			if err := d.syncDirAfterRename("new"); err != nil {
				return err
			}
		}
		d.remember(key, newRel)
		m = messageFor(d.path, newRel)
		return nil
	})
	if err != nil {
		return Message{}, fmt.Errorf("maildir: set flags of %q: %w", key, err)
	}
	return m, nil
}

// SetFlagsFrom is SetFlags for a caller that knows the message's file as it left it: in
// cur, carrying the standard flags was and no other letters. It renames that file without
// reading the directory (a process's first lookup in a Maildir of 50,000 messages reads
// them all); a file that is not there (renamed by another program) is found as SetFlags
// finds it.
func (d *Dir) SetFlagsFrom(key string, was, flags Flags) (Message, error) {
	if err := checkKey(key); err != nil {
		return Message{}, err
	}
	d.mu.Lock()
	_, indexed := d.names[key]
	d.mu.Unlock()
	if !indexed {
		rel := "cur/" + key + ":2," + was.String()
		newRel := "cur/" + key + ":2," + flags.String()
		err := rename(filepath.Join(d.path, rel), filepath.Join(d.path, newRel))
		if err == nil && rel != newRel {
			err = d.syncDirAfterRename("cur")
		}
		if err == nil {
			d.remember(key, newRel)
			return messageFor(d.path, newRel), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Message{}, fmt.Errorf("maildir: set flags of %q: %w", key, err)
		}
	}
	return d.SetFlags(key, flags)
}

// Discard deletes a message as Deliver or Add returned it (a write given up), by its path,
// without a lookup. One already gone is not an error.
func (d *Dir) Discard(m Message) error {
	d.forget(m.Key)
	if err := os.Remove(m.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: remove %q: %w", m.Key, err)
	}
	return nil
}

// Remove deletes the message with the given key. Removing a message that is already gone
// returns an error wrapping ErrNotFound.
func (d *Dir) Remove(key string) error {
	err := d.retry(key, func(rel string) error {
		if err := os.Remove(filepath.Join(d.path, rel)); err != nil {
			return err
		}
		d.forget(key)
		return d.syncDirAfterRename(filepath.Dir(rel))
	})
	if err != nil {
		return fmt.Errorf("maildir: remove %q: %w", key, err)
	}
	return nil
}

// CleanTmp removes files in tmp last modified more than olderThan ago and returns how many
// it removed. The specification suggests 36 hours for a Maildir shared with other
// programs; an owner that knows no delivery is running (on open, after a crash) may pass 0.
func (d *Dir) CleanTmp(olderThan time.Duration) (int, error) {
	dir := filepath.Join(d.path, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("maildir: list %q: %w", dir, err)
	}
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("maildir: stat %q: %w", filepath.Join(dir, e.Name()), err)
		}
		if olderThan > 0 && !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("maildir: remove %q: %w", filepath.Join(dir, e.Name()), err)
		}
		n++
	}
	return n, nil
}

// messageFor builds the Message for a file name relative to the Maildir.
func messageFor(root, rel string) Message {
	rel = filepath.ToSlash(rel)
	sub, name, _ := strings.Cut(rel, "/")
	key, info, _ := strings.Cut(name, ":")
	m := Message{Key: key, New: sub == "new", Path: filepath.Join(root, sub, name)}
	if letters, ok := strings.CutPrefix(info, "2,"); ok {
		m.Flags, m.Other = ParseFlags(letters)
	}
	return m
}

// mergeLetters returns the letters of a and b in ASCII order.
func mergeLetters(a, b string) string {
	if b == "" {
		return a
	}
	s := []byte(a + b)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return string(s)
}

func checkKey(key string) error {
	if key == "" || strings.ContainsAny(key, "/:\x00") || strings.HasPrefix(key, ".") {
		return fmt.Errorf("maildir: invalid key %q", key)
	}
	return nil
}
