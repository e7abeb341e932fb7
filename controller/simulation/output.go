package simulation

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// Summary is one run's headline numbers (summary.csv).
type Summary struct {
	Strategy                       string
	Created, DPCreated             int
	ReactiveCreates, ProactiveNew  int
	Reused                         int
	DPLoss                         float64
	RTTP50, RTTP99                 float64
	SIPP50, SIPP99, SIPMean        float64
	CPFailed                       float64
	Flows, DroppedFlows, LossyFlow int
	Rounds                         int
}

// Summarize computes a run's summary.
func (r *Result) Summarize() Summary {
	rec := r.Recorder
	s := Summary{Strategy: r.Strategy.Name(), Created: r.Created, DPCreated: r.DPCreated,
		ReactiveCreates: r.Actions["create/reactive"], ProactiveNew: r.Actions["create/proactive"],
		Reused: r.Actions["reuse/proactive"] + r.Actions["reuse/reactive"],
		RTTP50: rec.FlowRTT.Quantile(0.5), RTTP99: rec.FlowRTT.Quantile(0.99),
		SIPP50: rec.SIP.Quantile(0.5), SIPP99: rec.SIP.Quantile(0.99), SIPMean: rec.SIP.Mean(),
		CPFailed: rec.CPFailed, Flows: rec.FlowsTotal, DroppedFlows: rec.FlowsDropped, LossyFlow: rec.FlowsLossy, Rounds: r.Rounds}
	if rec.DPOffered > 0 {
		s.DPLoss = rec.DPLost / rec.DPOffered
	}
	return s
}

func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

// WriteSummaryCSV writes one line per run.
func WriteSummaryCSV(w io.Writer, results []*Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "strategy,instances_created,dp_instances_created,created_proactive,created_reactive,reused,dp_loss,rtt_p50_ms,rtt_p99_ms,sip_mean_ms,sip_p50_ms,sip_p99_ms,cp_failed,flows,dropped_flows,lossy_flows,rounds")
	for _, r := range results {
		s := r.Summarize()
		it := strconv.Itoa
		fmt.Fprintln(bw, strings.Join([]string{s.Strategy, it(s.Created), it(s.DPCreated), it(s.ProactiveNew), it(s.ReactiveCreates), it(s.Reused),
			strconv.FormatFloat(s.DPLoss, 'f', 6, 64), f3(s.RTTP50), f3(s.RTTP99), f3(s.SIPMean), f3(s.SIPP50), f3(s.SIPP99),
			f3(s.CPFailed), it(s.Flows), it(s.DroppedFlows), it(s.LossyFlow), it(s.Rounds)}, ","))
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
