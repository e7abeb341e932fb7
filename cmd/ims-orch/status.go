package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/api"
)

var statusCmd = &cobra.Command{
	Use:   "status",
	Short: "Show whether the daemon is ready, the leader, the interval and the instances per DC",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		ready := "ready"
		if err := c.Ready(ctx); err != nil {
			ready = "not ready: " + err.Error()
		}
		st, err := c.State(ctx)
		if err != nil {
			return err
		}
		all, err := c.AllDecisions(ctx, api.DecisionQuery{Since: max(0, st.Interval-1)})
		if err != nil {
			return err
		}
		decs := all.Decisions
		v := struct {
			Ready     string         `json:"ready"`
			State     api.State      `json:"state"`
			Decisions []api.Decision `json:"recentDecisions"`
		}{ready, st, decs}
		return emit(cmd.OutOrStdout(), v, func(w io.Writer) error {
			fmt.Fprintln(w, ready)
			if err := stateSummary(w, st); err != nil {
				return err
			}
			fmt.Fprintf(w, "%d decisions in the last round\n", len(decs))
			return nil
		})
	},
}

func init() {
	addClientFlags(statusCmd)
	rootCmd.AddCommand(statusCmd)
}
