package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/api"
)

var scaleOpts struct {
	dc      string
	out, in int
}

var scaleCmd = &cobra.Command{
	Use:     "scale VNF --dc DC (--out N | --in N)",
	Short:   "Scale a VNF in a datacenter out or in by N instances (a manual operation)",
	Example: `  ims-orch scale firewall --dc tokyo --out 2`,
	Args:    cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		o := scaleOpts
		if o.dc == "" {
			return usageErr(errors.New("--dc: required"))
		}
		if (o.out > 0) == (o.in > 0) {
			return usageErr(errors.New("give exactly one of --out N or --in N with N ≥ 1"))
		}
		req := api.ScaleRequest{DC: o.dc, VNF: args[0], Type: api.ScaleOut, NumberOfSteps: o.out}
		if o.in > 0 {
			req.Type, req.NumberOfSteps = api.ScaleIn, o.in
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		op, err := c.Scale(cmd.Context(), req)
		if err != nil {
			return err
		}
		return emit(cmd.OutOrStdout(), op, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "operation %s: %s %s %s in %s by %d\n", op.ID, op.State, req.Type, req.VNF, req.DC, req.NumberOfSteps)
			return err
		})
	},
}

func init() {
	addClientFlags(scaleCmd)
	f := scaleCmd.Flags()
	f.StringVar(&scaleOpts.dc, "dc", "", "datacenter")
	f.IntVar(&scaleOpts.out, "out", 0, "scale out by N instances")
	f.IntVar(&scaleOpts.in, "in", 0, "scale in by N instances")
	rootCmd.AddCommand(scaleCmd)
}
