package scenario

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
)

// FuzzParse: Parse never panics; whatever it accepts, Snapshot either
// rejects with an error or turns into a snapshot that passes Validate. For
// small accepted scenarios, placement.Plan runs and its decision maps back to
// names without error (no index outside the scenario).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(scenarioDir, "*.*"))
	invalid, _ := filepath.Glob(filepath.Join(scenarioDir, "invalid", "*.yaml"))
	for _, p := range append(seeds, invalid...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"datacenters":[{"name":"a"}],"delays":{"matrixMs":[[0]]},"delayBoundMs":1,` +
		`"controlPlane":{"scscfDatacenter":"a","pcscf":{"capacity":1},"scscf":{"capacity":1}},` +
		`"dataPlane":{"stages":[{"name":"s","capacity":1}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data)
		if err != nil {
			if sc != nil {
				t.Fatal("Parse returned a scenario and an error")
			}
			return
		}
		snap, err := sc.Snapshot()
		if err != nil {
			return
		}
		if err := snap.Validate(); err != nil {
			t.Fatalf("Snapshot accepted a scenario that does not validate: %v", err)
		}
		if snap.N != len(sc.Datacenters) || len(snap.Stages) != len(sc.DataPlane.Stages) {
			t.Fatalf("snapshot shape %d×%d, scenario %d×%d", snap.N, len(snap.Stages), len(sc.Datacenters), len(sc.DataPlane.Stages))
		}
		if snap.N > 6 || len(snap.Stages) > 4 {
			return
		}
		d, err := placement.Plan(snap, placement.Options{})
		if err != nil {
			t.Fatalf("Plan rejected a validated snapshot: %v", err)
		}
		if _, err := NewPlanOutput(sc, snap, d, placement.Options{}); err != nil {
			t.Fatalf("decision does not map back to the scenario: %v", err)
		}
	})
}
