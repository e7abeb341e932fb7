package traffic

import (
	"context"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/sim"
)

// fataler is what the helpers need of testing.TB and rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var paperChain = []string{"firewall", "ids", "transcoder"}

// fleet is how many instances of each VNF every DC gets (S-CSCF only in scscfDC).
type fleet map[string]int

// sized for 15 users/s per DC with every stage in the entry DC.
var fleet15 = fleet{"P-CSCF": 1, "S-CSCF": 2, "firewall": 2, "ids": 3, "transcoder": 4}

type world struct {
	clk    *clock.Virtual
	cloud  *sim.Cloud
	delays *sim.Delays
	start  time.Time
}

func newWorld(tb fataler, n int, fl fleet, scscfDC int) *world {
	tb.Helper()
	clk := clock.NewVirtual(t0)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("dc%d", i)
	}
	cloud, err := sim.New(clk, sim.Options{DCs: names, BootDelay: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	for dc := 0; dc < n; dc++ {
		for _, vnf := range []string{"P-CSCF", "S-CSCF", "firewall", "ids", "transcoder"} {
			if vnf == "S-CSCF" && dc != scscfDC {
				continue
			}
			for k := 0; k < fl[vnf]; k++ {
				id := fmt.Sprintf("%s-%s-%d", names[dc], vnf, k)
				if _, err := cloud.Launch(context.Background(), drivers.Spec{ID: id, DC: names[dc], VNF: vnf}); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	clk.Advance(time.Second)
	base := sim.PaperDelays8()
	if n != 8 {
		base = make([][]float64, n)
		for i := range base {
			base[i] = make([]float64, n)
			for j := range base[i] {
				if i != j {
					base[i][j] = 10
				}
			}
		}
	}
	d, err := sim.NewDelays(clk.Now(), base, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &world{clk: clk, cloud: cloud, delays: d, start: clk.Now()}
}

func (w *world) engine(tb fataler, cfg Config) *Engine {
	tb.Helper()
	cfg.Cloud, cfg.Delays, cfg.Start = w.cloud, w.delays, w.start
	if cfg.Router == nil {
		cfg.Router = &LocalRouter{Cloud: w.cloud, Chain: paperChain}
	}
	e, err := New(w.clk, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func (w *world) run(e *Engine, d time.Duration) {
	e.Start()
	w.clk.RunUntil(w.start.Add(d))
}
