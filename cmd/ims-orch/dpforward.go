package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/drivers/netns/dpfwd"
)

// dp-forward is the process of a DP VNF instance that serve --driver local
// starts inside the instance's network namespace (drivers/netns/dpfwd).
func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:                "dp-forward",
		Short:              "Forward frames of a DP instance (started by serve --driver local)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := dpfwd.Main(args); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	})
}
