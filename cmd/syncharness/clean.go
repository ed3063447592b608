package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/harness"
)

func newCleanCmd() *cobra.Command {
	var f remoteFlags
	var olderThan time.Duration
	var force, dryRun bool
	cmd := &cobra.Command{
		Use:   "clean --server URL",
		Short: "Remove the run folders that killed runs left on a server, and only those",
		Long: `Remove the folders that runs against a real server left behind when they were killed
before they could clean up. A top-level folder is removed, with everything below it, only
when all of these hold:

  - its name is syncharness-RUNID, RUNID of letters, digits, '-' and '_';
  - it holds the run marker a run writes when it creates its folder: a folder
    syncharness-RUNID/` + harness.MarkerFolder + ` with a message whose Message-ID is
    <run-marker.RUNID@syncharness.invalid>;
  - the marker's heartbeat, which a run refreshes every minute while it works, is older
    than --older-than (default ` + harness.DefaultCleanAge.String() + `), so the run is not in progress; --force
    skips this test (a run in progress then fails);
  - every message in it and in every folder below it was made by syncharness: its
    Message-ID is <LABEL.RUN@syncharness.invalid>, or it has none and its From is at
    syncharness.invalid.

Every other syncharness-* folder is kept, and clean says why. Nothing else on the account
is read or touched. Folders of versions that wrote no marker are kept: remove them by
hand. --dry-run removes nothing and prints what would be removed and why each other
folder is kept.

The password comes from SYNCHARNESS_PASSWORD or --password-file, and is never sent in
clear to a server that is not on this machine (see run --help: --allow-plaintext).`,
		Example: `  SYNCHARNESS_PASSWORD=secret syncharness clean --server imaps://alice@mail.example.org --dry-run
  SYNCHARNESS_PASSWORD=secret syncharness clean --server 'imap://alice@mail.example.org?starttls' --older-than 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.server == "" {
				return usagef("clean: --server is required")
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			decisions, err := harness.CleanRemote(cmd.Context(), harness.CleanOptions{Remote: opts,
				OlderThan: olderThan, Force: force, DryRun: dryRun})
			out := cmd.OutOrStdout()
			removed := 0
			for _, d := range decisions {
				verb := "kept"
				if d.Remove {
					removed++
					verb = "removed"
					if dryRun {
						verb = "would remove"
					}
				}
				fmt.Fprintf(out, "%s %s: %s\n", verb, d.Folder, d.Why)
			}
			if err != nil {
				return usagef("clean: %v", err)
			}
			if removed == 0 {
				fmt.Fprintln(out, "nothing to remove")
			}
			return nil
		},
	}
	f.register(cmd, false)
	fl := cmd.Flags()
	durationVar(fl, &olderThan, "older-than", harness.DefaultCleanAge, time.Second, "remove a run folder only when its heartbeat is older than this")
	fl.BoolVar(&force, "force", false, "remove run folders whatever the age of their heartbeat (a run in progress fails)")
	fl.BoolVar(&dryRun, "dry-run", false, "remove nothing: print what would be removed and why each other folder is kept")
	return cmd
}

func init() { rootCmd.AddCommand(newCleanCmd()) }
