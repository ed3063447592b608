package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The files of a report directory.
const (
	RunFile      = "run.json"     // the run (WriteJSON); ReadDir reads it back
	JUnitFile    = "junit.xml"    // the run as JUnit XML (WriteJUnit)
	SummaryFile  = "summary.txt"  // the run as text without colour (WriteText)
	HTMLFile     = "report.html"  // the run as one self-contained page (WriteHTML)
	FailureFile  = "failure.txt"  // in a scenario directory: the scenario in full, with steps
	ScenarioFile = "scenario.scn" // in a scenario directory: the scenario source, when known
)

// Artifacts are the files the runner keeps for failed scenarios: per-device transcripts,
// the history as JSON lines, replicas.
type Artifacts struct {
	// Files maps a scenario name to its files: a relative, slash-separated file name
	// ("transcript-phone.txt", "replicas/phone.json") to the content.
	Files map[string]map[string][]byte
}

// WriteDir writes a report directory:
//
//	DIR/run.json                  the run, for "syncharness report DIR" and other tools
//	DIR/junit.xml                 for CI systems
//	DIR/summary.txt               what the terminal showed, without colour
//	DIR/report.html               the run as one self-contained page, for a browser
//	DIR/NAME/failure.txt          per failed or errored scenario: everything, steps included
//	DIR/NAME/scenario.scn         its source, when the run has it
//	DIR/NAME/<artifact files>     a.Files[scenario name]
//
// NAME is the scenario name with every character outside [A-Za-z0-9._-] replaced by "_",
// made unique with a "-2", "-3"… suffix. Artifacts of passed or skipped scenarios are not
// written; artifacts for a name that is not in the run, or whose file name is not a local
// relative path or is failure.txt or scenario.scn, are an error.
//
// DIR is created if needed. If it already holds files, it must be an earlier report (hold a
// run.json): its top-level report files are replaced and its scenario directories (those
// holding a failure.txt) are removed first, so no result of an earlier run is left behind.
// Anything else in DIR is kept. A non-empty DIR without run.json is refused.
func WriteDir(dir string, r *Run, a Artifacts) error {
	if r == nil {
		return errors.New("reports: write dir: nil run")
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}
	for name := range a.Files {
		if !slices.ContainsFunc(r.Scenarios, func(s *Scenario) bool { return s.Name == name }) {
			return fmt.Errorf("reports: write dir: artifacts for %q, which is not a scenario of the run", name)
		}
		for file := range a.Files[name] {
			if err := checkArtifactName(file); err != nil {
				return fmt.Errorf("reports: write dir: scenario %q: %w", name, err)
			}
		}
	}
	if err := prepareDir(dir); err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}

	var runJSON, junit, summary, page bytes.Buffer
	if err := WriteJSON(&runJSON, r); err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}
	if err := WriteJUnit(&junit, r); err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}
	if err := WriteText(&summary, r, TextOptions{}); err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}
	if err := WriteHTML(&page, r); err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}
	for file, b := range map[string][]byte{RunFile: runJSON.Bytes(), JUnitFile: junit.Bytes(), SummaryFile: summary.Bytes(), HTMLFile: page.Bytes()} {
		if err := writeFile(filepath.Join(dir, file), b); err != nil {
			return fmt.Errorf("reports: write dir: %w", err)
		}
	}

	// Scenario directories never take the name of anything already in dir.
	used := map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reports: write dir: %w", err)
	}
	for _, e := range entries {
		used[strings.ToLower(e.Name())] = true
	}
	for _, s := range r.Scenarios {
		if s.Status != Failed && s.Status != Errored {
			continue
		}
		sub := uniqueDirName(safeName(scenarioName(s)), used)
		if err := writeScenarioDir(filepath.Join(dir, sub), s, a.Files[s.Name]); err != nil {
			return fmt.Errorf("reports: write dir: scenario %q: %w", s.Name, err)
		}
	}
	return nil
}

// ReadDir reads the run of a report directory written by WriteDir.
func ReadDir(dir string) (*Run, error) {
	f, err := os.Open(filepath.Join(dir, RunFile))
	if err != nil {
		return nil, fmt.Errorf("reports: read dir: %w", err)
	}
	defer f.Close()
	r, err := ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("reports: read dir %s: %w", dir, err)
	}
	return r, nil
}

// prepareDir creates dir, or checks that it is empty or an earlier report and removes that
// report's scenario directories.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == RunFile && e.Type().IsRegular() }) {
		return fmt.Errorf("%s is not empty and holds no %s: not a report directory, refusing to write into it", dir, RunFile)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if _, err := os.Lstat(filepath.Join(sub, FailureFile)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if err := os.RemoveAll(sub); err != nil {
			return fmt.Errorf("remove the earlier report's %s: %w", sub, err)
		}
	}
	return nil
}

func writeScenarioDir(dir string, s *Scenario, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var text bytes.Buffer
	if err := WriteScenarioText(&text, s, TextOptions{Verbose: true}); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, FailureFile), text.Bytes()); err != nil {
		return err
	}
	if s.Source != "" {
		if err := writeFile(filepath.Join(dir, ScenarioFile), []byte(s.Source)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFile(p, files[name]); err != nil {
			return err
		}
	}
	return nil
}

// checkArtifactName accepts local relative slash-separated paths that do not collide with
// the files WriteDir writes itself.
func checkArtifactName(name string) error {
	if name == "" || strings.Contains(name, `\`) || !filepath.IsLocal(filepath.FromSlash(name)) {
		return fmt.Errorf("artifact name %q is not a relative path inside the scenario directory", name)
	}
	if clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name))); clean == FailureFile || clean == ScenarioFile {
		return fmt.Errorf("artifact name %q is reserved for the report itself", name)
	}
	return nil
}

// safeName maps a scenario name to a directory name.
func safeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if strings.Trim(s, ".") == "" {
		s = "scenario" + s
	}
	return s
}

// uniqueDirName returns name, or name-2, name-3… whichever is not used yet, and marks it
// used. Names are compared case-insensitively, for case-insensitive file systems.
func uniqueDirName(name string, used map[string]bool) string {
	candidate := name
	for i := 2; used[strings.ToLower(candidate)]; i++ {
		candidate = fmt.Sprintf("%s-%d", name, i)
	}
	used[strings.ToLower(candidate)] = true
	return candidate
}

func writeFile(path string, b []byte) error {
	return os.WriteFile(path, b, 0o644)
}
