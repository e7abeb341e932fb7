package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/strategy"
	"pgregory.net/rapid"
)

// fields returns the invalid fields of err (nil when err is nil).
func fields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var out []string
	for _, f := range ve.Errors {
		if f.Reason == "" {
			t.Fatalf("field %s without a reason", f.Field)
		}
		out = append(out, f.Field)
	}
	return out
}

func goodPolicy() Policy {
	return Policy{Name: "p", IntervalSeconds: 50, Tau: 10, DelayBoundMs: 250, Predictor: "holt+q90", Strategy: strategy.Hybrid.Name(),
		Limits: []Limit{{VNF: "ids", Min: 1, Max: 4}, {DC: "dc0", VNF: "ids", Min: 0, Max: 2}}}
}

func goodType() VNFType {
	return VNFType{Name: "ids", Plane: PlaneDP, Image: "img", Flavor: "m1", Capacity: 20000,
		Thresholds: Thresholds{CPU: 90, Mem: 50, PktRate: 2000}}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		v    interface{ Validate() error }
		want []string // invalid fields, in order
	}{
		{name: "datacenters ok", v: DatacenterList{Datacenters: []Datacenter{{Name: "dc0", Group: "g0", Region: "RegionOne", AZ: "nova"}}}},
		{name: "datacenters empty list ok", v: DatacenterList{Datacenters: []Datacenter{}}},
		{name: "datacenters missing", v: DatacenterList{}, want: []string{"datacenters"}},
		{name: "datacenter duplicate and bad fields", v: DatacenterList{Datacenters: []Datacenter{
			{Name: "dc0", Group: "g0"}, {Name: "dc0", Group: ""}, {Name: "a b", Group: "g", AZ: "x/y"}}},
			want: []string{"datacenters[1].name", "datacenters[1].group", "datacenters[2].name", "datacenters[2].az"}},
		{name: "delays ok", v: DelayMatrix{Datacenters: []string{"a", "b"}, DelaysMs: [][]float64{{0, 5}, {7, 0}}}},
		{name: "delays empty", v: DelayMatrix{}, want: []string{"datacenters"}},
		{name: "delays wrong rows", v: DelayMatrix{Datacenters: []string{"a", "b"}, DelaysMs: [][]float64{{0, 5}}}, want: []string{"delaysMs"}},
		{name: "delays ragged, negative, diagonal, huge, NaN", v: DelayMatrix{Datacenters: []string{"a", "b", "c"},
			DelaysMs: [][]float64{{0, -1, 1e9}, {1, 2, math.NaN()}, {0, 0}}},
			want: []string{"delaysMs[0][1]", "delaysMs[0][2]", "delaysMs[1][1]", "delaysMs[1][2]", "delaysMs[2]"}},
		{name: "delays duplicate DC", v: DelayMatrix{Datacenters: []string{"a", "a"}, DelaysMs: [][]float64{{0, 1}, {1, 0}}}, want: []string{"datacenters[1]"}},
		{name: "vnf types ok", v: VNFTypeList{VNFTypes: []VNFType{goodType()}}},
		{name: "vnf type every field wrong", v: VNFTypeList{VNFTypes: []VNFType{{Name: "", Plane: "mp", Capacity: -1,
			Thresholds: Thresholds{CPU: 101, Mem: 0, PktRate: math.Inf(1)}}}},
			want: []string{"vnfTypes[0].name", "vnfTypes[0].plane", "vnfTypes[0].image", "vnfTypes[0].flavor", "vnfTypes[0].capacity",
				"vnfTypes[0].thresholds.cpu", "vnfTypes[0].thresholds.mem", "vnfTypes[0].thresholds.pktRate"}},
		{name: "vnf type duplicate", v: VNFTypeList{VNFTypes: []VNFType{goodType(), goodType()}}, want: []string{"vnfTypes[1].name"}},
		{name: "chains ok", v: ChainList{Chains: []Chain{{Name: "dp", Stages: []string{"firewall", "ids", "transcoder"}}}}},
		{name: "chain without stages, repeated stage", v: ChainList{Chains: []Chain{{Name: "a"}, {Name: "b", Stages: []string{"x", "x"}}}},
			want: []string{"chains[0].stages", "chains[1].stages[1]"}},
		{name: "policy ok", v: goodPolicy()},
		{name: "policy with parameters ok", v: func() Policy { p := goodPolicy(); p.Predictor = "arp:maxp=6,ic=bic+q95:win=50"; return p }()},
		{name: "policy every scalar wrong", v: Policy{Name: "", IntervalSeconds: 0, Tau: 100000, DelayBoundMs: 0, Predictor: "", Strategy: "greedy"},
			want: []string{"name", "intervalSeconds", "tau", "delayBoundMs", "predictor", "strategy"}},
		{name: "policy predictor with spaces", v: func() Policy { p := goodPolicy(); p.Predictor = "ar1; rm -rf"; return p }(), want: []string{"predictor"}},
		{name: "policy limits wrong", v: func() Policy {
			p := goodPolicy()
			p.Limits = []Limit{{VNF: "ids", Min: -1, Max: 0}, {VNF: "ids", Min: 5, Max: 3}, {DC: "bad dc", VNF: "", Min: 0, Max: 1}}
			return p
		}(), want: []string{"limits[0].min", "limits[0].max", "limits[1]", "limits[1].max", "limits[2].dc", "limits[2].vnf"}},
		{name: "scale ok", v: ScaleRequest{DC: "dc0", VNF: "ids", Type: ScaleIn, NumberOfSteps: 3}},
		{name: "scale wrong", v: ScaleRequest{Type: "OUT", NumberOfSteps: MaxScaleSteps + 1}, want: []string{"dc", "vnf", "type", "numberOfSteps"}},
		{name: "drain ok", v: DrainRequest{DC: "dc0"}},
		{name: "drain without dc", v: DrainRequest{}, want: []string{"dc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fields(t, tc.v.Validate())
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("invalid fields %v, want %v (%v)", got, tc.want, tc.v.Validate())
			}
		})
	}
}

func TestValidateBoundsSizes(t *testing.T) {
	dcs := make([]Datacenter, MaxDatacenters+1)
	if got := fields(t, DatacenterList{Datacenters: dcs}.Validate()); fmt.Sprint(got) != "[datacenters]" {
		t.Fatalf("oversized list: %v", got)
	}
	stages := make([]string, MaxStages+1)
	for i := range stages {
		stages[i] = fmt.Sprintf("s%d", i)
	}
	if got := fields(t, ChainList{Chains: []Chain{{Name: "c", Stages: stages}}}.Validate()); fmt.Sprint(got) != "[chains[0].stages]" {
		t.Fatalf("long chain: %v", got)
	}
	// routing.MaxStages: the flow tag encodes 3 data-plane stages, so a
	// 4-stage chain is refused where chains are validated.
	four := ChainList{Chains: []Chain{{Name: "dp", Stages: []string{"firewall", "ids", "transcoder", "dpi"}}}}
	if err := four.Validate(); err == nil || !strings.Contains(err.Error(), "1 to 3") {
		t.Fatalf("4-stage chain: %v", err)
	}
	long := strings.Repeat("x", 64)
	if got := fields(t, DrainRequest{DC: long}.Validate()); fmt.Sprint(got) != "[dc]" {
		t.Fatalf("64-character name: %v", got)
	}
}

func TestDiff(t *testing.T) {
	p := goodPolicy()
	q := goodPolicy()
	q.Tau = 12
	q.Limits = append(q.Limits[:1:1], Limit{VNF: "firewall", Min: 1, Max: 2})
	dcsA := DatacenterList{Datacenters: []Datacenter{{Name: "dc0", Group: "g0"}, {Name: "dc1", Group: "g0"}}}
	dcsB := DatacenterList{Datacenters: []Datacenter{{Name: "dc1", Group: "g1", AZ: "z"}, {Name: "dc2", Group: "g1"}}}
	cases := []struct {
		name     string
		old, new any
		want     string
	}{
		{name: "equal", old: p, new: p, want: "[]"},
		{name: "scalar and array by index", old: p, new: q,
			want: "[{limits[1].dc dc0 <nil>} {limits[1].min 0 1} {limits[1].vnf ids firewall} {tau 10 12}]"},
		{name: "named elements matched by name", old: dcsA, new: dcsB,
			want: "[{datacenters[dc1].az <nil> z} {datacenters[dc1].group g0 g1} {datacenters[dc2] <nil> map[group:g1 name:dc2]} {datacenters[dc0] map[group:g0 name:dc0] <nil>}]"},
		{name: "matrix cell", old: DelayMatrix{Datacenters: []string{"a", "b"}, DelaysMs: [][]float64{{0, 5}, {5, 0}}},
			new: DelayMatrix{Datacenters: []string{"a", "b"}, DelaysMs: [][]float64{{0, 5}, {9, 0}}}, want: "[{delaysMs[1][0] 5 9}]"},
		{name: "from nothing", old: map[string]any{}, new: Chain{Name: "c", Stages: []string{"x"}}, want: "[{name <nil> c} {stages <nil> [x]}]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.old, tc.new)
			if got == nil {
				t.Fatal("nil diff")
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("diff\n got %v\nwant %s", got, tc.want)
			}
		})
	}
	// Equal leaves are never listed.
	for _, c := range Diff(p, q) {
		if fmt.Sprint(c.From) == fmt.Sprint(c.To) {
			t.Fatalf("unchanged leaf listed: %+v", c)
		}
	}
}

func TestJSONFieldErrors(t *testing.T) {
	cases := []struct {
		name, body, field, reason string
	}{
		{name: "unknown top-level", body: `{"tau":1,"color":"red"}`, field: "color", reason: "not a known field"},
		{name: "nested type", body: `{"limits":[{"vnf":"a","min":"x"}]}`, field: "limits.min", reason: "an integer"},
		{name: "string for number", body: `{"delayBoundMs":"250"}`, field: "delayBoundMs", reason: "a number"},
		{name: "object for string", body: `{"predictor":{}}`, field: "predictor", reason: "a string"},
		{name: "syntax", body: `{"tau":}`, field: "body", reason: "not valid JSON"},
		{name: "truncated", body: `{"tau":1`, field: "body", reason: "ends before"},
		{name: "trailing", body: `{} []`, field: "body", reason: "after the JSON value"},
		{name: "top-level type", body: `"policy"`, field: "body", reason: "an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p Policy
			fe := decodeStrict([]byte(tc.body), &p)
			if fe == nil {
				t.Fatal("accepted")
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("got %+v, want field %q reason containing %q", fe, tc.field, tc.reason)
			}
		})
	}
}

// genPolicy draws policies from small domains so that equal and nearly
// equal pairs are frequent.
func genPolicy(t *rapid.T, label string) Policy {
	p := Policy{
		Name:            rapid.SampledFrom([]string{"a", "b"}).Draw(t, label+"name"),
		IntervalSeconds: rapid.IntRange(0, 3).Draw(t, label+"interval"),
		Tau:             rapid.IntRange(1, 2).Draw(t, label+"tau"),
		DelayBoundMs:    rapid.SampledFrom([]float64{50, 250}).Draw(t, label+"bound"),
		Predictor:       rapid.SampledFrom([]string{"ar1", "holt+q90"}).Draw(t, label+"pred"),
		Strategy:        rapid.SampledFrom([]string{strategy.Hybrid.Name(), strategy.Reactive.Name()}).Draw(t, label+"strategy"),
	}
	n := rapid.IntRange(0, 3).Draw(t, label+"limits")
	for i := range n {
		p.Limits = append(p.Limits, Limit{
			DC:  rapid.SampledFrom([]string{"", "dc0"}).Draw(t, fmt.Sprintf("%sdc%d", label, i)),
			VNF: rapid.SampledFrom([]string{"ids", "firewall"}).Draw(t, fmt.Sprintf("%svnf%d", label, i)),
			Min: rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("%smin%d", label, i)),
			Max: rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("%smax%d", label, i)),
		})
	}
	return p
}

// TestDiffProperties: a diff is empty exactly when the JSON forms are
// equal, lists each path once, never lists an unchanged leaf, and has as
// many entries both ways with From and To swapped.
func TestDiffProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genPolicy(t, "a."), genPolicy(t, "b.")
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		ab, ba := Diff(a, b), Diff(b, a)
		if (len(ab) == 0) != bytes.Equal(ja, jb) {
			t.Fatalf("diff %v for %s vs %s", ab, ja, jb)
		}
		if len(ab) != len(ba) {
			t.Fatalf("asymmetric: %v vs %v", ab, ba)
		}
		rev := map[string]Change{}
		for _, c := range ba {
			rev[c.Path] = c
		}
		seen := map[string]bool{}
		for _, c := range ab {
			if seen[c.Path] {
				t.Fatalf("path %s twice", c.Path)
			}
			seen[c.Path] = true
			if reflect.DeepEqual(c.From, c.To) {
				t.Fatalf("unchanged leaf %+v", c)
			}
			r, ok := rev[c.Path]
			if !ok || !reflect.DeepEqual(r.From, c.To) || !reflect.DeepEqual(r.To, c.From) {
				t.Fatalf("%+v has no mirror in %v", c, ba)
			}
		}
		if len(Diff(a, a)) != 0 {
			t.Fatal("a value differs from itself")
		}
	})
}
