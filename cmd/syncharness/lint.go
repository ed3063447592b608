package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/scenarios"
	"github.com/syncharness/syncharness/scenarios/catalog"
)

func newLintCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "lint [FILE|DIR]...",
		Short: "Check scenario files without running them",
		Long: `Check scenario files (or every *.scn file under the given directories) without
running them: syntax, unknown devices, mailboxes and labels, flags that are not flags,
setup order, attachments, and the limits of the language (steps with repeat blocks
expanded, size=, nesting, devices, mailbox names; counted, never expanded). Without
arguments, check the built-in catalogue.

Every error of every file is printed to standard error, one a line, as
FILE:LINE: COMMAND: what is wrong; a file that is not text is one line,
FILE: not a text file (binary data at byte N). See "syncharness help scenarios" for the
language and its limits.

Exit status: 0 when every file is clean, 2 when any has an error.`,
		Example: `  # one file
  syncharness lint move_typo.scn

  # every scenario under a directory, as in CI
  syncharness lint scenarios/catalog/ my-scenarios/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLint(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, verbose)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every file checked and a summary")
	return cmd
}

func init() { rootCmd.AddCommand(newLintCmd()) }

// runLint checks every scenario named by args (the built-in catalogue without args),
// printing errors to errOut.
func runLint(out, errOut io.Writer, args []string, verbose bool) error {
	var files []scenarioFile
	var problems []error
	if len(args) == 0 {
		names, err := fs.Glob(catalog.FS, "*.scn")
		if err != nil {
			return fmt.Errorf("lint: list the built-in catalogue: %w", err)
		}
		for _, n := range names {
			files = append(files, scenarioFile{name: n, fsys: catalog.FS})
		}
	} else {
		files, problems = collectScenarioFiles(args)
	}
	for _, p := range problems {
		fmt.Fprintln(errOut, p)
	}
	bad, count := len(problems), 0
	for _, f := range files {
		data, err := f.read()
		if err != nil {
			fmt.Fprintln(errOut, err)
			bad++
			continue
		}
		_, err = scenarios.Parse(f.name, data)
		var list scenarios.ErrorList
		switch {
		case err == nil:
			if verbose {
				fmt.Fprintf(out, "ok   %s\n", f.name)
			}
			continue
		case errors.As(err, &list):
			count += len(list)
		default:
			count++
		}
		bad++
		fmt.Fprintln(errOut, err)
		if verbose {
			fmt.Fprintf(out, "FAIL %s\n", f.name)
		}
	}
	if verbose {
		fmt.Fprintf(out, "%d files, %d with errors\n", len(files), bad)
	}
	if bad > 0 {
		return usagef("lint: %s in %d of %d files", plural(count+len(problems), "error"), bad, len(files)+len(problems))
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// A scenarioFile is a scenario file on disk or in an embedded file system.
type scenarioFile struct {
	name string
	fsys fs.FS // nil: name is a path on disk
}

func (f scenarioFile) read() ([]byte, error) {
	if f.fsys != nil {
		return fs.ReadFile(f.fsys, f.name)
	}
	return os.ReadFile(f.name)
}

// collectScenarioFiles expands args: files as they are, directories to every *.scn file
// below them, sorted. Paths that cannot be read come back as problems.
func collectScenarioFiles(args []string) ([]scenarioFile, []error) {
	var files []scenarioFile
	var problems []error
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !info.IsDir() {
			files = append(files, scenarioFile{name: arg})
			continue
		}
		var found []string
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".scn") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if len(found) == 0 {
			problems = append(problems, fmt.Errorf("%s: no *.scn files", arg))
		}
		sort.Strings(found)
		for _, p := range found {
			files = append(files, scenarioFile{name: p})
		}
	}
	return files, problems
}
