package system

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// newTwoDCSystem composes a System without an engine over two DCs (a, b;
// the S-CSCF in a) with the given DP stages, on a fake driver in virtual
// time; edit fills in the rest of the Config (strategy, policy, options).
func newTwoDCSystem(t *testing.T, stages []fsm.VNF, edit func(*Config)) (*System, *fake.Driver, *clock.Virtual, error) {
	t.Helper()
	clk := clock.NewVirtual(time.Unix(1_700_000_000, 0))
	drv, err := fake.New(clk, fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Topology: fsm.Topology{DCs: []string{"a", "b"}, SCSCFDC: "a",
		PCSCF: fsm.VNF{Name: "pcscf", Capacity: 500}, SCSCF: fsm.VNF{Name: "scscf", Capacity: 200},
		Stages: stages, DelayMs: [][]float64{{0, 10}, {10, 0}}}, NoEngine: true}
	edit(&cfg)
	s, err := New(cfg, drv, clk)
	return s, drv, clk, err
}
