package scenario

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
)

// BenchmarkLoad measures Parse + Snapshot of the example scenarios.
func BenchmarkLoad(b *testing.B) {
	for _, name := range []string{"paper-4dc.yaml", "paper-8dc.yaml", "two-dc.json"} {
		data, err := os.ReadFile(filepath.Join(scenarioDir, name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Load(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlanRound is the whole offline round of `ims-orch plan --output
// json` on paper-8dc.yaml: load, plan, map to names, encode.
func BenchmarkPlanRound(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(scenarioDir, "paper-8dc.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sc, snap, err := Load(data)
		if err != nil {
			b.Fatal(err)
		}
		d, err := placement.Plan(snap, placement.Options{})
		if err != nil {
			b.Fatal(err)
		}
		po, err := NewPlanOutput(sc, snap, d, placement.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := json.NewEncoder(io.Discard).Encode(po); err != nil {
			b.Fatal(err)
		}
	}
}
