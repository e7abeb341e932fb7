package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/placement/scenario"
	"github.com/ims-orch/ims-orch/solver/exactround"
	"github.com/spf13/cobra"
)

// planFlags are the flags of `ims-orch plan`.
type planFlags struct {
	file   string
	output string
	exact  bool
	// exactRound: the whole-round integer program solved by CBC.
	exactRound bool
	improve    int
}

var planOpts planFlags

var planCmd = &cobra.Command{
	Use:   "plan -f SCENARIO [--output table|json] [--exact | --exact-round] [--improve-budget N]",
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
  cat scenario.json | ims-orch plan -f - --exact
  ims-orch plan -f testdata/scenarios/paper-4dc.yaml --improve-budget 2000
  ims-orch plan -f testdata/scenarios/paper-4dc.yaml --exact-round   # needs cbc (scripts/ci-cbc.sh)`,
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
	f.BoolVar(&planOpts.exactRound, "exact-round", false, "plan the whole round exactly: its integer program solved by the CBC solver (coinor-cbc; small scenarios only)")
	f.IntVar(&planOpts.improve, "improve-budget", 0, "run the joint improvement phase after Alg. 1 with this budget in pair searches (0: off)")
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
	if o.improve < 0 {
		return usageErr(fmt.Errorf("--improve-budget %d: must not be negative", o.improve))
	}
	if o.exactRound && (o.exact || o.improve > 0) {
		return usageErr(fmt.Errorf("--exact-round plans the whole round exactly: it takes neither --exact nor --improve-budget"))
	}
	opt := placement.Options{Exact: o.exact, Improve: placement.ImproveOptions{Budget: o.improve}}
	var dec *placement.Decision
	if o.exactRound {
		dec, err = planExactRound(snap)
	} else {
		dec, err = placement.Plan(snap, opt)
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return &exitError{code: ee.code, err: fmt.Errorf("plan %s: %w", o.file, ee.err)}
		}
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

// planExactRound solves the round's integer program with CBC. A size the
// program refuses is the input's fault (exit 2); a missing solver or one that
// stops before proving optimality is not.
func planExactRound(snap *placement.Snapshot) (*placement.Decision, error) {
	if _, err := placement.NewRoundIP(snap, placement.Options{}); err != nil {
		return nil, err
	}
	cbc, err := exactround.Find()
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	res, err := exactround.Plan(context.Background(), snap, placement.Options{}, cbc)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	if !res.Optimal {
		return nil, &exitError{code: 1, err: fmt.Errorf("exact round: cbc stopped on its time limit before proving optimality (objective %g, bound %g)", res.Objective, res.Bound)}
	}
	return res.Decision, nil
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
