package simulation

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// declaredNoiseStream keeps the declared profile's noise apart from the
// run's other draws of the same seed.
const declaredNoiseStream = 0xdec1a7ed

// profilePrior is the rounds' declared-profile prior (nil: none): with
// ProfilePrior the run's own schedule (analysis), else the declared
// profile (made another day's by its noise and shift); time 0 and the
// first arrival are the traffic's start.
func (e *Experiment) profilePrior(start time.Time, seed uint64) *global.ProfilePrior {
	switch {
	case e.ProfilePrior:
		return &global.ProfilePrior{Profile: e.Schedule, Origin: start, Since: start, CallDuration: traffic.DefaultCallDuration}
	case e.Declared != nil:
		return &global.ProfilePrior{Profile: e.yesterday(seed), Origin: start, Since: start, CallDuration: e.DeclaredCall, Lower: e.DeclaredLower,
			Weight: e.DeclaredWeight, RampScale: e.DeclaredRampScale, MaxWeight: e.DeclaredMaxWeight, KindWeights: e.DeclaredKindWeights, FlatWeight: e.DeclaredFlatWeight, Window: e.DeclaredWindow,
			StageFloor: e.DeclaredStageFloor, StageFloorMode: e.DeclaredStageFloorMode, StageFloorWindow: e.DeclaredStageFloorWindow}
	}
	return nil
}

// yesterday is the declared profile with the experiment's noise and shift.
func (e *Experiment) yesterday(seed uint64) *global.DailyProfile {
	p := &global.DailyProfile{Hour: e.Declared.Hour, DCs: make([]global.DCProfile, len(e.Declared.DCs))}
	s := seed
	if e.DeclaredNoiseSeed != nil {
		s = *e.DeclaredNoiseSeed
	}
	rng := rand.New(rand.NewPCG(s, declaredNoiseStream))
	for i, d := range e.Declared.DCs {
		r := slices.Clone(d.Rates)
		if e.DeclaredNoise > 0 {
			for h := range r {
				r[h] *= max(0, 1+e.DeclaredNoise*rng.NormFloat64())
			}
		}
		p.DCs[i] = global.DCProfile{Rates: r, UTCOffset: d.UTCOffset - e.DeclaredShift}
	}
	return p
}
