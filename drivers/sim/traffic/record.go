package traffic

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/drivers/sim"
)

// Second is the per-second time series row.
type Second struct {
	T                  int // seconds since the start (the second (T−1, T])
	Arrivals           int // users
	Calls              int // active calls
	Flows              int // active routed flows
	NewFlows           int
	DroppedFlows       int     // new flows the router refused
	CPTx               float64 // SIP transactions
	CPFailed           float64 // transactions lost at an overloaded or missing CP instance (expected count)
	SIPMeanMs          float64 // completion time of the transactions of the second
	SIPP95Ms           float64
	DPOffered, DPLost  float64 // packets
	DPLoss             float64 // DPLost / DPOffered
	RTTMeanMs          float64 // over the flows active in the second
	RTTP50Ms, RTTP95Ms float64
	SinkErrors         int // statistics the sink refused
}

// InstanceRow is one VNF in one DC in one second.
type InstanceRow struct {
	T int
	sim.Totals
}

// Recorder holds an engine's results with bounded memory: per-second rows
// (a fixed size per simulated second), histograms, counters.
type Recorder struct {
	Seconds   []Second
	Instances []InstanceRow
	// SIP is the completion time (ms) of every successful SIP transaction.
	SIP Hist
	// FlowRTT is each flow's mean RTT (ms) over its life (flows with at
	// least one round trip); FlowLoss each routed or dropped flow's loss fraction.
	FlowRTT, FlowLoss Hist
	// Flow counters: every flow, the router's drops, flows that lost
	// packets (dropped ones included), flows still running at the end.
	FlowsTotal, FlowsDropped, FlowsLossy, FlowsTruncated int
	// Abandoned counts users that gave up waiting for a CrossDC partner.
	Abandoned int
	// Totals over the run.
	CPTx, CPFailed, DPOffered, DPLost float64
	Start, End                        time.Time

	dropReasons    map[string]int
	secRTT, secSIP Hist
	flowLog        *bufio.Writer
	flowLogErr     error
	names          []string
}

func newRecorder(start time.Time, names []string, log io.Writer) *Recorder {
	r := &Recorder{Start: start, dropReasons: map[string]int{}, names: names}
	if log != nil {
		r.flowLog = bufio.NewWriter(log)
		_, r.flowLogErr = r.flowLog.WriteString(FlowLogHeader + "\n")
	}
	return r
}

// FlowLogHeader is the header of Config.FlowLog.
const FlowLogHeader = "flow,call,dir,entry,exit,start_s,path,mean_rtt_ms,loss,dropped,truncated"

// DropReasons returns how many flows were dropped for each reason.
func (r *Recorder) DropReasons() map[string]int { return maps.Clone(r.dropReasons) }

// FlowLogErr returns the first error writing the flow log (nil if none).
func (r *Recorder) FlowLogErr() error { return r.flowLogErr }

func (r *Recorder) addSecond(row Second, totals []sim.Totals) {
	r.Seconds = append(r.Seconds, row)
	for _, t := range totals {
		r.Instances = append(r.Instances, InstanceRow{T: row.T, Totals: t})
	}
}

func (r *Recorder) addFlow(f *flow, truncated bool) {
	loss := 0.0
	if f.pkts > 0 {
		loss = f.lost / f.pkts
	}
	if truncated {
		r.FlowsTruncated++
	}
	if f.lost > 1e-9*f.pkts && f.pkts > 0 || f.units == nil {
		r.FlowsLossy++
	}
	if f.units == nil && f.pkts == 0 {
		loss = 1
	}
	r.FlowLoss.Add(loss, 1)
	mean := 0.0
	if f.rttN > 0 {
		mean = f.rttSum / float64(f.rttN)
		r.FlowRTT.Add(mean, 1)
	}
	if r.flowLog == nil || r.flowLogErr != nil {
		return
	}
	path := make([]string, len(f.path))
	for i, d := range f.path {
		path[i] = strconv.Itoa(d)
	}
	_, r.flowLogErr = fmt.Fprintf(r.flowLog, "%d,%d,%d,%d,%d,%s,%s,%s,%s,%t,%t\n", f.ID, f.Call, f.Dir, f.Entry, f.Exit,
		ff(f.At.Sub(r.Start).Seconds()), strings.Join(path, "-"), ff(mean), ff(loss), f.units == nil, truncated)
}

// Flush flushes the flow log.
func (r *Recorder) Flush() error {
	if r.flowLog == nil {
		return nil
	}
	if err := r.flowLog.Flush(); err != nil && r.flowLogErr == nil {
		r.flowLogErr = err
	}
	return r.flowLogErr
}

// ff formats a float deterministically with 3 decimals.
func ff(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

type errWriter struct {
	w   *bufio.Writer
	err error
}

func (e *errWriter) line(fields ...string) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.WriteString(strings.Join(fields, ",") + "\n")
}

func (e *errWriter) done() error {
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

// WriteSecondsCSV writes the per-second time series.
func (r *Recorder) WriteSecondsCSV(w io.Writer) error {
	ew := &errWriter{w: bufio.NewWriter(w)}
	ew.line("t", "arrivals", "calls", "flows", "new_flows", "dropped_flows", "cp_tx", "cp_failed", "sip_mean_ms", "sip_p95_ms",
		"dp_offered_pkts", "dp_lost_pkts", "dp_loss", "rtt_mean_ms", "rtt_p50_ms", "rtt_p95_ms", "sink_errors")
	it := strconv.Itoa
	for _, s := range r.Seconds {
		ew.line(it(s.T), it(s.Arrivals), it(s.Calls), it(s.Flows), it(s.NewFlows), it(s.DroppedFlows), ff(s.CPTx), ff(s.CPFailed),
			ff(s.SIPMeanMs), ff(s.SIPP95Ms), ff(s.DPOffered), ff(s.DPLost), strconv.FormatFloat(s.DPLoss, 'f', 6, 64),
			ff(s.RTTMeanMs), ff(s.RTTP50Ms), ff(s.RTTP95Ms), it(s.SinkErrors))
	}
	return ew.done()
}

// WriteInstancesCSV writes the per-second instance counts and loads per DC
// (by name) and VNF.
func (r *Recorder) WriteInstancesCSV(w io.Writer) error {
	ew := &errWriter{w: bufio.NewWriter(w)}
	ew.line("t", "dc", "vnf", "booting", "active", "error", "created", "offered", "served", "lost", "mean_cpu")
	it := strconv.Itoa
	for _, x := range r.Instances {
		dc := it(x.DC)
		if x.DC < len(r.names) {
			dc = r.names[x.DC]
		}
		ew.line(it(x.T), dc, x.VNF, it(x.Booting), it(x.Active), it(x.Error), it(x.Created), ff(x.Offered), ff(x.Served), ff(x.Lost), ff(x.MeanCPU))
	}
	return ew.done()
}

// WriteCDFCSV writes a histogram's CDF (le, fraction) — FlowRTT for the
// paper's Fig. 9(a), SIP, FlowLoss.
func WriteCDFCSV(w io.Writer, h *Hist) error {
	ew := &errWriter{w: bufio.NewWriter(w)}
	ew.line("le", "fraction")
	for _, p := range h.CDF() {
		ew.line(strconv.FormatFloat(p.Le, 'g', 6, 64), strconv.FormatFloat(p.Fraction, 'f', 6, 64))
	}
	return ew.done()
}

// WriteSummaryCSV writes the run's totals as key,value lines.
func (r *Recorder) WriteSummaryCSV(w io.Writer) error {
	ew := &errWriter{w: bufio.NewWriter(w)}
	ew.line("key", "value")
	kv := func(k, v string) { ew.line(k, v) }
	it := strconv.Itoa
	kv("seconds", it(len(r.Seconds)))
	kv("flows", it(r.FlowsTotal))
	kv("flows_dropped", it(r.FlowsDropped))
	kv("flows_lossy", it(r.FlowsLossy))
	kv("flows_truncated", it(r.FlowsTruncated))
	kv("users_abandoned", it(r.Abandoned))
	kv("cp_tx", ff(r.CPTx))
	kv("cp_failed", ff(r.CPFailed))
	kv("sip_mean_ms", ff(r.SIP.Mean()))
	kv("sip_p95_ms", ff(r.SIP.Quantile(0.95)))
	kv("dp_offered_pkts", ff(r.DPOffered))
	kv("dp_lost_pkts", ff(r.DPLost))
	loss := 0.0
	if r.DPOffered > 0 {
		loss = r.DPLost / r.DPOffered
	}
	kv("dp_loss", strconv.FormatFloat(loss, 'f', 6, 64))
	kv("flow_rtt_mean_ms", ff(r.FlowRTT.Mean()))
	kv("flow_rtt_p50_ms", ff(r.FlowRTT.Quantile(0.5)))
	kv("flow_rtt_p95_ms", ff(r.FlowRTT.Quantile(0.95)))
	for _, k := range slices.Sorted(maps.Keys(r.dropReasons)) {
		kv("drop:"+strings.ReplaceAll(k, ",", ";"), it(r.dropReasons[k]))
	}
	return ew.done()
}
