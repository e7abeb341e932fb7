package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/simulation"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/predictor"
)

func init() { rootCmd.AddCommand(newSimulateCmd()) }

func newSimulateCmd() *cobra.Command {
	var (
		file, strat, out string
		seed             uint64
		changeInterval   time.Duration
		startDelay       time.Duration
		quiet            bool
		model            string
		targetUtil       float64
		dpTargetUtil     float64
		bufferSpare      int
		improveBudget    int
	)
	cmd := &cobra.Command{
		Use:   "simulate -f EXPERIMENT --out DIR [--strategy hybrid|proactive|reactive|all] [--seed N]",
		Short: "Run a paper experiment in virtual time on the simulated cloud with the real controllers",
		Long: `Runs an experiment file (testdata/experiments/*.yaml) on the simulator: the real
global and local controllers in virtual time, the simulated cloud and the traffic
engine. Writes seconds.csv, instances.csv, paths.csv, rtt-cdf.csv, sip-cdf.csv and
summary.csv to --out (one sub-directory per strategy with --strategy all, plus a
combined summary.csv) and PNG plots for the paper's Figs. 4–9. The same seed gives
byte-identical CSV files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr(fmt.Errorf("simulate: --file is required"))
			}
			if out == "" {
				return usageErr(fmt.Errorf("simulate: --out is required"))
			}
			exp, err := simulation.LoadExperiment(file)
			if err != nil {
				return usageErr(err)
			}
			if cmd.Flags().Changed("change-interval") {
				if exp, err = exp.WithChangeInterval(changeInterval); err != nil {
					return usageErr(fmt.Errorf("simulate: --change-interval: %w", err))
				}
			}
			if cmd.Flags().Changed("start-delay") {
				if exp, err = exp.WithStartDelay(startDelay); err != nil {
					return usageErr(fmt.Errorf("simulate: --start-delay: %w", err))
				}
			}
			if model != "" {
				if _, err := predictor.ParseSpec(model); err != nil {
					return usageErr(fmt.Errorf("simulate: --predictor: %w", err))
				}
				exp.Predictor = model
			}
			if cmd.Flags().Changed("target-util") {
				if err := fsm.CheckUtilization("--target-util", targetUtil, ""); err != nil {
					return usageErr(fmt.Errorf("simulate: %w", err))
				}
				exp.TargetUtilization = targetUtil
			}
			if cmd.Flags().Changed("dp-target-util") {
				if err := fsm.CheckUtilization("--dp-target-util", dpTargetUtil, "--target-util"); err != nil {
					return usageErr(fmt.Errorf("simulate: %w", err))
				}
				exp.DPTargetUtilization = dpTargetUtil
			}
			overrideSwitches(cmd.Flags(), exp)
			if cmd.Flags().Changed("buffer-spare") {
				if bufferSpare < 0 || bufferSpare > 100 {
					return usageErr(fmt.Errorf("simulate: --buffer-spare: must be in 0..100, got %d", bufferSpare))
				}
				exp.BufferSpare = bufferSpare
			}
			if err := overrideFractions(cmd.Flags(), exp); err != nil {
				return usageErr(fmt.Errorf("simulate: %w", err))
			}
			overrideDeclared(cmd.Flags(), exp)
			if cmd.Flags().Changed("improve-budget") {
				if improveBudget < 0 {
					return usageErr(fmt.Errorf("simulate: --improve-budget: must not be negative, got %d", improveBudget))
				}
				exp.ImproveBudget = improveBudget
			}
			var strategies []strategy.Strategy
			switch strat {
			case "all":
				strategies = []strategy.Strategy{strategy.Hybrid, strategy.Reactive, strategy.Proactive}
			case "":
				strategies = []strategy.Strategy{exp.Strategy}
			default:
				s, err := strategy.Parse(strat)
				if err != nil {
					return usageErr(fmt.Errorf("simulate: --strategy: %w (or all)", err))
				}
				strategies = []strategy.Strategy{s}
			}
			return simulate(cmd, exp, strategies, seed, out, quiet)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "experiment file (YAML)")
	cmd.Flags().Bool("no-declared-profile", false, "run without the experiment's declaredProfile (the rounds plan with the forecast alone, or with --profile-prior)")
	cmd.Flags().StringVar(&strat, "strategy", "", "hybrid, proactive, reactive or all (default: the experiment's)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed (traffic, controller message jitter)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output directory")
	cmd.Flags().DurationVar(&changeInterval, "change-interval", 0, "override the traffic change interval (6.2.1 sweep)")
	cmd.Flags().DurationVar(&startDelay, "start-delay", 0, "override the first → second DC start delay (6.2.2 sweep)")
	cmd.Flags().Float64Var(&targetUtil, "target-util", 0, "plan every VNF at this fraction of its capacity (policy targetUtilization, (0, 1])")
	cmd.Flags().Float64Var(&dpTargetUtil, "dp-target-util", system.Defaults.DPTargetUtilization, "plan the DP stages at this fraction of their capacity (policy dpTargetUtilization, (0, 1]; 0: --target-util; strategies with rounds only)")
	for _, x := range experimentSwitches {
		cmd.Flags().Bool(x.flag, x.def, x.usage)
	}
	cmd.Flags().IntVar(&bufferSpare, "buffer-spare", system.Defaults.BufferSpare, "buffered instances per VNF and DC that --trim-buffer keeps for τ")
	for _, x := range experimentFractions {
		cmd.Flags().Float64(x.flag, x.def, x.usage)
	}
	cmd.Flags().IntVar(&improveBudget, "improve-budget", 0, "the planner's joint improvement phase: budget in pair searches (0: off; placement Options.Improve)")
	cmd.Flags().StringVar(&model, "predictor", "", "override the experiment's predictor spec (ar1, holt, ar1+q90, ...)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.AddCommand(newSimulateConsistencyCmd())
	return cmd
}

// experimentSwitches are the experiment's on/off settings that simulate's
// flags override (only when given on the command line).
var experimentSwitches = []struct {
	flag, usage string
	def         bool
	field       func(*simulation.Experiment) *bool
}{
	{flag: "warm-start", def: system.Defaults.WarmStart, field: func(e *simulation.Experiment) *bool { return &e.WarmStart },
		usage: "size the initial round for the schedule's starting load (an operator's declared expected load)"},
	{flag: "overload-at-capacity", def: false, field: func(e *simulation.Experiment) *bool { return &e.OverloadAtCapacity },
		usage: "simulated CPU and memory reach the Table 2 thresholds at the capacity (ρ = 1), as Table 2's packet thresholds do"},
	{flag: "scale-in-guard", def: system.Defaults.ScaleInGuard, field: func(e *simulation.Experiment) *bool { return &e.ScaleInGuard },
		usage: "a proactive round does not buffer instances the VNF's measured load in the DC still needs"},
	{flag: "local-first", def: system.Defaults.LocalFirst, field: func(e *simulation.Experiment) *bool { return &e.LocalFirst },
		usage: "the planner places the entry = exit pairs before the others (placement Options.LocalFirst)"},
	{flag: "plan-horizon", def: system.Defaults.PlanHorizon, field: func(e *simulation.Experiment) *bool { return &e.PlanHorizon },
		usage: "plan for the largest load over the next interval plus the boot delay (trend of the forecast), not the interval's mean"},
	{flag: "profile-prior", def: false, field: func(e *simulation.Experiment) *bool { return &e.ProfilePrior },
		usage: "the rounds also plan for the rises of the schedule read as a declared daily profile (analysis, an upper bound; replaces the experiment's declaredProfile)"},
	{flag: "trim-buffer", def: system.Defaults.TrimBuffer, field: func(e *simulation.Experiment) *bool { return &e.TrimBuffer },
		usage: "destroy buffered instances beyond --buffer-spare per VNF and DC at each new interval instead of after τ"},
	{flag: "trim-empty", def: system.Defaults.TrimEmpty, field: func(e *simulation.Experiment) *bool { return &e.TrimEmpty },
		usage: "destroy a buffered instance beyond --buffer-spare as soon as its flows have ended"},
	{flag: "scale-in", def: system.Defaults.ScaleIn, field: func(e *simulation.Experiment) *bool { return &e.ScaleIn },
		usage: "between rounds, buffer one instance when a VNF's measured load in a DC has stayed under what one instance fewer carries (hybrid only)"},
	{flag: "anticipate", def: system.Defaults.Anticipate, field: func(e *simulation.Experiment) *bool { return &e.Anticipate },
		usage: "hybrid's DP stages scale out before the overload when the measured load's rise would pass the instances' capacity within a boot"},
	{flag: "rise-flags", def: system.Defaults.RiseFlags, field: func(e *simulation.Experiment) *bool { return &e.RiseFlags },
		usage: "hybrid's rounds flag a DP stage \"no rise\" (flat after a steep rise: longer reactive hold, 99% scale-in guard, no anticipation on ≤ 2 working) and \"fast\" (a steep rise: the raise launched just in time), unless the declared profile foresees a rise"},
	{flag: "paper-reactive", def: false, field: func(e *simulation.Experiment) *bool { return &e.PaperReactive },
		usage: "use the paper's literal reactive majority rule (running instances only), as its reactive-only baseline did"},
}

// experimentFractions are the experiment's routing fractions that
// simulate's flags override (only when given on the command line), each
// checked by its system checker under the flag's name.
var experimentFractions = []struct {
	flag, usage string
	def         float64
	check       func(field string, f float64) error
	field       func(*simulation.Experiment) *float64
}{
	{flag: "pack-flows", def: system.Defaults.PackFlows, check: system.CheckPackFlows, field: func(e *simulation.Experiment) *float64 { return &e.PackFlows },
		usage: "pack new DP flows onto the most-loaded instance with room up to this fraction of its capacity (0: least-loaded; strategies with rounds only)"},
	{flag: "spread-overload", def: system.Defaults.SpreadOverload, check: system.CheckSpreadOverload, field: func(e *simulation.Experiment) *float64 { return &e.SpreadOverload },
		usage: "while some instances of a DP stage are overloaded, a new DP flow packing cannot place goes to the overloaded instance with the fewest flows when the normal one with the fewest would pass this fraction of its capacity (0: off; else at least --pack-flows; strategies with rounds only)"},
	{flag: "reactive-util", def: system.Defaults.ReactiveUtilization, check: system.CheckReactiveUtilization, field: func(e *simulation.Experiment) *float64 { return &e.ReactiveUtilization },
		usage: "reactive scale-out of a DP stage waits until a majority of its working instances is overloaded and carries this fraction of its capacity (the larger of packets and CPU; at most 1 min; 0: the overload report suffices; strategies with rounds only)"},
	{flag: "falling-scale-in", def: system.Defaults.FallingScaleIn, check: system.CheckFallingScaleIn, field: func(e *simulation.Experiment) *float64 { return &e.FallingScaleIn },
		usage: "between rounds, buffer one instance of a DP stage whose load is falling once the rest carry it at this fraction of their capacity, and destroy it when its flows have ended (0: off; strategies with rounds only)"},
	{flag: "falling-scale-in-single", def: system.Defaults.FallingScaleInSingle, check: system.CheckFallingScaleInSingle, field: func(e *simulation.Experiment) *float64 { return &e.FallingScaleInSingle },
		usage: "with --falling-scale-in, also step a DP stage from two working instances to one when that one would carry at most this fraction of its capacity (capped at --falling-scale-in's bar; nothing without it; 0: two stay; strategies with rounds only)"},
	{flag: "trim-empty-busy", def: system.Defaults.TrimEmptyBusy, check: system.CheckTrimEmptyBusy, field: func(e *simulation.Experiment) *float64 { return &e.TrimEmptyBusy },
		usage: "with trimEmpty, keep a VNF's emptied buffered instances while its working instances average more than this fraction of their load threshold (also the held trim's bar; in (0, 1])"},
	{flag: "trim-empty-single-busy", def: system.Defaults.TrimEmptySingleBusy, check: system.CheckTrimEmptyBusy, field: func(e *simulation.Experiment) *float64 { return &e.TrimEmptySingleBusy },
		usage: "--trim-empty-busy for a VNF with one working instance (TrimEmpty only; in (0, 1])"},
}

// overrideFractions sets exp's fractions whose flags fs was given, each
// checked under its flag's name, and then spreadOverload against packFlows
// (system.CheckSpreadNotBelowPack); exp is unchanged on an error.
func overrideFractions(fs *pflag.FlagSet, exp *simulation.Experiment) error {
	e := *exp
	for _, x := range experimentFractions {
		if !fs.Changed(x.flag) {
			continue
		}
		v, _ := fs.GetFloat64(x.flag) // registered as a float64 by newSimulateCmd
		if err := x.check("--"+x.flag, v); err != nil {
			return err
		}
		*x.field(&e) = v
	}
	spread, pack := "spreadOverload", "packFlows" // the experiment's keys, unless a flag gave the value
	if fs.Changed("spread-overload") {
		spread = "--spread-overload"
	}
	if fs.Changed("pack-flows") {
		pack = "--pack-flows"
	}
	if err := system.CheckSpreadNotBelowPack(spread, e.SpreadOverload, pack, e.PackFlows); err != nil {
		return err
	}
	*exp = e
	return nil
}

// overrideSwitches sets exp's switches whose flags fs was given.
func overrideSwitches(fs *pflag.FlagSet, exp *simulation.Experiment) {
	for _, x := range experimentSwitches {
		if fs.Changed(x.flag) {
			v, _ := fs.GetBool(x.flag) // registered as a bool by newSimulateCmd
			*x.field(exp) = v
		}
	}
}

func newSimulateConsistencyCmd() *cobra.Command {
	var (
		seed uint64
		skew time.Duration
	)
	cmd := &cobra.Command{
		Use:   "consistency [--seed N] [--enter-skew D]",
		Short: "Paper 6.3.2: flows lost when paths alternate every interval, with and without interval tags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-10s %8s %8s\n", "routing", "flows", "dropped")
			for _, ignore := range []bool{false, true} {
				r, err := simulation.RunConsistency(simulation.ConsistencyConfig{Seed: seed, EnterSkew: skew, IgnoreTag: ignore})
				if err != nil {
					return usageErr(err)
				}
				name := "tagged"
				if ignore {
					name = "untagged"
				}
				fmt.Fprintf(w, "%-10s %8d %8d\n", name, r.Flows, r.Dropped)
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	cmd.Flags().DurationVar(&skew, "enter-skew", time.Second, "largest delay of \"enter new interval\" at a DC")
	return cmd
}

func simulate(cmd *cobra.Command, exp *simulation.Experiment, strategies []strategy.Strategy, seed uint64, out string, quiet bool) error {
	var results []*simulation.Result
	stderr := cmd.ErrOrStderr()
	for _, s := range strategies {
		var bar *progressbar.ProgressBar
		opts := simulation.Options{Strategy: s, Seed: seed}
		if !quiet {
			w := stderr
			if w == nil {
				w = io.Discard
			}
			bar = progressbar.NewOptions(int(exp.Duration/time.Second), progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(fmt.Sprintf("%s/%s", exp.Name, s)), progressbar.OptionShowCount(),
				progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
			opts.Progress = func(done, _ int) { _ = bar.Set(done) }
		}
		res, err := simulation.Run(cmd.Context(), exp, opts)
		if bar != nil {
			_ = bar.Finish()
		}
		if err != nil {
			return err
		}
		dir := out
		if len(strategies) > 1 {
			dir = filepath.Join(out, s.Name())
		}
		if err := simulation.WriteRun(dir, res); err != nil {
			return err
		}
		results = append(results, res)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if len(results) > 1 {
		f, err := os.Create(filepath.Join(out, "summary.csv"))
		if err != nil {
			return err
		}
		if err := simulation.WriteSummaryCSV(f, results); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if err := simulation.WritePlots(out, results); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%-10s %9s %9s %9s %9s %9s %9s\n", "strategy", "created", "dp_loss", "rtt_p50", "rtt_p99", "sip_p50", "dropped")
	for _, r := range results {
		s := r.Summarize()
		fmt.Fprintf(w, "%-10s %9d %9.5f %9.1f %9.1f %9.1f %9d\n", s.Strategy, s.Created, s.DPLoss, s.RTTP50, s.RTTP99, s.SIPP50, s.DroppedFlows)
	}
	if err := simulation.WriteRatioTable(w, results); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s\n", out)
	return nil
}

// overrideDeclared drops the experiment's declared profile with
// --no-declared-profile.
func overrideDeclared(fs *pflag.FlagSet, e *simulation.Experiment) {
	if off, _ := fs.GetBool("no-declared-profile"); off {
		e.Declared = nil
	}
}
