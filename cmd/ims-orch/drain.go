package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/api"
)

var drainOpts struct {
	undo bool
}

var drainCmd = &cobra.Command{
	Use:   "drain DC [--undo]",
	Short: "Drain a datacenter (no new flows, instances move out), or end the drain with --undo",
	Example: `  ims-orch drain tokyo
  ims-orch drain tokyo --undo`,
	Args: func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(1)(cmd, args); err != nil {
			return usageErr(fmt.Errorf("drain: give one datacenter: %w", err))
		}
		return nil
	},
	RunE: func(cmd *cobra.Command, args []string) error {
		dc := args[0]
		c, err := newClient()
		if err != nil {
			return err
		}
		call, what := c.Drain, "drain"
		if drainOpts.undo {
			call, what = c.Undrain, "undrain"
		}
		op, err := call(cmd.Context(), dc)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), op, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "operation %s: %s %s %s%s\n", op.ID, op.State, what, dc, opError(op))
			return err
		})
	},
}

// opError is ": <error>" for a failed operation.
func opError(op api.Operation) string {
	if op.Error == "" {
		return ""
	}
	return ": " + op.Error
}

func init() {
	addClientFlags(drainCmd)
	drainCmd.Flags().BoolVar(&drainOpts.undo, "undo", false, "end the drain: the datacenter takes paths and instances again")
	rootCmd.AddCommand(drainCmd)
}
