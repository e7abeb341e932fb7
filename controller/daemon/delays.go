package daemon

import (
	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/metrics"
)

// linkDelays is every directed link's delay as the last round's plan used
// it (measured by the probes, or the static matrix), from this node's
// engine: sample times are known only where the samples arrived (the
// leader).
func (d *Daemon) linkDelays() []global.LinkDelay {
	if d.engine == nil {
		return nil
	}
	return d.engine.Delays()
}

func apiDelays(ds []global.LinkDelay) []api.LinkDelay {
	out := make([]api.LinkDelay, 0, len(ds))
	for _, l := range ds {
		a := api.LinkDelay{From: l.From, To: l.To, Ms: l.Ms, Source: l.Source, ConfiguredMs: l.ConfiguredMs, LastSampleMs: l.LastSampleMs}
		if !l.LastSampleAt.IsZero() {
			at := l.LastSampleAt
			a.LastSampleAt = &at
		}
		out = append(out, a)
	}
	return out
}

func metricDelays(ds []global.LinkDelay) []metrics.LinkDelay {
	out := make([]metrics.LinkDelay, 0, len(ds))
	for _, l := range ds {
		m := metrics.LinkDelay{From: l.From, To: l.To, Ms: l.Ms, Source: l.Source, AgeSeconds: -1}
		if !l.LastSampleAt.IsZero() {
			m.AgeSeconds = l.Age.Seconds()
		}
		out = append(out, m)
	}
	return out
}

// pathDelay sums the delays the plan used over a path's hops (DC names).
func pathDelay(ds []global.LinkDelay, hops []string) float64 {
	sum := 0.0
	for i := 0; i+1 < len(hops); i++ {
		for _, l := range ds {
			if l.From == hops[i] && l.To == hops[i+1] {
				sum += l.Ms
				break
			}
		}
	}
	return sum
}
