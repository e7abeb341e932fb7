// Command floorattr runs one experiment with hybrid (seed 1 unless given)
// and writes, beside the run's CSV files (simulation.WriteRun), the two
// inputs of scripts/floor-attribution.py: counts.csv (every second, DC and
// VNF: the local controller's booting, normal, overload, buffered and
// draining instances and its working target) and actions.csv (the local
// controllers' scale actions, simulation.Result.WriteActionsCSV).
//
//	go run ./scripts/floorattr testdata/experiments/simultaneous-start-20s.yaml /tmp/attr-20 [seed]
//	python3 scripts/floor-attribution.py /tmp/attr-20 20
package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/simulation"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floorattr:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || len(args) > 3 {
		return fmt.Errorf("usage: floorattr EXPERIMENT.yaml OUTDIR [seed]")
	}
	e, err := simulation.LoadExperiment(args[0])
	if err != nil {
		return err
	}
	seed := uint64(1)
	if len(args) == 3 {
		if seed, err = strconv.ParseUint(args[2], 10, 64); err != nil {
			return fmt.Errorf("seed %q: %v", args[2], err)
		}
	}
	out := args[1]
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "counts.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "t,dc,vnf,booting,normal,overload,buffered,draining,target")
	res, err := simulation.Run(context.Background(), e, simulation.Options{Strategy: strategy.Hybrid, Seed: seed,
		Observe: func(sec int, locals map[string]*local.Controller) {
			for _, dc := range slices.Sorted(maps.Keys(locals)) {
				cs := locals[dc].Counts()
				for _, v := range slices.Sorted(maps.Keys(cs)) {
					c := cs[v]
					fmt.Fprintf(w, "%d,%s,%s,%d,%d,%d,%d,%d,%d\n", sec, dc, v, c.Booting, c.Normal, c.Overload, c.Buffered, c.Draining, c.Target)
				}
			}
		}})
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := simulation.WriteRun(out, res); err != nil {
		return err
	}
	a, err := os.Create(filepath.Join(out, "actions.csv"))
	if err != nil {
		return err
	}
	if err := res.WriteActionsCSV(a); err != nil {
		a.Close()
		return err
	}
	if err := a.Close(); err != nil {
		return err
	}
	s := res.Summarize()
	fmt.Printf("hybrid VM-s %.0f, floor %.0f (÷ %.3f), fixed-routing floor %.0f (÷ %.3f), DP loss %.4f%%\n", s.VMSeconds, s.FloorVMSeconds,
		s.VMSeconds/s.FloorVMSeconds, s.FixedFloorVMSeconds, s.VMSeconds/s.FixedFloorVMSeconds, 100*s.DPLoss)
	return nil
}
