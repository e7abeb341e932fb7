// Command oraclebound measures what round sizing alone can reach on an
// experiment (docs/reproduction.md, "Session 8: simultaneous floor"): it
// runs the experiment once (reactive-only: the traffic, and so the load
// log, is the same for every strategy of a seed), then runs hybrid with
// the rounds planning the load to come instead of a forecast
// (simulation.Oracle) — the largest rate of each pair over the next
// interval plus the boot delay ("max"), and over the next interval only
// ("max-interval"), its mean ("mean") and its 90th and 75th percentiles
// ("q90", "q75"), and proactive-only (no local
// scale-out) the same way — and prints, per run, the
// VM-seconds, the floor, ÷ the floor and the fixed-routing floor, and the
// DP loss beside hybrid's own.
//
//	go run ./scripts/oraclebound testdata/experiments/simultaneous-start-20s.yaml [seed]
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/ims-orch/ims-orch/controller/simulation"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "oraclebound:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return fmt.Errorf("usage: oraclebound EXPERIMENT.yaml [seed]")
	}
	e, err := simulation.LoadExperiment(args[0])
	if err != nil {
		return err
	}
	seed := uint64(1)
	if len(args) == 2 {
		if seed, err = strconv.ParseUint(args[1], 10, 64); err != nil {
			return fmt.Errorf("seed %q: %v", args[1], err)
		}
	}
	ctx := context.Background()
	react, err := simulation.Run(ctx, e, simulation.Options{Strategy: strategy.Reactive, Seed: seed})
	if err != nil {
		return err
	}
	hyb, err := simulation.Run(ctx, e, simulation.Options{Strategy: strategy.Hybrid, Seed: seed})
	if err != nil {
		return err
	}
	rs := react.Summarize()
	fmt.Printf("%-26s %8s %8s %7s %7s %7s %9s %7s\n", "run", "vm_s", "floor", "÷floor", "÷fixed", "÷react", "dp_loss", "÷react")
	line := func(name string, r *simulation.Result) {
		s := r.Summarize()
		fmt.Printf("%-26s %8.0f %8.0f %7.3f %7.3f %7.3f %8.4f%% %7.3f\n", name, s.VMSeconds, s.FloorVMSeconds,
			s.VMSeconds/s.FloorVMSeconds, s.VMSeconds/s.FixedFloorVMSeconds, s.VMSeconds/rs.VMSeconds, 100*s.DPLoss, s.DPLoss/rs.DPLoss)
	}
	line("reactive", react)
	line("hybrid", hyb)
	for _, st := range []strategy.Strategy{strategy.Hybrid, strategy.Proactive} {
		for _, o := range []struct {
			name string
			o    simulation.Oracle
		}{
			{"oracle max", simulation.Oracle{Log: react.Loads, Window: e.Interval + e.BootDelay}},
			{"oracle max-interval", simulation.Oracle{Log: react.Loads, Window: e.Interval}},
			{"oracle mean", simulation.Oracle{Log: react.Loads, Window: e.Interval, Mean: true}},
			{"oracle q90", simulation.Oracle{Log: react.Loads, Window: e.Interval, Quantile: 0.9}},
			{"oracle q75", simulation.Oracle{Log: react.Loads, Window: e.Interval, Quantile: 0.75}},
		} {
			r, err := simulation.Run(ctx, e, simulation.Options{Strategy: st, Seed: seed, Oracle: &o.o})
			if err != nil {
				return fmt.Errorf("%s %s: %w", st.Name(), o.name, err)
			}
			line(st.Name()+" "+o.name, r)
		}
	}
	return nil
}
