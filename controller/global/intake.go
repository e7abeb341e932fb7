package global

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Series keys: one per entry→exit pair and kind, one per measured link.
const (
	KindCP    = "cp"
	KindDP    = "dp"
	KindDelay = "delay"
)

// SeriesKey names a predicted series: "cp/A/B", "dp/A/B" or "delay/A/B".
func SeriesKey(kind, a, b string) string { return kind + "/" + a + "/" + b }

// ParseSeriesKey splits a series key.
func ParseSeriesKey(k string) (kind, a, b string, ok bool) {
	parts := strings.Split(k, "/")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// intake accumulates workload and delay reports over one interval.
//
// Interval average of a pair (CP or DP) = Σ over reporting DCs of
// (sum of the pair's rates in that DC's reports of that kind) / (number of
// reports of that kind the DC sent). A pair missing from a report counts as
// 0 for that report. A link's delay average is the plain mean of the reports.
// Every report of a DC is a measurement of the DC's whole load, whichever
// process (protocol.WorkloadReport.Reporter) sent it.
type intake struct {
	reports map[string]int                // "kind/dc" → reports this interval
	sums    map[string]map[string]float64 // series key → reporter → Σ rate
	delay   map[string]float64            // delay key → Σ ms
	delayN  map[string]int
	// latest holds each DC's ("kind/dc") last workload reports of the
	// interval, per reporter (recent).
	latest map[string]*dcReports
}

// dcReports are a DC's last reports of one kind, one ring per reporter:
// two reporters of one DC (a local controller and its successor, two
// nodes during a move) each keep their own times, which need not agree.
// A ring is keyed by the credential the report came under and its
// reporter ID (ringKey), so reporters of two credentials never share one.
// A report's arrival number in its DC is the DC's count of reports of the
// kind so far this interval (intake.reports).
type dcReports struct {
	by     map[string]*lastReports // ringKey → the reporter's last reports
	byCred map[string]int          // credential → its rings in the DC
}

// maxReportersPerCredential bounds the rings one credential
// (protocol.WorkloadReport.Credential) can take in one DC and kind per
// interval: a report of a further reporter ID under that credential is
// refused (errTooManyReporters). Reporter IDs come from the reporters; the
// bound keeps a credential's holder (the shared protocol token's, say)
// from taking the rings of the reporters of other credentials (the global
// node's own local controllers, reporters with their own credentials),
// whose rings it cannot touch. A reporter credential (role.reportersFile)
// names its reports itself, so it takes one ring per DC. The metric HELP
// text and the docs state the number
// (TestMaxReportersPerCredentialIsTheNumberTheTextsState).
const maxReportersPerCredential = 8

// errTooManyReporters is what the intake answers to a report of one
// reporter more than maxReportersPerCredential under one credential in
// one DC and kind this interval; Stats.RefusedReporters counts them.
var errTooManyReporters = errors.New("too many reporters under one credential")

// ringKey keys a reporter's ring: its credential and its ID (no valid
// credential name holds a control character, transport.CheckReporterID).
func ringKey(credential, reporter string) string { return credential + "\x00" + reporter }

// ring returns the ring of reporter id under credential cred, made on
// first use, or errTooManyReporters when cred holds its bound of rings.
func (d *dcReports) ring(cred, id string) (*lastReports, error) {
	k := ringKey(cred, id)
	if l := d.by[k]; l != nil {
		return l, nil
	}
	if d.byCred[cred] >= maxReportersPerCredential {
		return nil, errTooManyReporters
	}
	l := &lastReports{}
	d.by[k] = l
	d.byCred[cred]++
	return l, nil
}

// lastReports is a ring of a reporter's last RecentReports pair lists;
// their buffers are reused, so a report costs no allocation once the ring
// is full.
type lastReports struct {
	pairs  [RecentReports][]protocol.PairLoad
	at     [RecentReports]time.Time // the reports' own times (WorkloadReport.At)
	seq    [RecentReports]uint64    // the reports' arrival numbers in their DC (intake.reports)
	newest time.Time                // the latest WorkloadReport.At the reporter sent this interval
	n      int                      // reports kept (≤ RecentReports)
	next   int                      // the slot the next report overwrites
	count  int                      // the reporter's reports of the DC this interval
}

// slot is the ring index of the j-th oldest kept report.
func (l *lastReports) slot(j int) int { return (l.next - l.n + j + RecentReports) % RecentReports }

// halvesApart is how far apart in seconds the mean times of the oldest and
// the newest half of the kept reports are (slot j is the j-th oldest), or
// 0 when the reports carry no usable times: one of them is unset, or they
// are not strictly increasing in the order they came in. The ring is kept
// per reporter, but reports without a reporter ID (older reporters) of two
// processes share one, and a reporter's clock can step back: their times,
// not in order, are not a distance.
func (l *lastReports) halvesApart(half int) float64 {
	if half <= 0 {
		return 0
	}
	var first, prev time.Time
	old, recent := 0.0, 0.0
	for j := range l.n {
		at := l.at[l.slot(j)]
		if at.IsZero() || (j > 0 && !at.After(prev)) {
			return 0
		}
		if j == 0 {
			first = at
		}
		prev = at
		t := at.Sub(first).Seconds()
		switch {
		case j < half:
			old += t
		case j >= l.n-half:
			recent += t
		}
	}
	return (recent - old) / float64(half)
}

// RecentReports is how many of a reporter's last workload reports of an
// interval make a series' recent level (intake.recent): 5 one-second
// reports in the simulator, enough to average out a second's noise.
const RecentReports = 5

func newIntake() intake {
	return intake{
		reports: map[string]int{},
		sums:    map[string]map[string]float64{},
		delay:   map[string]float64{},
		delayN:  map[string]int{},
		latest:  map[string]*dcReports{},
	}
}

func validRate(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) && x >= 0 }

// checkReport validates a report against the known DCs.
func checkReport(r protocol.WorkloadReport, known map[string]bool) error {
	if !known[r.DC] {
		return fmt.Errorf("workload report dc: %q is not a datacenter of the topology", r.DC)
	}
	if r.Kind != KindCP && r.Kind != KindDP && r.Kind != KindDelay {
		return fmt.Errorf("workload report kind: %q, want %q, %q or %q", r.Kind, KindCP, KindDP, KindDelay)
	}
	if r.Kind == KindDelay && len(r.Pairs) > 0 {
		return fmt.Errorf("workload report pairs: a %q report carries delaysMs only", KindDelay)
	}
	for i, p := range r.Pairs {
		if !known[p.Entry] || !known[p.Exit] {
			return fmt.Errorf("workload report pairs[%d]: %q→%q names an unknown datacenter", i, p.Entry, p.Exit)
		}
		if !validRate(p.Rate) {
			return fmt.Errorf("workload report pairs[%d].rate: must be finite and non-negative, got %g", i, p.Rate)
		}
	}
	if len(r.DelaysMs) > 0 && r.Kind == KindCP {
		return fmt.Errorf("workload report delaysMs: delays come with %q or %q reports, this is %q", KindDP, KindDelay, r.Kind)
	}
	for dc, ms := range r.DelaysMs {
		if !known[dc] || dc == r.DC {
			return fmt.Errorf("workload report delaysMs[%q]: not another datacenter of the topology", dc)
		}
		if !validRate(ms) {
			return fmt.Errorf("workload report delaysMs[%q]: must be finite and non-negative, got %g", dc, ms)
		}
	}
	return nil
}

// add counts a report in the interval, or refuses it (nothing counted)
// with an error wrapping errTooManyReporters.
func (in *intake) add(r protocol.WorkloadReport) error {
	dk := r.Kind + "/" + r.DC
	var l *lastReports
	if r.Kind != KindDelay {
		d := in.latest[dk]
		if d == nil {
			d = &dcReports{by: map[string]*lastReports{}, byCred: map[string]int{}}
			in.latest[dk] = d
		}
		var err error
		if l, err = d.ring(r.Credential, r.Reporter); err != nil {
			return fmt.Errorf("workload report reporter: %q would be reporter %d of %s %s reports under credential %s this interval, at most %d "+
				"(the count starts afresh when the interval closes; per-node reporter credentials, role.reportersFile, give each node its own): %w",
				r.Reporter, maxReportersPerCredential+1, r.DC, r.Kind, credentialName(r.Credential), maxReportersPerCredential, err)
		}
	}
	in.reports[dk]++
	if l != nil {
		l.pairs[l.next] = append(l.pairs[l.next][:0], r.Pairs...)
		l.at[l.next] = r.At
		if r.At.After(l.newest) {
			l.newest = r.At
		}
		l.seq[l.next] = uint64(in.reports[dk])
		l.next = (l.next + 1) % RecentReports
		l.n = min(l.n+1, RecentReports)
		l.count++
	}
	for _, p := range r.Pairs {
		k := SeriesKey(r.Kind, p.Entry, p.Exit)
		m := in.sums[k]
		if m == nil {
			m = map[string]float64{}
			in.sums[k] = m
		}
		m[r.DC] += p.Rate
	}
	for dc, ms := range r.DelaysMs {
		k := SeriesKey(KindDelay, r.DC, dc)
		in.delay[k] += ms
		in.delayN[k]++
	}
	return nil
}

// credentialName names a credential in errors.
func credentialName(c string) string {
	if c == "" {
		return "in-process"
	}
	return fmt.Sprintf("%q", c)
}

// behind tells whether r is dated (WorkloadReport.At) no later than a
// report its reporter (credential and ID) already sent of the DC and kind
// this interval: it came out of order, as a re-sent report does (a
// reporter re-sends its kept reports right behind the report that found a
// new leader).
func (in *intake) behind(r protocol.WorkloadReport) bool {
	d := in.latest[r.Kind+"/"+r.DC]
	if d == nil {
		return false
	}
	l := d.by[ringKey(r.Credential, r.Reporter)]
	return l != nil && !r.At.After(l.newest)
}

// Recent is a workload series' recent level (intake.recent).
type Recent struct {
	// Level is the rate at the interval's end: Σ over reporting DCs of the
	// mean of the pair's rate over that DC's last RecentReports reports
	// of the kind, whichever reporter sent them (a pair missing from a
	// report counts as 0).
	Level float64
	// Slope is the reports' own rise, per interval: Σ over reporting DCs
	// of the DC's slope. A reporter's slope is (the mean of the newest
	// half of its last reports − the mean of the oldest half) / their
	// distance in time × the interval; a DC's is the mean of its
	// reporters' slopes, each weighted by its share of the DC's last
	// RecentReports reports (a reporter with fewer than MinSlopeReports
	// reports kept, or none among the DC's last ones, has no share: two
	// reporters of one DC interleaved, each reporting the DC's whole
	// load, give the DC's slope; one that stopped reporting earlier in
	// the interval is left out). The distance is the reports' own times
	// (WorkloadReport.At), so a DC that reported for only part of the
	// interval (an engine that took leadership mid-interval, a meter
	// started late, a DC back from silence) gets the same slope as one
	// that reported all of it, as long as its reports spread over at
	// least half the interval: the distance is never taken below half the
	// counted one (one report period between two reports), so the slope
	// is at most twice the counted one. Reports without usable times (one
	// unset, or the kept times not strictly increasing: two reporters
	// without an ID interleaved, a clock stepped back) count one report
	// period (the interval ÷ the reporter's reports of the interval)
	// between two reports. Valid when SlopeOK: every reporting DC had a
	// reporter with MinSlopeReports reports or more among its last ones.
	Slope   float64
	SlopeOK bool
}

// MinSlopeReports is how many of a reporter's last reports Recent.Slope
// needs.
const MinSlopeReports = 4

// slopeScale is the factor that turns (Σ newest half − Σ oldest half) of a
// reporter's kept reports into its rise per interval, or 0 when it has too
// few reports for a slope.
func (l *lastReports) slopeScale(interval time.Duration) float64 {
	if l.n < MinSlopeReports {
		return 0
	}
	half := l.n / 2
	// per interval ÷ the halves' distance: (newest − oldest half) × scale
	// is the rise per interval
	periods := float64(max(1, l.count)) // report periods per interval
	if d := l.halvesApart(half); d > 0 && interval > 0 {
		// the times' distance, but at least half the counted one
		// (n − half report periods of interval ÷ periods each):
		// times strictly increasing yet far closer than the
		// reports' count says (a clock stepped, two reporters
		// just in order) would multiply the slope without bound
		counted := float64(l.n-half) * interval.Seconds() / periods
		return interval.Seconds() / (max(d, counted/2) * float64(half))
	}
	return periods / float64(half*(l.n-half))
}

// recent returns each workload series' recent level (Recent) for an
// interval of the given length. A series no report of the interval named
// is absent; one that the DCs' last reports do not name has Level 0 and
// no slope.
func (in *intake) recent(interval time.Duration) map[string]Recent {
	out := make(map[string]Recent, len(in.sums))
	for k := range in.sums {
		out[k] = Recent{}
	}
	short := map[string]bool{} // named by a DC with too few reports for a slope
	// DCs and reporters in a fixed order: a series several DCs report sums
	// the same way every run (floating-point addition is not associative)
	for _, dk := range slices.Sorted(maps.Keys(in.latest)) {
		d := in.latest[dk]
		kind, _, _ := strings.Cut(dk, "/")
		ids := slices.Sorted(maps.Keys(d.by))
		// the DC's last reports: arrival numbers above lo, in any ring
		seq := uint64(in.reports[dk])
		n := min(seq, RecentReports)
		lo := seq - n
		// each reporter's share of them, counted among reporters with
		// enough reports for a slope
		share := make([]int, len(ids))
		shares := 0
		for i, id := range ids {
			l := d.by[id]
			if l.n < MinSlopeReports {
				continue
			}
			for j := range l.n {
				if l.seq[l.slot(j)] > lo {
					share[i]++
				}
			}
			shares += share[i]
		}
		// each reporter's reports: the DC's last ones make the level, a
		// reporter with a share gives its slope weighted by it
		for i, id := range ids {
			l := d.by[id]
			scale, half := 0.0, l.n/2
			if share[i] > 0 {
				scale = l.slopeScale(interval)
				if share[i] != shares {
					scale *= float64(share[i]) / float64(shares)
				}
			}
			for j := range l.n {
				last := l.seq[l.slot(j)] > lo
				if !last && share[i] == 0 {
					continue
				}
				w := 0.0 // the report's weight in the slope: −, + on the oldest and newest half
				switch {
				case scale == 0:
				case j < half:
					w = -scale
				case j >= l.n-half:
					w = scale
				}
				for _, p := range l.pairs[l.slot(j)] {
					k := SeriesKey(kind, p.Entry, p.Exit)
					rc := out[k]
					if last {
						rc.Level += p.Rate / float64(n)
					}
					rc.Slope += w * p.Rate
					rc.SlopeOK = true
					out[k] = rc
					if shares == 0 {
						short[k] = true
					}
				}
			}
		}
	}
	for k := range short {
		rc := out[k]
		rc.SlopeOK, rc.Slope = false, 0
		out[k] = rc
	}
	return out
}

// averages returns the interval averages and which kinds got any report.
func (in *intake) averages() (avg map[string]float64, kinds map[string]bool) {
	avg = map[string]float64{}
	kinds = map[string]bool{}
	for k := range in.reports {
		kind, _, _ := strings.Cut(k, "/")
		kinds[kind] = true
	}
	for k, byDC := range in.sums {
		kind, _, _, _ := ParseSeriesKey(k)
		total := 0.0
		// reporters in a fixed order, as in recent: three or more DCs
		// reporting one pair would otherwise sum differently run to run
		for _, dc := range slices.Sorted(maps.Keys(byDC)) {
			total += byDC[dc] / float64(in.reports[kind+"/"+dc])
		}
		avg[k] = total
	}
	for k, s := range in.delay {
		avg[k] = s / float64(in.delayN[k])
	}
	return avg, kinds
}
