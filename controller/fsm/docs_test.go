package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// topo3 has three DCs; "a" hosts the S-CSCF.
func topo3() Topology {
	t := topo()
	t.DCs = []string{"a", "b", "c"}
	t.DelayMs = [][]float64{{0, 10, 20}, {10, 0, 15}, {20, 15, 0}}
	return t
}

func seeded(t *testing.T) *FSM {
	t.Helper()
	f := New()
	if err := apply(f, SetTopology{Topology: topo3()}); err != nil {
		t.Fatal(err)
	}
	if err := apply(f, SetPolicy{Policy: Policy{DelayBoundMs: 250}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// rejected applies c, wants an error naming want, and the state unchanged.
func rejected(t *testing.T, f *FSM, c Command, want string) {
	t.Helper()
	before := f.full()
	err := apply(f, c)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%T %+v: err = %v, want it to name %q", c, c, err, want)
	}
	if !reflect.DeepEqual(before, f.full()) {
		t.Fatalf("rejected %T changed the state", c)
	}
}

func TestPutDeleteDoc(t *testing.T) {
	f := seeded(t)
	for _, tc := range []struct{ name, key, doc, want string }{
		{"unknown prefix", "secret/x", `{}`, "must start with"},
		{"no name", "policy/", `{}`, "the name after"},
		{"slash in name", "labels/a/b", `{}`, "the name after"},
		{"space in name", "policy/a b", `{}`, "the name after"},
		{"name too long", "policy/" + strings.Repeat("x", 64), `{}`, "the name after"},
		{"bad json", "policy/p", `{"a":`, "doc: not valid JSON"},
		{"not an object", "policy/p", `[1,2]`, "doc: must be a JSON object"},
		{"null", "policy/p", `null`, "doc: must be a JSON object"},
		{"empty", "policy/p", ``, "doc: not valid JSON"},
		{"too large", "policy/p", `{"a":"` + strings.Repeat("x", MaxDocBytes) + `"}`, "doc: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// ApplyCommand: the raw bytes reach the handler (Encode would
			// refuse invalid JSON before)
			before := f.full()
			err := f.ApplyCommand(PutDoc{Key: tc.key, Doc: json.RawMessage(tc.doc)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
			if !reflect.DeepEqual(before, f.full()) {
				t.Fatal("rejected PutDoc changed the state")
			}
		})
	}
	t.Run("bad delete key", func(t *testing.T) { rejected(t, f, DeleteDoc{Key: "x"}, "must start with") })

	// a document is stored in the form encoding/json gives it, so the raft
	// path (encoded) and the single-node path (ApplyCommand) agree
	doc := json.RawMessage("{ \"name\": \"night\",\n \"note\": \"<b>&</b>\" }")
	viaRaft, direct := seeded(t), seeded(t)
	if err := apply(viaRaft, PutDoc{Key: "policy/night", Doc: doc}); err != nil {
		t.Fatal(err)
	}
	if err := direct.ApplyCommand(PutDoc{Key: "policy/night", Doc: doc}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(viaRaft.full(), direct.full()) {
		t.Fatalf("raft and direct apply differ: %s vs %s", viaRaft.full().Docs["policy/night"], direct.full().Docs["policy/night"])
	}
	if got := string(direct.State().Docs["policy/night"]); got != `{"name":"night","note":"\u003cb\u003e\u0026\u003c/b\u003e"}` {
		t.Fatalf("stored %s", got)
	}
	// replacing, deleting, deleting again (no-op)
	if err := apply(direct, PutDoc{Key: "policy/night", Doc: json.RawMessage(`{"v":2}`)}); err != nil {
		t.Fatal(err)
	}
	if got := string(direct.State().Docs["policy/night"]); got != `{"v":2}` {
		t.Fatalf("replaced: %s", got)
	}
	for range 2 {
		if err := apply(direct, DeleteDoc{Key: "policy/night"}); err != nil {
			t.Fatal(err)
		}
		if s := direct.State(); s.Docs != nil {
			t.Fatalf("docs after delete: %v", s.Docs)
		}
	}
}

func TestDocBounds(t *testing.T) {
	f := seeded(t)
	for i := range MaxDocs {
		if err := f.ApplyCommand(PutDoc{Key: fmt.Sprintf("op/o%d", i), Doc: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	rejected(t, f, PutDoc{Key: "op/one-more", Doc: json.RawMessage(`{}`)}, "at most 1024")
	if err := apply(f, PutDoc{Key: "op/o0", Doc: json.RawMessage(`{"replaced":true}`)}); err != nil {
		t.Fatalf("replacing at the count bound: %v", err)
	}
	// total size
	g := seeded(t)
	big := json.RawMessage(`{"a":"` + strings.Repeat("x", MaxDocBytes-10) + `"}`)
	n := MaxDocsBytes / len(big)
	for i := range n {
		if err := g.ApplyCommand(PutDoc{Key: fmt.Sprintf("policy/p%d", i), Doc: big}); err != nil {
			t.Fatal(err)
		}
	}
	rejected(t, g, PutDoc{Key: "policy/last", Doc: big}, "would take")
}

func TestSetDrain(t *testing.T) {
	f := seeded(t)
	rejected(t, New(), SetDrain{DC: "b", Drain: true}, "no topology")
	for _, tc := range []struct {
		name string
		c    SetDrain
		want string
	}{
		{"unknown dc", SetDrain{DC: "z", Drain: true}, `drain.dc: "z" is not a datacenter`},
		{"unknown dc undrain", SetDrain{DC: "z"}, `drain.dc: "z" is not a datacenter`},
		{"s-cscf dc", SetDrain{DC: "a", Drain: true}, "hosts the S-CSCF"},
	} {
		t.Run(tc.name, func(t *testing.T) { rejected(t, f, tc.c, tc.want) })
	}
	steps := []struct {
		c    SetDrain
		want []string
	}{
		{SetDrain{DC: "c", Drain: true}, []string{"c"}},
		{SetDrain{DC: "c", Drain: true}, []string{"c"}}, // idempotent
		{SetDrain{DC: "b", Drain: true}, []string{"b", "c"}},
		{SetDrain{DC: "c"}, []string{"b"}},
		{SetDrain{DC: "c"}, []string{"b"}}, // not drained: no-op
		{SetDrain{DC: "b"}, nil},
	}
	for i, st := range steps {
		if err := apply(f, st.c); err != nil {
			t.Fatalf("step %d %+v: %v", i, st.c, err)
		}
		if got := f.State().Drained; !slices.Equal(got, st.want) || (st.want == nil && got != nil) {
			t.Fatalf("step %d %+v: drained %q, want %q", i, st.c, got, st.want)
		}
	}
	// the last undrained DC: with the S-CSCF DC "a" alone in its own
	// topology, "a" is both; make a topology where it is not the S-CSCF DC
	g := New()
	two := topo()
	two.SCSCFDC = "b"
	if err := apply(g, SetTopology{Topology: two}); err != nil {
		t.Fatal(err)
	}
	if err := apply(g, SetDrain{DC: "a", Drain: true}); err != nil {
		t.Fatal(err)
	}
	// b hosts the S-CSCF; even without that rule it is the last undrained
	if err := checkDrained(&two, []string{"a", "b"}); err == nil {
		t.Fatal("every DC drained accepted")
	}
	three := topo3()
	if err := checkDrained(&three, []string{"b", "c"}); err != nil {
		t.Fatalf("b and c drained, a left: %v", err)
	}
	three.SCSCFDC = "c"
	if err := checkDrained(&three, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := checkDrained(&three, []string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), "S-CSCF") && !strings.Contains(err.Error(), "undrained") {
		t.Fatalf("all drained: %v", err)
	}
	if err := checkDrained(&Topology{DCs: []string{"a", "b", "c"}, SCSCFDC: "x"}, []string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), "at least one must stay undrained") {
		t.Fatalf("all drained: %v", err)
	}
	if err := checkDrained(&three, []string{"b", "a"}); err == nil || !strings.Contains(err.Error(), "sorted") {
		t.Fatalf("unsorted: %v", err)
	}
}

func TestSetPolicyLimits(t *testing.T) {
	rejected(t, New(), SetPolicy{Policy: Policy{DelayBoundMs: 1, Limits: []Limit{{VNF: "fw", Max: 2}}}}, "policy.limits: no topology")
	f := seeded(t)
	pol := func(ls ...Limit) SetPolicy { return SetPolicy{Policy: Policy{DelayBoundMs: 250, Limits: ls}} }
	for _, tc := range []struct {
		name string
		c    SetPolicy
		want string
	}{
		{"unknown vnf", pol(Limit{VNF: "dpi", Max: 1}), "policy.limits[0].vnf"},
		{"unknown dc", pol(Limit{VNF: "fw"}, Limit{DC: "z", VNF: "fw", Max: 1}), "policy.limits[1].dc"},
		{"negative min", pol(Limit{VNF: "fw", Min: -1}), "policy.limits[0].min"},
		{"negative max", pol(Limit{VNF: "fw", Max: -1}), "policy.limits[0].max"},
		{"max below min", pol(Limit{VNF: "fw", Min: 3, Max: 2}), "policy.limits[0].max"},
		{"duplicate", pol(Limit{DC: "b", VNF: "fw", Max: 2}, Limit{DC: "b", VNF: "fw", Max: 3}), "policy.limits[1]: repeats policy.limits[0]"},
		{"too many", pol(make([]Limit, MaxLimits+1)...), "at most 4096"},
		{"dp above routable", pol(Limit{VNF: "fw", Min: 12000, Max: 12000}), "policy.limits[0].min: 12000 is above 253"},
		{"dp max above routable", pol(Limit{DC: "a", VNF: "fw", Max: 254}), "policy.limits[0].max: 254 is above 253"},
		{"cp above sanity", pol(Limit{VNF: "pcscf", Max: 1 << 31}), "policy.limits[0].max: 2147483648 is above the sanity limit of 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) { rejected(t, f, tc.c, tc.want) })
	}
	ok := pol(Limit{VNF: "fw", Min: 1, Max: 4}, Limit{DC: "b", VNF: "fw", Min: 0, Max: 0}, Limit{DC: "c", VNF: "pcscf", Min: 2, Max: 2},
		Limit{VNF: "scscf", Min: 1})
	if err := apply(f, ok); err != nil {
		t.Fatal(err)
	}
	if got := f.State().Policy.Limits; !reflect.DeepEqual(got, ok.Policy.Limits) {
		t.Fatalf("limits %+v", got)
	}
	// a topology that no longer has what the limits or the drain name
	if err := apply(f, SetDrain{DC: "c", Drain: true}); err != nil {
		t.Fatal(err)
	}
	noFW := topo3()
	noFW.Stages[0].Name = "ids"
	rejected(t, f, SetTopology{Topology: noFW}, "policy.limits[0].vnf")
	if err := apply(f, pol()); err != nil {
		t.Fatal(err)
	}
	rejected(t, f, SetTopology{Topology: topo()}, `drained datacenter "c"`)
	scscfC := topo3()
	scscfC.SCSCFDC = "c"
	rejected(t, f, SetTopology{Topology: scscfC}, "hosts the S-CSCF")
}

// Snapshot → restore gives back limits, drained DCs and documents; Clone is
// deep for them (a copy's edits do not reach the FSM).
func TestSnapshotCarriesOperatorState(t *testing.T) {
	f := seeded(t)
	for _, c := range []Command{
		SetPolicy{Policy: Policy{DelayBoundMs: 200, Limits: []Limit{{VNF: "fw", Min: 1, Max: 3}, {DC: "b", VNF: "fw", Max: 1}}}},
		SetDrain{DC: "c", Drain: true},
		SetDrain{DC: "b", Drain: true},
		PutDoc{Key: "policy/night", Doc: json.RawMessage(`{"name": "night", "tau": 3, "x": "<&>"}`)},
		PutDoc{Key: "labels/b", Doc: json.RawMessage(`{"group":"asia","region":"ap-east-1"}`)},
		PutDoc{Key: "op/drain-1", Doc: json.RawMessage(`{"id":"drain-1","kind":"DRAIN"}`)},
	} {
		if err := apply(f, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	for _, c := range fullRound(0) {
		if err := apply(f, c); err != nil {
			t.Fatal(err)
		}
	}
	want := f.full()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g, _ := restored(t, snap)
	got := g.full()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored differs:\n got %+v\nwant %+v", got, want)
	}
	if !slices.Equal(got.Drained, []string{"b", "c"}) || len(got.Policy.Limits) != 2 || len(got.Docs) != 3 {
		t.Fatalf("restored drained %q limits %+v docs %d", got.Drained, got.Policy.Limits, len(got.Docs))
	}
	// copies are independent
	c := f.State()
	c.Drained[0] = "zz"
	c.Policy.Limits[0].Max = 99
	c.Docs["policy/x"] = json.RawMessage(`{}`)
	delete(c.Docs, "labels/b")
	if !reflect.DeepEqual(f.full(), want) {
		t.Fatal("editing a State copy changed the FSM")
	}
	d := CloneDecision(protocol.DCDecision{DC: "a", Limits: []protocol.VNFLimit{{VNF: "fw", Max: 2}}})
	e := CloneDecision(d)
	e.Limits[0].Max = 5
	if d.Limits[0].Max != 2 {
		t.Fatal("CloneDecision shares the limits")
	}
}

func TestReadSnapshotOperatorStateErrors(t *testing.T) {
	topoJSON, _ := json.Marshal(topo3())
	state := func(extra string) string {
		return `{"t":"meta","v":1}` + "\n" + `{"t":"state","state":{"topology":` + string(topoJSON) + extra + `}}`
	}
	for _, tc := range []struct{ name, in, want string }{
		{"drained s-cscf dc", state(`,"drained":["a"]`), "S-CSCF"},
		{"drained unknown", state(`,"drained":["z"]`), `"z" is not a datacenter`},
		{"drained unsorted", state(`,"drained":["c","b"]`), "sorted"},
		{"drained no topology", `{"t":"meta","v":1}` + "\n" + `{"t":"state","state":{"drained":["b"]}}`, "without a topology"},
		{"limit unknown vnf", state(`,"policy":{"delayBoundMs":1,"limits":[{"vnf":"dpi","max":1}]}`), "limits[0].vnf"},
		{"bad doc key", state(`,"docs":{"x/y":{}}`), "must start with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSnapshot(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Property: any sequence of drain and document commands keeps the drained
// set sorted, unique, inside the topology, without the S-CSCF DC and with
// one DC undrained; the documents' keys are valid; two FSMs (one through the
// encoding, one direct) never diverge.
func TestOperatorCommandProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dcs := []string{"a", "b", "c", "z"}
		keys := []string{"policy/p", "policy/q", "labels/b", "op/drain-1", "bad/k", "policy/"}
		docs := []string{`{}`, `{"a": 1}`, `{"s":"<>"}`, `[1]`, `nil`}
		cmd := rapid.Custom(func(t *rapid.T) Command {
			switch rapid.IntRange(0, 2).Draw(t, "kind") {
			case 0:
				return SetDrain{DC: rapid.SampledFrom(dcs).Draw(t, "dc"), Drain: rapid.Bool().Draw(t, "drain")}
			case 1:
				return PutDoc{Key: rapid.SampledFrom(keys).Draw(t, "key"), Doc: json.RawMessage(rapid.SampledFrom(docs).Draw(t, "doc"))}
			default:
				return DeleteDoc{Key: rapid.SampledFrom(keys).Draw(t, "key")}
			}
		})
		seq := rapid.SliceOfN(cmd, 0, 30).Draw(t, "commands")
		a, b := New(), New()
		top := topo3()
		_ = a.ApplyCommand(SetTopology{Topology: top})
		_ = apply(b, SetTopology{Topology: top})
		for _, c := range seq {
			ea := a.ApplyCommand(c)
			var eb error
			if enc, err := Encode(c); err != nil {
				eb = err // invalid JSON cannot be encoded: rejected either way
			} else {
				eb = b.ApplyBytes(enc)
			}
			if (ea == nil) != (eb == nil) {
				t.Fatalf("%T %+v: direct %v, encoded %v", c, c, ea, eb)
			}
		}
		s := a.full()
		if !reflect.DeepEqual(s, b.full()) {
			t.Fatal("direct and encoded FSMs diverged")
		}
		if err := checkDrained(&top, s.Drained); err != nil {
			t.Fatal(err)
		}
		for k, d := range s.Docs {
			if ValidateDocKey(k) != nil || !json.Valid(d) || d[0] != '{' {
				t.Fatalf("doc %q = %s", k, d)
			}
		}
	})
}

// BenchmarkStateWithDocs measures State() (the copy every reader takes)
// with 100 operation records, 20 saved policies and 4 labels documents.
func BenchmarkStateWithDocs(b *testing.B) {
	f := New()
	top := topo3()
	if err := f.ApplyCommand(SetTopology{Topology: top}); err != nil {
		b.Fatal(err)
	}
	for i := range 124 {
		key := fmt.Sprintf("op/drain-%d", i)
		if i >= 100 {
			key = fmt.Sprintf("policy/p%d", i)
		}
		if err := f.ApplyCommand(PutDoc{Key: key, Doc: json.RawMessage(`{"id":"x","kind":"DRAIN","state":"PROCESSING"}`)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = f.State()
	}
}

// DrainOperation: the drain flag and the operation records in one entry,
// pruned inside Apply, all or nothing.
func TestDrainOperation(t *testing.T) {
	f := seeded(t)
	rec := func(ids ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for _, id := range ids {
			m[DocOp+id] = json.RawMessage(`{"id":"` + id + `"}`)
		}
		return m
	}
	for i := 1; i <= 3; i++ {
		if err := apply(f, PutDoc{Key: DocOp + "scale-" + strconv.Itoa(i), Doc: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Changes()
	if err := apply(f, DrainOperation{DC: "b", Drain: true, Records: rec("drain-4"), KeepOps: 3}); err != nil {
		t.Fatal(err)
	}
	st := f.State()
	if f.Changes() != before+1 || !slices.Equal(st.Drained, []string{"b"}) {
		t.Fatalf("drained %v after %d changes", st.Drained, f.Changes()-before)
	}
	if _, ok := st.Docs[DocOp+"scale-1"]; ok || st.Docs[DocOp+"drain-4"] == nil || st.Docs[DocOp+"scale-2"] == nil {
		t.Fatalf("records after pruning to 3: %v", slices.Sorted(maps.Keys(st.Docs)))
	}
	// refusals change nothing: the S-CSCF DC, the last undrained DC, a
	// record outside op/
	for _, tc := range []struct {
		c    DrainOperation
		want string
	}{
		{DrainOperation{DC: "a", Drain: true, Records: rec("drain-5")}, "S-CSCF"},
		{DrainOperation{DC: "c", Drain: true, Records: map[string]json.RawMessage{"policy/x": json.RawMessage(`{}`)}}, "must start with"},
		{DrainOperation{DC: "c", Drain: true, Records: rec("drain-5"), KeepOps: -1}, "keepOps"},
	} {
		rejected(t, f, tc.c, tc.want)
	}
	var dr *DrainRefusedError
	if err := apply(f, DrainOperation{DC: "a", Drain: true}); !errors.As(err, &dr) {
		t.Fatalf("refused drain: %v, want *DrainRefusedError", err)
	}
	if err := apply(f, DrainOperation{DC: "b", Drain: false, Records: rec("drain-4", "undrain-5")}); err != nil {
		t.Fatal(err)
	}
	if st := f.State(); len(st.Drained) != 0 || st.Docs[DocOp+"undrain-5"] == nil {
		t.Fatalf("undrain: drained %v", st.Drained)
	}
	if OpSeq("op/drain-12") != 12 || OpSeq("x") != 0 {
		t.Fatal("OpSeq")
	}
}
