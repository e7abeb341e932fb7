package sipglue

import (
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/discovery"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

func TestLoadWeight(t *testing.T) {
	th := vnf.Thresholds{CPU: 70, Mem: 50, PktRate: 1000}
	for _, tc := range []struct {
		s    local.Stats
		want uint16
	}{
		{local.Stats{}, MaxWeight},                // no statistics yet: idle
		{local.Stats{PktRate: 250}, 750},          // a quarter of the threshold
		{local.Stats{PktRate: 250, CPU: 35}, 500}, // CPU at half its threshold dominates
		{local.Stats{PktRate: 999.9}, 1},          // rounds to 0: still reachable
		{local.Stats{PktRate: 5000, CPU: 100}, 1}, // beyond the thresholds
		{local.Stats{PktRate: -3}, MaxWeight},     // nonsense input: idle, not a panic
		{local.Stats{Mem: 99, PktRate: 500}, 500}, // memory is not load (Kamailio's shm only grows)
	} {
		if got := LoadWeight(tc.s, th); got != tc.want {
			t.Errorf("LoadWeight(%+v) = %d, want %d", tc.s, got, tc.want)
		}
	}
	if got := LoadWeight(local.Stats{PktRate: 500, CPU: 50}, vnf.Thresholds{}); got != MaxWeight {
		t.Errorf("no thresholds: %d, want %d", got, MaxWeight)
	}
}

// The weights follow the instances' measured load into the DC's DNS
// answers, every period of the (virtual) clock.
func TestStartPCSCFWeights(t *testing.T) {
	srv, err := discovery.New(discovery.Options{Zone: "dc0.ims.local"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDiscovery("pcscf", "scscf", map[string]Zone{"dc0": srv, "dc1": &zoneRec{}}, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	d.Update("dc0", "pcscf", []local.RoutableInstance{ri("p1", "127.10.1.1:5060", false), ri("p2", "127.10.1.2:5060", false)})
	var mu sync.Mutex
	insts := []local.Instance{
		{ID: "p1", VNF: "pcscf", Address: "127.10.1.1:5060", Last: local.Stats{PktRate: 600}},
		{ID: "p2", VNF: "pcscf", Address: "127.10.1.2:5060"},
		{ID: "s1", VNF: "scscf", Address: "127.10.2.1:5060", Last: local.Stats{PktRate: 600}},
	}
	clk := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	stop := d.StartPCSCFWeights(clk, time.Second, vnf.Thresholds{PktRate: 1000}, map[string]WeightSource{
		"dc0": func() []local.Instance { mu.Lock(); defer mu.Unlock(); return append([]local.Instance(nil), insts...) },
		"dc1": func() []local.Instance { return nil },
	})
	defer stop()
	weights := func() map[string]uint16 {
		m := new(dns.Msg)
		m.SetQuestion(srv.SRVName(ServicePCSCF), dns.TypeSRV)
		out := map[string]uint16{}
		for _, rr := range srv.Answer(m).Answer {
			out[rr.(*dns.SRV).Target] = rr.(*dns.SRV).Weight
		}
		return out
	}
	w := weights()
	if w["127-10-1-1.pcscf.dc0.ims.local."] != 400 || w["127-10-1-2.pcscf.dc0.ims.local."] != MaxWeight || len(w) != 2 {
		t.Fatalf("weights at start %v, want p1 400 (60 %% loaded), p2 %d (idle)", w, MaxWeight)
	}
	mu.Lock()
	insts[0].Last.PktRate, insts[1].Last.PktRate = 100, 900
	mu.Unlock()
	clk.Advance(time.Second)
	if w = weights(); w["127-10-1-1.pcscf.dc0.ims.local."] != 900 || w["127-10-1-2.pcscf.dc0.ims.local."] != 100 {
		t.Fatalf("weights after the load moved %v, want 900 and 100", w)
	}
	stop()
	mu.Lock()
	insts[0].Last.PktRate = 1000
	mu.Unlock()
	clk.Advance(time.Second)
	if w = weights(); w["127-10-1-1.pcscf.dc0.ims.local."] != 900 {
		t.Fatalf("weights changed after stop: %v", w)
	}
}

var _ WeightedZone = (*discovery.Server)(nil)
