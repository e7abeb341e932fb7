package simulation

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// Summary is one run's headline numbers (summary.csv).
type Summary struct {
	Strategy                      string
	Created, DPCreated            int
	ReactiveCreates, ProactiveNew int
	Reused                        int
	// DPLoss is DPLost ÷ DPOffered: the data-plane packets lost and offered
	// over the run (summary.csv writes the fraction rounded to 6 decimals
	// and the two counts exactly, for ratios of small losses).
	DPLoss, DPLost, DPOffered      float64
	RTTP50, RTTP99                 float64
	SIPP50, SIPP99, SIPMean        float64
	CPFailed                       float64
	Flows, DroppedFlows, LossyFlow int
	Rounds                         int
	// VM-seconds (total, of buffered instances), the per-second floor and
	// the floor on the fixed routing (Cost).
	VMSeconds, BufferedVMSeconds, FloorVMSeconds, FixedFloorVMSeconds float64
}

// Summarize computes a run's summary.
func (r *Result) Summarize() Summary {
	rec := r.Recorder
	s := Summary{Strategy: r.Strategy.Name(), Created: r.Created, DPCreated: r.DPCreated,
		ReactiveCreates: r.Actions["create/reactive"], ProactiveNew: r.Actions["create/proactive"],
		Reused: r.Actions["reuse/proactive"] + r.Actions["reuse/reactive"],
		RTTP50: rec.FlowRTT.Quantile(0.5), RTTP99: rec.FlowRTT.Quantile(0.99),
		SIPP50: rec.SIP.Quantile(0.5), SIPP99: rec.SIP.Quantile(0.99), SIPMean: rec.SIP.Mean(),
		CPFailed: rec.CPFailed, Flows: rec.FlowsTotal, DroppedFlows: rec.FlowsDropped, LossyFlow: rec.FlowsLossy, Rounds: r.Rounds,
		VMSeconds: r.Cost.VMSeconds, BufferedVMSeconds: r.Cost.BufferedVMSeconds, FloorVMSeconds: r.Cost.FloorVMSeconds,
		FixedFloorVMSeconds: r.Cost.FixedFloorVMSeconds}
	s.DPLost, s.DPOffered = rec.DPLost, rec.DPOffered
	if rec.DPOffered > 0 {
		s.DPLoss = rec.DPLost / rec.DPOffered
	}
	return s
}

func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }
func f0(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }

// Ratio is one row of the ratio table: a run's VM-seconds and DP loss
// against the reactive-only run of the same experiment, flags and seed,
// and its VM-seconds against its floor and the floor on the fixed routing.
type Ratio struct {
	Strategy                  string
	VMSeconds, BufferedVMSecs float64
	VsReactive, VsFloor       float64 // VM-seconds ratios (VsReactive NaN without a reactive run)
	VsFixedFloor              float64
	DPLoss, LossVsReactive    float64
}

// Ratios compares every run with the reactive-only one among them (the
// ÷reactive ratios are NaN when there is none; a ratio to 0 is +Inf, or 1
// when both are 0: see ratio).
func Ratios(results []*Result) []Ratio {
	var ref *Summary
	for _, r := range results {
		if r.Strategy.Name() == "reactive" {
			s := r.Summarize()
			ref = &s
		}
	}
	out := make([]Ratio, 0, len(results))
	for _, r := range results {
		s := r.Summarize()
		x := Ratio{Strategy: s.Strategy, VMSeconds: s.VMSeconds, BufferedVMSecs: s.BufferedVMSeconds, DPLoss: s.DPLoss,
			VsFloor: ratio(s.VMSeconds, s.FloorVMSeconds), VsFixedFloor: ratio(s.VMSeconds, s.FixedFloorVMSeconds), VsReactive: math.NaN(), LossVsReactive: math.NaN()}
		if ref != nil {
			x.VsReactive, x.LossVsReactive = ratio(s.VMSeconds, ref.VMSeconds), ratio(s.DPLoss, ref.DPLoss)
		}
		out = append(out, x)
	}
	return out
}

// ratio is a/b, defined where b is 0 too (reactive-only losing nothing, as
// scripts/sweep.sh counts it): +Inf when a is not 0, 1 when both are.
func ratio(a, b float64) float64 {
	switch {
	case b != 0:
		return a / b
	case a == 0:
		return 1
	}
	return math.Inf(1)
}

// fmtRatio prints a ratio for the table: "inf" for +Inf, "-" when there is
// nothing to compare with (NaN), else three decimals.
func fmtRatio(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case math.IsInf(x, 1):
		return "inf"
	}
	return strconv.FormatFloat(x, 'f', 3, 64)
}

// WriteRatioTable prints the ratio table (strategy: VM-seconds, buffered,
// ÷ reactive-only, ÷ floor, ÷ the floor on the fixed routing, DP loss,
// ÷ reactive-only).
func WriteRatioTable(w io.Writer, results []*Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%-10s %10s %9s %8s %8s %8s %8s %8s\n", "strategy", "vm_s", "buffered", "÷react", "÷floor", "÷fixed", "dp_loss", "÷react")
	for _, x := range Ratios(results) {
		fmt.Fprintf(bw, "%-10s %10.0f %9.0f %8s %8s %8s %7.3f%% %8s\n", x.Strategy, x.VMSeconds, x.BufferedVMSecs,
			fmtRatio(x.VsReactive), fmtRatio(x.VsFloor), fmtRatio(x.VsFixedFloor), 100*x.DPLoss, fmtRatio(x.LossVsReactive))
	}
	if len(results) > 0 {
		fmt.Fprintf(bw, "floor (%s): %.0f VM-s; on the fixed routing (every DP stage in its entry DC): %.0f VM-s\n",
			results[0].Strategy.Name(), results[0].Cost.FloorVMSeconds, results[0].Cost.FixedFloorVMSeconds)
	}
	return bw.Flush()
}

// WriteSummaryCSV writes one line per run.
func WriteSummaryCSV(w io.Writer, results []*Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "strategy,instances_created,dp_instances_created,created_proactive,created_reactive,reused,dp_loss,rtt_p50_ms,rtt_p99_ms,sip_mean_ms,sip_p50_ms,sip_p99_ms,cp_failed,flows,dropped_flows,lossy_flows,rounds,vm_seconds,buffered_vm_seconds,floor_vm_seconds,floor_fixed_vm_seconds,dp_lost_packets,dp_offered_packets")
	for _, r := range results {
		s := r.Summarize()
		it := strconv.Itoa
		fmt.Fprintln(bw, strings.Join([]string{s.Strategy, it(s.Created), it(s.DPCreated), it(s.ProactiveNew), it(s.ReactiveCreates), it(s.Reused),
			strconv.FormatFloat(s.DPLoss, 'f', 6, 64), f3(s.RTTP50), f3(s.RTTP99), f3(s.SIPMean), f3(s.SIPP50), f3(s.SIPP99),
			f3(s.CPFailed), it(s.Flows), it(s.DroppedFlows), it(s.LossyFlow), it(s.Rounds),
			f0(s.VMSeconds), f0(s.BufferedVMSeconds), f0(s.FloorVMSeconds), f0(s.FixedFloorVMSeconds),
			strconv.FormatFloat(s.DPLost, 'f', -1, 64), strconv.FormatFloat(s.DPOffered, 'f', -1, 64)}, ","))
	}
	return bw.Flush()
}

// WritePathsCSV writes the path rows.
func (r *Result) WritePathsCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "t,interval,dc,paths_through,paths_total,paths_over_changed_links")
	for _, p := range r.Paths {
		fmt.Fprintf(bw, "%d,%d,%s,%d,%d,%d\n", p.T, p.Interval, r.DCs[p.DC], p.Through, p.Total, p.OverChanged)
	}
	return bw.Flush()
}

// WriteRoundsCSV writes one line per proactive round.
func (r *Result) WriteRoundsCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "round,t,dp_actual_pkts,dp_predicted_pkts,created,reused,to_buffer,working,kept,alg2,alg2_extra,shortest,local,delay_violated,plan_error")
	for _, x := range r.RoundRows {
		t := x.Totals
		it := strconv.Itoa
		fmt.Fprintln(bw, strings.Join([]string{strconv.FormatUint(x.Round, 10), f3(x.T), f3(x.DPActual), f3(x.DPPredicted),
			it(t.Created), it(t.Reused), it(t.ToBuffer), it(t.Working), it(t.Kept), it(t.Alg2), it(t.Alg2Extra), it(t.Shortest),
			it(t.Local), it(t.DelayViolated), strconv.Quote(x.PlanError)}, ","))
	}
	return bw.Flush()
}

func writeFile(path string, f func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(fh); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return fh.Close()
}

// WriteRun writes one run's CSV files into dir: seconds.csv, instances.csv,
// paths.csv, rounds.csv, rtt-cdf.csv, sip-cdf.csv and summary.csv.
func WriteRun(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rec := r.Recorder
	files := []struct {
		name string
		f    func(io.Writer) error
	}{
		{"seconds.csv", rec.WriteSecondsCSV},
		{"instances.csv", rec.WriteInstancesCSV},
		{"paths.csv", r.WritePathsCSV},
		{"rounds.csv", r.WriteRoundsCSV},
		{"rtt-cdf.csv", func(w io.Writer) error { return traffic.WriteCDFCSV(w, &rec.FlowRTT) }},
		{"sip-cdf.csv", func(w io.Writer) error { return traffic.WriteCDFCSV(w, &rec.SIP) }},
		{"summary.csv", func(w io.Writer) error { return WriteSummaryCSV(w, []*Result{r}) }},
	}
	for _, x := range files {
		if err := writeFile(filepath.Join(dir, x.name), x.f); err != nil {
			return err
		}
	}
	return nil
}

// WriteActionsCSV writes the local controllers' scale actions of the run
// (every DC, by time; t in seconds since the traffic start, negative in the
// warm-up): t,dc,vnf,kind,reason,instance,interval,detail. An analysis
// output (which round or reactive rule created, buffered, reused or
// destroyed what, when); WriteRun does not write it.
func (r *Result) WriteActionsCSV(w io.Writer) error {
	var all []local.Action
	for _, dc := range r.DCs {
		all = append(all, r.sys.Locals[dc].Actions()...)
	}
	slices.SortStableFunc(all, func(a, b local.Action) int { return a.At.Compare(b.At) })
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "t,dc,vnf,kind,reason,instance,interval,detail")
	for _, a := range all {
		fmt.Fprintf(bw, "%s,%s,%s,%s,%s,%s,%d,%s\n", f3(a.At.Sub(r.Start).Seconds()), a.DC, a.VNF, a.Kind, a.Reason,
			a.InstanceID, a.Interval, strconv.Quote(a.Detail))
	}
	return bw.Flush()
}
