package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/harness"
)

func newCleanCmd() *cobra.Command {
	var f remoteFlags
	cmd := &cobra.Command{
		Use:   "clean --server URL",
		Short: "Remove the syncharness-* folders that killed runs left on a server",
		Long: `Remove every top-level folder named syncharness-* (and everything below it) from
the account: the folders of earlier runs against a real server that were killed before
they could clean up. Nothing else on the account is touched. The password comes from
SYNCHARNESS_PASSWORD or --password-file.`,
		Example: `  SYNCHARNESS_PASSWORD=secret syncharness clean --server imap://alice@mail.example.org:143`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.server == "" {
				return usagef("clean: --server is required")
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			removed, err := harness.CleanRemote(cmd.Context(), opts)
			for _, name := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", name)
			}
			if err != nil {
				return usagef("clean: %v", err)
			}
			if len(removed) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to remove")
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func init() { rootCmd.AddCommand(newCleanCmd()) }
