package scenario

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
)

func TestOutputEmptyDecision(t *testing.T) {
	sc, snap := loadFile(t, filepath.Join(scenarioDir, "paper-4dc.yaml"))
	po, err := NewPlanOutput(sc, snap, &placement.Decision{}, placement.Options{Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(po)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"pairs":[]`, `"instances":[]`, `"exact":true`, `"chain":["firewall","ids","transcoder"]`, `"scscfDatacenter":"tokyo"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s\nlacks %s", b, want)
		}
	}
	var tb strings.Builder
	if err := po.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(no pairs in the decision)", "(no instance counts in the decision)", "Totals: 0 working", "exact solver"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table\n%s\nlacks %q", tb.String(), want)
		}
	}
}

// handDecision is a small decision over two-dc.json written by hand, so the
// output mapping is tested independently of the algorithm.
func handDecision() *placement.Decision {
	return &placement.Decision{
		Pairs: []placement.PairPlan{
			{Pair: placement.Pair{Entry: 1, Exit: 0}, Workload: 12000, Path: placement.Path{1, 1, 0, 0}, Delay: 22,
				Method: placement.MethodShortest, NewInstances: 2, Created: 1, DelayViolated: true, Candidates: 3, LoopsEliminated: 1, LoopMerged: 1},
			{Pair: placement.Pair{Entry: 0, Exit: 0}, Workload: 9000, Path: placement.Path{0, 0, 0, 0}, Method: placement.MethodExact},
		},
		DP: [][]placement.Count{
			{{Before: 1, Working: 1, Load: 21000}, {Before: 1, Working: 2, Reused: 1, Load: 21000}},
			{{Before: 1, Working: 1, Load: 15000}, {Before: 1, Working: 0, ToBuffer: 1, BufferedAfter: 1}},
		},
		PCSCF: []placement.Count{{Before: 1, Working: 1, Load: 50}, {Before: 1, Working: 2, Created: 1, Load: 45}},
		SCSCF: placement.Count{Before: 1, Working: 1, Load: 55},
	}
}

func TestOutputMapsNames(t *testing.T) {
	sc, snap := loadFile(t, filepath.Join(scenarioDir, "two-dc.json"))
	po, err := NewPlanOutput(sc, snap, handDecision(), placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := po.Pairs[0]
	if p.Entry != "west" || p.Exit != "east" || strings.Join(p.Path, ",") != "west,west,east,east" ||
		p.Method != "shortest-path-dp" || !p.DelayViolated || p.Created != 1 || p.NewInstances != 2 || p.LoopMerged != 1 {
		t.Fatalf("pair %+v", p)
	}
	var rows []string
	for _, r := range po.Instances {
		rows = append(rows, r.Datacenter+"/"+r.VNF+"/"+r.Plane)
	}
	want := "east/firewall/dp east/transcoder/dp east/pcscf/cp east/scscf/cp west/firewall/dp west/transcoder/dp west/pcscf/cp"
	if strings.Join(rows, " ") != want {
		t.Fatalf("rows %v, want %s", rows, want)
	}
	if r := po.Instances[1]; r.Reused != 1 || r.Working != 2 || r.Capacity != 15000 {
		t.Fatalf("east transcoder %+v", r)
	}
	if r := po.Instances[6]; r.Created != 1 || r.Capacity != 500 {
		t.Fatalf("west pcscf %+v", r)
	}
	tot := po.Totals
	if tot.Working != 8 || tot.Created != 1 || tot.Reused != 1 || tot.ToBuffer != 1 || tot.Pairs != 2 ||
		tot.ShortestPathDP != 1 || tot.Exact != 1 || tot.DelayViolated != 1 {
		t.Fatalf("totals %+v", tot)
	}

	var tb strings.Builder
	if err := po.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	table := tb.String()
	for _, want := range []string{
		"west → east", "(west, west, east, east)", "22.0 > bound", "shortest path + stage DP", "exact solver",
		"west        transcoder  1       0        0        0       1          1         0.0      -",
		"east        transcoder  1       2        0        1       0          0         21000.0  70%",
		"Totals: 8 working, 1 created, 1 reused from buffers, 1 moved to buffers",
		"2 pairs: 0 kept, 0 Alg. 2, 0 Alg. 2 extra, 1 shortest path + DP, 0 local, 1 exact; 1 over the delay bound",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table\n%s\nlacks %q", table, want)
		}
	}
}

func TestOutputRejectsForeignIndices(t *testing.T) {
	sc, snap := loadFile(t, filepath.Join(scenarioDir, "two-dc.json"))
	for name, mutate := range map[string]func(*placement.Decision){
		"path index":   func(d *placement.Decision) { d.Pairs[0].Path[1] = 5 },
		"pair entry":   func(d *placement.Decision) { d.Pairs[0].Pair.Entry = -1 },
		"dp rows":      func(d *placement.Decision) { d.DP = append(d.DP, nil) },
		"dp stages":    func(d *placement.Decision) { d.DP[0] = append(d.DP[0], placement.Count{}) },
		"pcscf rows":   func(d *placement.Decision) { d.PCSCF = append(d.PCSCF, placement.Count{}) },
		"scscf dc idx": func(*placement.Decision) {},
	} {
		t.Run(name, func(t *testing.T) {
			d := handDecision()
			mutate(d)
			s := *snap
			if name == "scscf dc idx" {
				s.SCSCFDC = 9
			}
			if _, err := NewPlanOutput(sc, &s, d, placement.Options{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
