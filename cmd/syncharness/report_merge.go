package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/reports"
)

func newReportMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge A.json B.json...",
		Short: "Combine the JSON results of several runs or explorations into one",
		Long: `Read JSON results written by "syncharness run --json" or "syncharness explore --json"
(for example one per CI shard) and write one JSON result with every scenario of every input,
in the order given, to -o or to standard output. The merged run starts at the earliest start
and spans to the latest end; fields the inputs disagree on list every value.

Exit status: 0 when no merged scenario failed, 1 when one did, 2 for an unreadable input.`,
		Example: `  syncharness report merge shard-*.json -o all.json
  syncharness report merge a.json b.json | jq '.scenarios | length'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var runs []*reports.Run
			for _, path := range args {
				file, err := os.Open(path)
				if err != nil {
					return usagef("%v", err)
				}
				run, err := reports.ReadJSON(file)
				file.Close()
				if err != nil {
					return usagef("%s: %v", path, err)
				}
				runs = append(runs, run)
			}
			merged := reports.MergeRuns(runs...)
			w := cmd.OutOrStdout()
			if out != "" {
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return usagef("%v", err)
				}
				file, err := os.Create(out)
				if err != nil {
					return usagef("%v", err)
				}
				if err := reports.WriteJSON(file, merged); err != nil {
					file.Close()
					return fmt.Errorf("write %s: %w", out, err)
				}
				if err := file.Close(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "merged %d result(s), %d scenario(s) into %s\n", len(runs), len(merged.Scenarios), out)
			} else if err := reports.WriteJSON(w, merged); err != nil {
				return err
			}
			if !merged.OK() {
				return failedError{}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the merged JSON to this file instead of standard output")
	return cmd
}

func init() { reportCmd.AddCommand(newReportMergeCmd()) }
