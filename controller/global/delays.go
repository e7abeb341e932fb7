package global

import (
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Delay sources of a link, as the plan of the last round used it.
const (
	// DelayMeasured: the link had a probe sample in the interval just
	// closed; the plan used its predicted delay.
	DelayMeasured = "measured"
	// DelayConfigured: the link was never measured; the plan used the
	// static matrix (topology.delaysMs).
	DelayConfigured = "configured"
	// DelayFallback: the link was measured before but has no fresh sample;
	// the plan fell back to the static matrix.
	DelayFallback = "fallback"
)

// LinkDelay is one directed link's delay as the planner sees it.
type LinkDelay struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Ms is the delay the last plan used (or would use now); Source says
	// where it came from.
	Ms     float64 `json:"ms"`
	Source string  `json:"source"`
	// LastSampleMs is the last reported (interval-mean) measurement and
	// Age the time since it came (both zero when never measured).
	LastSampleMs float64       `json:"lastSampleMs,omitempty"`
	LastSampleAt time.Time     `json:"lastSampleAt,omitzero"`
	Age          time.Duration `json:"age,omitempty"`
	// ConfiguredMs is the static matrix's value.
	ConfiguredMs float64 `json:"configuredMs"`
}

type delaySample struct {
	ms float64
	at time.Time
}

// noteDelays keeps the last delay sample of each link (for Delays); called
// with the engine's lock held for an accepted report.
func (e *Engine) noteDelays(r protocol.WorkloadReport) {
	if len(r.DelaysMs) == 0 {
		return
	}
	if e.lastDelay == nil {
		e.lastDelay = map[string]delaySample{}
	}
	now := e.d.Clock.Now()
	for dc, ms := range r.DelaysMs {
		e.lastDelay[SeriesKey(KindDelay, r.DC, dc)] = delaySample{ms: ms, at: now}
	}
}

// Delays returns every directed link's delay as the last committed
// prediction feeds the plan (same rule as buildSnapshot), with its source
// and the age of its last sample at this engine (samples are not
// replicated: after a leader change the age starts with the first report
// the new leader receives).
func (e *Engine) Delays() []LinkDelay {
	st := e.d.Store.State()
	st.History = e.d.Store.History()
	e.mu.Lock()
	last := make(map[string]delaySample, len(e.lastDelay))
	for k, v := range e.lastDelay {
		last[k] = v
	}
	now := e.d.Clock.Now()
	e.mu.Unlock()
	return linkDelays(&st, last, now)
}

func linkDelays(st *fsm.State, last map[string]delaySample, now time.Time) []LinkDelay {
	t := st.Topology
	if t == nil {
		return nil
	}
	pred, actual := map[string]float64{}, map[string]float64{}
	if n := len(st.History); n > 0 { // the last committed prediction (step 1)
		pred, actual = st.History[n-1].Predicted, st.History[n-1].Actual
	}
	measured := map[string]bool{}
	for _, p := range st.History {
		for k := range p.Actual {
			measured[k] = true
		}
	}
	var out []LinkDelay
	for i, a := range t.DCs {
		for j, b := range t.DCs {
			if i == j {
				continue
			}
			k := SeriesKey(KindDelay, a, b)
			l := LinkDelay{From: a, To: b, Ms: t.DelayMs[i][j], ConfiguredMs: t.DelayMs[i][j], Source: DelayConfigured}
			_, fresh := actual[k]
			if d, ok := pred[k]; fresh && ok && validRate(d) {
				l.Ms, l.Source = d, DelayMeasured
			} else if _, ok := last[k]; ok || measured[k] {
				l.Source = DelayFallback
			}
			if s, ok := last[k]; ok {
				l.LastSampleMs, l.LastSampleAt, l.Age = s.ms, s.at, now.Sub(s.at)
			}
			out = append(out, l)
		}
	}
	return out
}
