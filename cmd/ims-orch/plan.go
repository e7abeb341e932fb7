package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/placement/scenario"
	"github.com/spf13/cobra"
)

// planFlags are the flags of `ims-orch plan`.
type planFlags struct {
	file   string
	output string
	exact  bool
}

var planOpts planFlags

var planCmd = &cobra.Command{
	Use:   "plan -f SCENARIO [--output table|json] [--exact]",
	Short: "Run one proactive scaling round offline over a scenario file",
	Long: `plan reads a scenario (YAML or JSON: datacenters, delays, delay bound, the
CP and DP chains with their capacities, current working and buffered
instances, current paths, predicted workload per entry→exit pair; see
docs/scenario.md) and runs one proactive round of ScalIMS (paper 4.2 step 3,
Alg. 1 and Alg. 2) on it. It prints, per pair, the service-chain path, its
delay and how it was found, and per datacenter per VNF the working, created,
reused and buffered instance counts.

The run is pure and offline: no controller, cloud or clock is involved, and
the same scenario always gives the same output.

Exit codes: 0 success, 2 bad scenario or flags (the message names the field
and the reason), 1 anything else.`,
	Example: `  ims-orch plan -f testdata/scenarios/paper-4dc.yaml
  ims-orch plan -f testdata/scenarios/paper-8dc.yaml --output json
  cat scenario.json | ims-orch plan -f - --exact`,
	Args: func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErr(fmt.Errorf("plan takes no arguments (got %q); give the scenario with -f", args))
		}
		return nil
	},
	RunE: func(cmd *cobra.Command, _ []string) error {
		return runPlan(cmd.InOrStdin(), cmd.OutOrStdout(), planOpts)
	},
}

func init() {
	f := planCmd.Flags()
	f.StringVarP(&planOpts.file, "file", "f", "", "scenario file (YAML or JSON), - for stdin")
	f.StringVarP(&planOpts.output, "output", "o", "table", "output format: table or json")
	f.BoolVar(&planOpts.exact, "exact", false, "use the exhaustive reference solver instead of Alg. 2 (small scenarios only)")
	planCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	rootCmd.AddCommand(planCmd)
}

// runPlan is the whole command: read, parse, plan, print.
func runPlan(stdin io.Reader, stdout io.Writer, o planFlags) error {
	if o.file == "" {
		return usageErr(fmt.Errorf("plan needs a scenario: -f FILE (or -f - for stdin)"))
	}
	if o.output != "table" && o.output != "json" {
		return usageErr(fmt.Errorf("--output %q: want table or json", o.output))
	}
	data, err := readScenario(stdin, o.file)
	if err != nil {
		return usageErr(err)
	}
	sc, snap, err := scenario.Load(data)
	if err != nil {
		return usageErr(fmt.Errorf("scenario %s: %w", o.file, err))
	}
	opt := placement.Options{Exact: o.exact}
	dec, err := placement.Plan(snap, opt)
	if err != nil {
		// Load already ran Validate, so this is a planner limit (the exact
		// solver refusing a large scenario): the input's fault, exit 2.
		return usageErr(fmt.Errorf("plan %s: %w", o.file, err))
	}
	out, err := scenario.NewPlanOutput(sc, snap, dec, opt)
	if err != nil {
		return fmt.Errorf("plan output: %w", err)
	}
	if o.output == "json" {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	return out.WriteTable(stdout)
}

func readScenario(stdin io.Reader, file string) ([]byte, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, scenario.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", file, err)
	}
	if len(data) > scenario.MaxSize {
		return nil, fmt.Errorf("scenario %s: larger than %d bytes", file, scenario.MaxSize)
	}
	return data, nil
}
