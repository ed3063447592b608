package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/scenarios"
)

type fmtFlags struct {
	write bool
	list  bool
}

func newFmtCmd() *cobra.Command {
	var f fmtFlags
	cmd := &cobra.Command{
		Use:   "fmt [-w] [-l] FILE|DIR...",
		Short: "Print scenario files in canonical form, or rewrite them",
		Long: `Print scenario files (or every *.scn file under the given directories) in canonical
form: one step a line, blocks indented by two spaces, options after the arguments in a
fixed order, flags spelled canonically (\seen becomes \Seen), at most one blank line in a
row. Comments, trailing comments, groups of lines separated by blank lines and attached
files are kept. Formatting is idempotent.

With -w each file is rewritten in place, and only when its canonical form differs. With
-l only the names of files whose canonical form differs are printed. A file with a syntax
error, or that is not text, is reported and left alone; fmt does not check devices, mailboxes or labels (that is
"syncharness lint").

Exit status: 0 on success, 2 when a file could not be read, parsed or written.`,
		Example: `  # show the canonical form
  syncharness fmt move_concurrent_read.scn

  # rewrite every scenario under a directory
  syncharness fmt -w scenarios/catalog/

  # list files that are not formatted (for CI)
  syncharness fmt -l scenarios/catalog/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFmt(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, f)
		},
	}
	cmd.Flags().BoolVarP(&f.write, "write", "w", false, "rewrite files in place when their canonical form differs")
	cmd.Flags().BoolVarP(&f.list, "list", "l", false, "print only the names of files whose canonical form differs")
	return cmd
}

func init() { rootCmd.AddCommand(newFmtCmd()) }

// runFmt formats every scenario named by args.
func runFmt(out, errOut io.Writer, args []string, f fmtFlags) error {
	files, problems := collectScenarioFiles(args)
	for _, p := range problems {
		fmt.Fprintln(errOut, p)
	}
	bad := len(problems)
	for _, file := range files {
		if err := fmtFile(out, file.name, f); err != nil {
			fmt.Fprintln(errOut, err)
			bad++
		}
	}
	if bad > 0 {
		return usagef("fmt: %d of %d files could not be formatted", bad, len(files)+len(problems))
	}
	return nil
}

func fmtFile(out io.Writer, name string, f fmtFlags) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	s, err := scenarios.ParseSyntax(name, data)
	if err != nil {
		return err
	}
	formatted := scenarios.Format(s)
	changed := !bytes.Equal(formatted, data)
	if f.list && changed {
		fmt.Fprintln(out, name)
	}
	if f.write && changed {
		info, err := os.Stat(name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(name, formatted, info.Mode().Perm()); err != nil {
			return fmt.Errorf("fmt: rewrite %s: %w", name, err)
		}
	}
	if !f.write && !f.list {
		if _, err := out.Write(formatted); err != nil {
			return fmt.Errorf("fmt: %w", err)
		}
	}
	return nil
}
