package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ims-orch/ims-orch/api"
)

var scaleOpts struct {
	dc      string
	out, in int
	holdFor time.Duration
	release bool
}

var scaleCmd = &cobra.Command{
	Use:   "scale VNF --dc DC (--out N | --in N) [--hold-for D] | --release",
	Short: "Scale a VNF in a datacenter out or in by N instances (a manual operation)",
	Long: `Scale a VNF in a datacenter out or in by N instances. The new count sticks:
a scale-out sets a floor and a scale-in a ceiling that later proactive rounds
honour (and reactive scale-out stops at a ceiling) until --release, or until
--hold-for has passed.`,
	Example: `  ims-orch scale firewall --dc tokyo --out 2
  ims-orch scale firewall --dc tokyo --in 1 --hold-for 2h
  ims-orch scale firewall --dc tokyo --release`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		o := scaleOpts
		if o.dc == "" {
			return usageErr(errors.New("--dc: required"))
		}
		var req api.ScaleRequest
		switch {
		case o.release && (o.out > 0 || o.in > 0 || o.holdFor != 0):
			return usageErr(errors.New("--release: not with --out, --in or --hold-for"))
		case o.release:
			req = api.ScaleRequest{DC: o.dc, VNF: args[0], Type: api.ReleaseHold}
		case (o.out > 0) == (o.in > 0):
			return usageErr(errors.New("give exactly one of --out N or --in N with N ≥ 1, or --release"))
		case o.holdFor < 0:
			return usageErr(errors.New("--hold-for: must not be negative"))
		default:
			req = api.ScaleRequest{DC: o.dc, VNF: args[0], Type: api.ScaleOut, NumberOfSteps: o.out}
			if o.in > 0 {
				req.Type, req.NumberOfSteps = api.ScaleIn, o.in
			}
			if o.holdFor > 0 {
				req.HoldFor = o.holdFor.String()
			}
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
	f.DurationVar(&scaleOpts.holdFor, "hold-for", 0, "the new count holds (floor on --out, ceiling on --in) for this long; default until --release")
	f.BoolVar(&scaleOpts.release, "release", false, "end the VNF's manual hold; later rounds decide again")
	rootCmd.AddCommand(scaleCmd)
}
