package fsm

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// roundPrediction is a step-1 prediction of n DCs as the engine commits
// it: cp, dp and delay series per pair in Actual and Predicted, and with
// peak a Peak for every dp pair (a declared profile rising everywhere:
// the worst case, N² entries).
func roundPrediction(n int, peak bool) *Prediction {
	p := &Prediction{Actual: map[string]float64{}, Predicted: map[string]float64{}}
	if peak {
		p.Peak = map[string]float64{}
	}
	for a := range n {
		for b := range n {
			for _, kind := range []string{"cp", "dp", "delay"} {
				if kind == "delay" && a == b {
					continue
				}
				k := fmt.Sprintf("%s/dc-%03d/dc-%03d", kind, a, b)
				p.Actual[k], p.Predicted[k] = 100, 110
				if peak && kind == "dp" {
					p.Peak[k] = 250
				}
			}
		}
	}
	return p
}

// predictStep commits round r's start and step 1 straight into f's state
// (the rest of the round does not touch the history).
func predictStep(b *testing.B, f *FSM, r uint64, p *Prediction) {
	f.s.Interval, f.s.Round = r, nil
	for _, c := range []Command{RoundStarted{Round: r}, RoundStepDone{Round: r, Step: protocol.StepPredict, Prediction: p}} {
		if err := f.ApplyCommand(c); err != nil {
			b.Fatal(err)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkHistoryMemory: the prediction history's retained heap per round
// (MaxHistory rounds, the state's whole history; "B/round") at 10, 50 and
// 100 DCs, for predictions with and without a Peak for every dp pair,
// and the time of a step-1 apply. docs/benchmarks.md "Prediction history".
func BenchmarkHistoryMemory(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		for _, peak := range []bool{false, true} {
			// measured once, not per b.N: MaxHistory rounds of fresh maps
			f := New()
			if err := f.ApplyCommand(SetTopology{Topology: topo()}); err != nil {
				b.Fatal(err)
			}
			before := heapInUse()
			for r := range uint64(MaxHistory) {
				predictStep(b, f, r, roundPrediction(n, peak))
			}
			f.s.Round = nil // the last round's own prediction is not history
			retained := float64(heapInUse() - before)
			ps := make([]*Prediction, 4)
			for i := range ps {
				ps[i] = roundPrediction(n, peak)
			}
			b.Run(fmt.Sprintf("dcs=%d/peak=%v", n, peak), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					predictStep(b, f, uint64(MaxHistory+i), ps[i%len(ps)])
				}
				b.ReportMetric(retained/MaxHistory, "B/round")
				b.ReportMetric(retained/(1<<20), "MB/history")
			})
		}
	}
}
