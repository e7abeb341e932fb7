package simulation

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// A run whose experiment sets profilePrior (an analysis option: the run's
// own schedule as the declared profile) plans some round with the
// profile's rule; without it none.
func TestProfilePriorRun(t *testing.T) {
	e := short(load(t, "daily-audio.yaml"), 600*time.Second)
	if e.ProfilePrior {
		t.Fatal("daily-audio.yaml declares profilePrior: the bundled experiments run without it")
	}
	data, err := os.ReadFile(expDir + "daily-audio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	on, err := ParseExperiment(append(data, []byte("\nprofilePrior: true\n")...))
	if err != nil {
		t.Fatal(err)
	}
	if !on.ProfilePrior {
		t.Fatal("profilePrior: true not read")
	}
	e.ProfilePrior = true
	count := func(e *Experiment) int {
		r, err := Run(context.Background(), e, Options{Strategy: strategy.Hybrid, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, rec := range r.sys.Engine.Records() {
			for _, fc := range rec.Forecasts {
				if fc.Rule == global.RuleProfile {
					n++
				}
			}
		}
		return n
	}
	if n := count(e); n == 0 {
		t.Fatal("no round planned by the profile")
	}
	off := *e
	off.ProfilePrior = false
	if n := count(&off); n != 0 {
		t.Fatalf("%d series planned by the profile without profilePrior", n)
	}
}
