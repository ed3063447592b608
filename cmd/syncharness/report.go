package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/reports"
)

// reportCmd is "syncharness report"; subcommands (such as merge) add themselves to it.
var reportCmd = newReportCmd()

func newReportCmd() *cobra.Command {
	var junit, jsonOut, html string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Print a saved report directory again, or convert it",
		Long: `Read the run.json of a report directory written by "syncharness run --report-dir DIR"
and print its summary, with every failure in full. --junit and --json write it again in
those formats (for example to feed a CI system after the fact), --html renders the
self-contained HTML report again.

Exit status: the status the run had, so that a CI step can rely on it: 0 when every
scenario passed (or was skipped), 1 when one failed or errored, 2 when the run was
interrupted or the directory cannot be read, 3 when the only failures were not confirmed
by a second run (syncharness explore).`,
		Example: `  syncharness run --report-dir report/
  syncharness report report/
  syncharness report report/ --junit junit.xml
  syncharness report report/ --html failure.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := reports.ReadDir(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			out := cmd.OutOrStdout()
			color := false
			if f, ok := out.(*os.File); ok {
				color = reports.UseColor(f)
			}
			if err := reports.WriteText(out, run, reports.TextOptions{Color: color, Verbose: verbose}); err != nil {
				return err
			}
			if err := writeOutputs(run, nil, runFlags{json: jsonOut, junit: junit, html: html}); err != nil {
				return err
			}
			return runStatus(run)
		},
	}
	cmd.Flags().StringVar(&junit, "junit", "", "also write the results as JUnit XML to this file")
	cmd.Flags().StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	cmd.Flags().StringVar(&html, "html", "", "also write the self-contained HTML report to this file")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every scenario, not only failures, with its final state (each lane's mailboxes, messages and flags, and what the checker expects)")
	return cmd
}

func init() { rootCmd.AddCommand(reportCmd) }

// runStatus is the error that makes syncharness exit with the status run had (see
// reports.Run.ExitStatus); nil when it passed.
func runStatus(run *reports.Run) error {
	switch code := run.ExitStatus(); code {
	case reports.ExitOK:
		return nil
	case reports.ExitUsage:
		return usagef("the run was interrupted")
	default:
		return failedError{code: code}
	}
}
