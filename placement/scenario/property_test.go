package scenario

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
	"gopkg.in/yaml.v3"
	"pgregory.net/rapid"
)

// genScenario draws a valid scenario: 1-6 datacenters, 1-4 stages, either
// delay form, random instances, loopless current paths and workloads.
func genScenario(t *rapid.T) *Scenario {
	n := rapid.IntRange(1, 6).Draw(t, "n")
	names := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z][a-z0-9-]{0,7}`), n, n, rapid.ID[string]).Draw(t, "dcs")
	sc := &Scenario{
		Version:      rapid.SampledFrom([]int{0, 1}).Draw(t, "version"),
		Name:         rapid.StringMatching(`[a-z0-9 -]{0,12}`).Draw(t, "name"),
		DelayBoundMs: rapid.Float64Range(0.5, 500).Draw(t, "bound"),
	}
	ms := func(label string) float64 {
		// Whole and fractional milliseconds.
		return float64(rapid.IntRange(0, 4000).Draw(t, label)) / 8
	}
	if rapid.Bool().Draw(t, "groupForm") {
		g := rapid.IntRange(1, n).Draw(t, "groups")
		for i := 0; i < g; i++ {
			sc.Delays.Groups = append(sc.Delays.Groups, fmt.Sprintf("g%d", i))
		}
		sc.Delays.GroupMatrixMs = make([][]float64, g)
		for i := range sc.Delays.GroupMatrixMs {
			sc.Delays.GroupMatrixMs[i] = make([]float64, g)
			for j := range sc.Delays.GroupMatrixMs[i] {
				if i != j {
					sc.Delays.GroupMatrixMs[i][j] = ms(fmt.Sprintf("gd%d.%d", i, j))
				}
			}
		}
		intra := ms("intra")
		sc.Delays.IntraGroupMs = &intra
		for i, name := range names {
			sc.Datacenters = append(sc.Datacenters, Datacenter{Name: name, Group: sc.Delays.Groups[rapid.IntRange(0, g-1).Draw(t, fmt.Sprintf("group%d", i))]})
		}
	} else {
		sc.Delays.MatrixMs = make([][]float64, n)
		for i := range sc.Delays.MatrixMs {
			sc.Delays.MatrixMs[i] = make([]float64, n)
			for j := range sc.Delays.MatrixMs[i] {
				if i != j {
					sc.Delays.MatrixMs[i][j] = ms(fmt.Sprintf("d%d.%d", i, j))
				}
			}
		}
		for _, name := range names {
			sc.Datacenters = append(sc.Datacenters, Datacenter{Name: name})
		}
	}

	m := rapid.IntRange(1, 4).Draw(t, "m")
	stageNames := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z]{1,10}`), m, m, rapid.ID[string]).Draw(t, "stages")
	capOf := map[string]float64{}
	for _, s := range stageNames {
		c := rapid.Float64Range(1, 1e5).Draw(t, "cap-"+s)
		sc.DataPlane.Stages = append(sc.DataPlane.Stages, Stage{Name: s, Capacity: c})
		capOf[s] = c
	}
	sc.ControlPlane = ControlPlane{
		SCSCFDatacenter: rapid.SampledFrom(names).Draw(t, "scscfDC"),
		PCSCF:           CPVNF{Capacity: rapid.Float64Range(1, 1000).Draw(t, "pcap"), Min: rapid.IntRange(0, 3).Draw(t, "pmin")},
		SCSCF:           CPVNF{Capacity: rapid.Float64Range(1, 1000).Draw(t, "scap"), Min: rapid.IntRange(0, 3).Draw(t, "smin")},
	}
	if rapid.Bool().Draw(t, "customCPNames") {
		sc.ControlPlane.PCSCF.Name, sc.ControlPlane.SCSCF.Name = "P_CSCF", "S_CSCF"
	}
	pName, sName := sc.CPNames()
	capOf[pName], capOf[sName] = sc.ControlPlane.PCSCF.Capacity, sc.ControlPlane.SCSCF.Capacity
	for _, dc := range names {
		if dc != sc.ControlPlane.SCSCFDatacenter && rapid.IntRange(0, 3).Draw(t, "drain-"+dc) == 0 {
			sc.Drained = append(sc.Drained, dc)
		}
	}

	for _, dc := range names {
		vnfs := append(append([]string{}, stageNames...), pName)
		if dc == sc.ControlPlane.SCSCFDatacenter {
			vnfs = append(vnfs, sName)
		}
		for _, v := range vnfs {
			if !rapid.Bool().Draw(t, "has-"+dc+"-"+v) {
				continue
			}
			w := rapid.IntRange(0, 10).Draw(t, "w")
			in := Instance{Datacenter: dc, VNF: v, Working: w, Buffered: rapid.IntRange(0, 5).Draw(t, "b")}
			if w > 0 && rapid.Bool().Draw(t, "reserve") {
				in.Reserved = float64(w) * capOf[v] * float64(rapid.IntRange(0, 4).Draw(t, "quarters")) / 4
			}
			sc.Instances = append(sc.Instances, in)
		}
	}
	for _, e := range names {
		for _, x := range names {
			if rapid.Bool().Draw(t, "path-"+e+"-"+x) {
				// k stages at the entry, the rest at the exit: loopless.
				k := rapid.IntRange(1, m+1).Draw(t, "k")
				p := CurrentPath{Entry: e, Exit: x}
				for i := 0; i < m+2; i++ {
					if i < k {
						p.Path = append(p.Path, e)
					} else {
						p.Path = append(p.Path, x)
					}
				}
				sc.Paths = append(sc.Paths, p)
			}
			if rapid.Bool().Draw(t, "load-"+e+"-"+x) {
				sc.Workload = append(sc.Workload, Workload{Entry: e, Exit: x,
					CP: rapid.Float64Range(0, 100).Draw(t, "cp"), DP: rapid.Float64Range(0, 1e4).Draw(t, "dp")})
			}
		}
	}
	return sc
}

// TestPropertyRoundTrip: a valid scenario written as JSON or as YAML parses
// back to itself, and its snapshot validates and carries exactly the file's
// numbers at the indices of the names.
func TestPropertyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sc := genScenario(t)
		js, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := Parse(js)
		if err != nil {
			t.Fatalf("JSON: %v\n%s", err, js)
		}
		if !reflect.DeepEqual(fromJSON, sc) {
			t.Fatalf("JSON round trip changed the scenario:\n%+v\n%+v", sc, fromJSON)
		}
		var generic any
		if err := json.Unmarshal(js, &generic); err != nil {
			t.Fatal(err)
		}
		ys, err := yaml.Marshal(generic)
		if err != nil {
			t.Fatal(err)
		}
		fromYAML, err := Parse(ys)
		if err != nil {
			t.Fatalf("YAML: %v\n%s", err, ys)
		}
		if !reflect.DeepEqual(fromYAML, sc) {
			t.Fatalf("YAML round trip changed the scenario:\n%+v\n%+v\n%s", sc, fromYAML, ys)
		}

		s, err := sc.Snapshot()
		if err != nil {
			t.Fatalf("valid scenario rejected: %v", err)
		}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		idx := map[string]int{}
		for i, dc := range sc.Datacenters {
			idx[dc.Name] = i
		}
		if s.SCSCFDC != idx[sc.ControlPlane.SCSCFDatacenter] {
			t.Fatalf("S-CSCF DC %d", s.SCSCFDC)
		}
		drained := 0
		for i, x := range s.Excluded {
			if x {
				drained++
				if !slices.Contains(sc.Drained, sc.Datacenters[i].Name) {
					t.Fatalf("%s excluded but not drained %v", sc.Datacenters[i].Name, sc.Drained)
				}
			}
		}
		if drained != len(sc.Drained) || (s.Excluded != nil) != (len(sc.Drained) > 0) {
			t.Fatalf("drained %v became excluded %v", sc.Drained, s.Excluded)
		}
		for _, w := range sc.Workload {
			pr := placement.Pair{Entry: idx[w.Entry], Exit: idx[w.Exit]}
			if s.DPWorkload[pr] != w.DP || s.CPWorkload[pr] != w.CP {
				t.Fatalf("workload %+v became dp %g cp %g", w, s.DPWorkload[pr], s.CPWorkload[pr])
			}
		}
		for _, p := range sc.Paths {
			got := s.CurrentPaths[placement.Pair{Entry: idx[p.Entry], Exit: idx[p.Exit]}]
			for i, name := range p.Path {
				if got[i] != idx[name] {
					t.Fatalf("path %v became %v", p.Path, got)
				}
			}
		}
		stage := map[string]int{}
		for i, st := range sc.DataPlane.Stages {
			stage[st.Name] = i
		}
		pName, _ := sc.CPNames()
		for _, in := range sc.Instances {
			want := placement.Provision{Working: in.Working, Buffered: in.Buffered, Reserved: in.Reserved}
			var got placement.Provision
			switch st, ok := stage[in.VNF]; {
			case ok:
				got = s.DP[idx[in.Datacenter]][st]
			case in.VNF == pName:
				got = s.PCSCFProv[idx[in.Datacenter]]
			default:
				got = s.SCSCFProv
			}
			if got != want {
				t.Fatalf("instance %+v became %+v", in, got)
			}
		}
		for i := range sc.Datacenters {
			for j := range sc.Datacenters {
				if sc.Delays.MatrixMs != nil && s.Delay[i][j] != sc.Delays.MatrixMs[i][j] {
					t.Fatalf("delay %d→%d = %g", i, j, s.Delay[i][j])
				}
			}
		}
	})
}
