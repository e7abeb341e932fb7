package vnf

import "testing"

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"P-CSCF", "pcscf"}, {"p_cscf", "pcscf"}, {"S CSCF", "scscf"}, {"FW", "firewall"}, {"Firewall", "firewall"},
		{"IDS", "ids"}, {"my-vnf", "myvnf"},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !Same("fw", "FIREWALL") || Same("ids", "firewall") {
		t.Error("Same disagrees with Normalize")
	}
}

// TestTable2 pins the paper's figures (design card, Table 2).
func TestTable2(t *testing.T) {
	want := map[string][5]float64{ // capacity, cpu, mem, pkt, plane (0 cp, 1 dp)
		"pcscf": {500, 70, 50, 1000, 0}, "scscf": {200, 70, 50, 400, 0},
		"firewall": {35000, 90, 50, 35000, 1}, "ids": {20000, 90, 50, 2000, 1}, "transcoder": {15000, 90, 50, 15000, 1},
	}
	tab := Table2()
	if len(tab) != len(want) {
		t.Fatalf("%d types, want %d", len(tab), len(want))
	}
	for _, ty := range tab {
		w, ok := want[ty.Key()]
		if !ok {
			t.Fatalf("unexpected type %q", ty.Name)
		}
		plane := map[Plane]float64{ControlPlane: 0, DataPlane: 1}[ty.Plane]
		if got := [5]float64{ty.Capacity, ty.Thresholds.CPU, ty.Thresholds.Mem, ty.Thresholds.PktRate, plane}; got != w {
			t.Errorf("%s: %v, want %v", ty.Name, got, w)
		}
		if l, ok := Lookup(ty.Name); !ok || l != ty {
			t.Errorf("Lookup(%q) = %v, %v", ty.Name, l, ok)
		}
	}
	tab[0].Capacity = 1
	if l, _ := Lookup("pcscf"); l.Capacity != 500 {
		t.Error("Table2 returned the shared table")
	}
	if _, ok := Lookup("fw"); !ok {
		t.Error("alias fw unknown")
	}
	if _, ok := Lookup("hss"); ok {
		t.Error("hss is not in Table 2")
	}
	for _, n := range DataPlaneChain() {
		if ty, ok := Lookup(n); !ok || ty.Plane != DataPlane {
			t.Errorf("chain stage %q: %v %v", n, ty, ok)
		}
	}
}

func TestDefaultThresholdsTable2(t *testing.T) {
	tests := []struct {
		name string
		want Thresholds
	}{
		{"P-CSCF", Thresholds{70, 50, 1000}},
		{"scscf", Thresholds{70, 50, 400}},
		{"Firewall", Thresholds{90, 50, 35000}},
		{"IDS", Thresholds{90, 50, 2000}},
		{"transcoder", Thresholds{90, 50, 15000}},
	}
	for _, tc := range tests {
		got, ok := DefaultThresholds(tc.name)
		if !ok || got != tc.want {
			t.Errorf("%s: %+v %v", tc.name, got, ok)
		}
	}
	if _, ok := DefaultThresholds("nat"); ok {
		t.Error("unknown VNF has defaults")
	}
}

// TestComplete: what a type leaves zero comes from Table 2 for a catalog
// name in any spelling; what it states stays; other names are unchanged.
func TestComplete(t *testing.T) {
	got := Type{Name: "FW", Capacity: 1000}.Complete()
	if want := (Type{Name: "FW", Plane: DataPlane, Capacity: 1000, Thresholds: Thresholds{CPU: 90, Mem: 50, PktRate: 35000}}); got != want {
		t.Fatalf("FW: %+v, want %+v", got, want)
	}
	th := Thresholds{CPU: 1, Mem: 2, PktRate: 3}
	if got := (Type{Name: "p_cscf", Thresholds: th}).Complete(); got.Capacity != 500 || got.Thresholds != th || got.Plane != ControlPlane {
		t.Fatalf("p_cscf: %+v", got)
	}
	if got := (Type{Name: "dpi"}).Complete(); got != (Type{Name: "dpi"}) {
		t.Fatalf("dpi: %+v", got)
	}
}
