package global

import (
	"slices"
	"strings"
)

// Silent datacenters (issue 19): a workload series whose reporting DCs sent
// no report of its kind during an interval is missing, not zero. Its
// interval average is left out (the prediction's Actual does not name it),
// the forecaster is not fed, so the forecast is the last one, held; the
// engine logs which DCs are silent and for how long. After
// Config.SilentHoldRounds rounds without a report (default 3) the series
// counts as 0 again, as a pair nobody reports has no traffic. A series
// whose reporters are not known to this engine (it became leader after they
// last reported) follows the old rule: 0 when its kind was reported at all.

// DefaultSilentHoldRounds is Config.SilentHoldRounds' default.
const DefaultSilentHoldRounds = 3

// silence is the engine's view of who reports what.
type silence struct {
	reporters map[string]map[string]bool // series key → DCs that reported it
	since     map[string]uint64          // series key → first round it was missing
}

func newSilence() silence {
	return silence{reporters: map[string]map[string]bool{}, since: map[string]uint64{}}
}

// learn records the reporters of this interval's series.
func (s *silence) learn(in *intake) {
	for k, byDC := range in.sums {
		m := s.reporters[k]
		if m == nil {
			m = map[string]bool{}
			s.reporters[k] = m
		}
		for dc := range byDC {
			m[dc] = true
		}
	}
}

// fill completes avg for the series absent from it: 0 for a series a
// reporter of which reported its kind this interval (no traffic on the
// pair), held (left out, returned) while its reporters are silent for at
// most hold rounds, 0 after that.
func (s *silence) fill(series map[string]bool, avg map[string]float64, in *intake, kinds map[string]bool, round uint64, hold int) (held []string, silentDCs []string) {
	dcs := map[string]bool{}
	for k := range series {
		if _, ok := avg[k]; ok {
			delete(s.since, k)
			continue
		}
		kind, _, _, _ := ParseSeriesKey(k)
		if kind == KindDelay {
			continue
		}
		reps := s.reporters[k]
		spoke := len(reps) == 0 && kinds[kind]
		for dc := range reps {
			if in.reports[kind+"/"+dc] > 0 {
				spoke = true
			}
		}
		if spoke {
			avg[k] = 0
			delete(s.since, k)
			continue
		}
		if len(reps) == 0 {
			continue // nothing of its kind at all: not invented
		}
		first, ok := s.since[k]
		if !ok {
			first, s.since[k] = round, round
		}
		if round-first >= uint64(hold) {
			avg[k] = 0 // silent too long: the documented timeout
			continue
		}
		held = append(held, k)
		for dc := range reps {
			dcs[dc] = true
		}
	}
	slices.Sort(held)
	for dc := range dcs {
		silentDCs = append(silentDCs, dc)
	}
	slices.Sort(silentDCs)
	return held, silentDCs
}

// heldNote is the log summary of held series.
func heldNote(held []string) string {
	if len(held) > 8 {
		return strings.Join(held[:8], ",") + ",…"
	}
	return strings.Join(held, ",")
}
