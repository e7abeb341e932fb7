package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

func topo() Topology {
	return Topology{
		DCs:     []string{"a", "b"},
		SCSCFDC: "a",
		PCSCF:   VNF{Name: "pcscf", Capacity: 500, Min: 1},
		SCSCF:   VNF{Name: "scscf", Capacity: 200, Min: 1},
		Stages:  []VNF{{Name: "fw", Capacity: 35000}},
		DelayMs: [][]float64{{0, 10}, {10, 0}},
	}
}

func apply(f *FSM, c Command) error {
	b, err := Encode(c)
	if err != nil {
		return err
	}
	r := f.Apply(&raft.Log{Type: raft.LogCommand, Data: b})
	if r == nil {
		return nil
	}
	return r.(error)
}

// fullRound is a round's commands in order.
func fullRound(r uint64) []Command {
	return []Command{
		RoundStarted{Round: r},
		RoundStepDone{Round: r, Step: protocol.StepPredict, Prediction: &Prediction{Actual: map[string]float64{"dp/a/b": float64(r)}, Predicted: map[string]float64{"dp/a/b": 1}}},
		RoundStepDone{Round: r, Step: protocol.StepAcquire, Provisions: map[string]protocol.ProvisionReport{"a": {DC: "a", VNFs: []protocol.VNFProvision{{VNF: "fw", Working: 2, QuotaLeft: new(3)}}, Features: []string{protocol.FeatureKeepBuffered}}}, Unreachable: []string{"b"}},
		DecisionCommitted{Round: r, Decision: []protocol.DCDecision{{DC: "a", Interval: r + 1}}, Paths: []protocol.PathEntry{{Entry: "a", Exit: "b", Hops: []string{"a", "a", "b"}}}},
		RoundStepDone{Round: r, Step: protocol.StepBroadcast},
		IntervalEntered{Round: r},
	}
}

func TestRoundOrder(t *testing.T) {
	f := New()
	if err := apply(f, SetTopology{Topology: topo()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range fullRound(0) {
		if err := apply(f, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	s := f.State()
	if s.Interval != 1 || s.Round != nil || len(s.Paths) != 1 || s.Stale["b"] != 0 || len(f.History()) != 1 {
		t.Fatalf("after round 0: %+v", s)
	}
	if _, ok := s.Stale["b"]; !ok {
		t.Fatalf("b given up at step 2 is not stale: %v", s.Stale)
	}
	if s.LastProvision["a"].VNFs[0].Working != 2 {
		t.Fatalf("last provision not kept: %v", s.LastProvision)
	}
	// the last reported quota is kept, and a copy of the state does not share it
	if q := s.LastProvision["a"].VNFs[0].QuotaLeft; q == nil || *q != 3 {
		t.Fatalf("last reported quota not kept: %v", q)
	}
	*s.LastProvision["a"].VNFs[0].QuotaLeft = 9
	if q := f.State().LastProvision["a"].VNFs[0].QuotaLeft; *q != 3 {
		t.Fatalf("a state copy shares the quota: %d", *q)
	}
	// the advertised features are kept (the stage floor's hold reads them),
	// and a copy of the state does not share them either
	if !s.LastProvision["a"].Has(protocol.FeatureKeepBuffered) {
		t.Fatalf("advertised features not kept: %v", s.LastProvision["a"].Features)
	}
	s.LastProvision["a"].Features[0] = "other"
	if !f.State().LastProvision["a"].Has(protocol.FeatureKeepBuffered) {
		t.Fatalf("a state copy shares the features: %v", f.State().LastProvision["a"].Features)
	}
	// Every command of round 0 again is stale and changes nothing.
	before := f.State()
	for _, c := range fullRound(0) {
		if err := apply(f, c); !errors.Is(err, ErrStale) {
			t.Fatalf("replayed %T: err = %v, want ErrStale", c, err)
		}
	}
	if !reflect.DeepEqual(before, f.State()) {
		t.Fatal("stale commands changed the state")
	}
	// Out of order within round 1.
	for _, tc := range []struct {
		name string
		c    Command
	}{
		{"step 2 before start", RoundStepDone{Round: 1, Step: protocol.StepAcquire}},
		{"future round", RoundStarted{Round: 5}},
		{"enter before broadcast", IntervalEntered{Round: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := apply(f, tc.c); !errors.Is(err, ErrStale) {
				t.Fatalf("err = %v, want ErrStale", err)
			}
		})
	}
	if err := apply(f, RoundStarted{Round: 1}); err != nil {
		t.Fatal(err)
	}
	if err := apply(f, RoundStepDone{Round: 1, Step: protocol.StepCompute}); err == nil || errors.Is(err, ErrStale) {
		t.Fatalf("RoundStepDone step 3: err = %v, want a plain error", err)
	}
	if err := apply(f, RoundStepDone{Round: 1, Step: protocol.StepPredict}); err == nil || !strings.Contains(err.Error(), "prediction") {
		t.Fatalf("step 1 without prediction: err = %v", err)
	}
}

func TestStaleClearedWhenDCAnswersAgain(t *testing.T) {
	f := New()
	_ = apply(f, SetTopology{Topology: topo()})
	for _, c := range fullRound(0) {
		_ = apply(f, c)
	}
	r1 := fullRound(1)
	r1[2] = RoundStepDone{Round: 1, Step: protocol.StepAcquire}
	for _, c := range r1 {
		if err := apply(f, c); err != nil {
			t.Fatal(err)
		}
	}
	if s := f.State(); s.Stale != nil {
		t.Fatalf("stale = %v after b answered round 1", s.Stale)
	}
}

func TestInvalidInput(t *testing.T) {
	bad := topo()
	bad.DCs = []string{"a", "a/b"}
	for _, tc := range []struct {
		name string
		c    Command
		want string
	}{
		{"bad dc name", SetTopology{Topology: bad}, "dcs[1]"},
		{"missing scscf dc", SetTopology{Topology: func() Topology { t := topo(); t.SCSCFDC = "z"; return t }()}, "scscfDC"},
		{"ragged delays", SetTopology{Topology: func() Topology { t := topo(); t.DelayMs[1] = []float64{1}; return t }()}, "delayMs[1]"},
		{"zero capacity", SetTopology{Topology: func() Topology { t := topo(); t.Stages[0].Capacity = 0; return t }()}, "capacity"},
		{"bad bound", SetPolicy{Policy: Policy{DelayBoundMs: -1}}, "delayBoundMs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := apply(New(), tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{{"empty", nil}, {"unknown type", []byte{200, '{', '}'}}, {"bad json", []byte{byte(RoundStartedType), '{'}}} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.b); err == nil {
				t.Fatal("decoded garbage")
			}
		})
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

// restored persists snap into a sink and restores a new FSM from the
// sink's bytes: the round trip a follower's snapshot install takes. It
// returns the FSM and the sink (the snapshot as written).
func restored(t *testing.T, snap raft.FSMSnapshot) (*FSM, *sink) {
	t.Helper()
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	return g, &s
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := New()
	_ = apply(f, SetTopology{Topology: topo()})
	_ = apply(f, SetPolicy{Policy: Policy{DelayBoundMs: 250}})
	for r := uint64(0); r < 3; r++ {
		for _, c := range fullRound(r) {
			if err := apply(f, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range fullRound(3)[:4] { // a round in progress at step 3
		if err := apply(f, c); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	_ = apply(f, fullRound(3)[4]) // after Snapshot: must not be in it
	g, s := restored(t, snap)
	got := g.full()
	if got.Round.Done != protocol.StepCompute || len(got.History) != 4 || got.Interval != 3 {
		t.Fatalf("restored: interval %d, done %d, history %d", got.Interval, got.Round.Done, len(got.History))
	}
	want := New()
	_ = apply(want, SetTopology{Topology: topo()})
	_ = apply(want, SetPolicy{Policy: Policy{DelayBoundMs: 250}})
	for r := uint64(0); r < 4; r++ {
		cmds := fullRound(r)
		if r == 3 {
			cmds = cmds[:4]
		}
		for _, c := range cmds {
			_ = apply(want, c)
		}
	}
	if !reflect.DeepEqual(got, want.full()) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", got, want.full())
	}
	lines := strings.Count(s.String(), "\n")
	if lines != 2+4 {
		t.Fatalf("snapshot has %d records, want meta + state + 4 history", lines)
	}
}

func TestReadSnapshotErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no state record"},
		{"no meta", `{"t":"state","state":{}}`, "before meta"},
		{"version", `{"t":"meta","v":9}`, "version 9"},
		{"unknown", `{"t":"meta","v":1}` + "\n" + `{"t":"x"}`, `unknown record type "x"`},
		{"history first", `{"t":"meta","v":1}` + "\n" + `{"t":"history","history":{}}`, "before state"},
		{"bad topology", `{"t":"meta","v":1}` + "\n" + `{"t":"state","state":{"topology":{"dcs":[]}}}`, "topology.dcs"},
		{"garbage", "{", "record 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSnapshot(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Property: applying any sequence of round commands is deterministic, never
// panics, and the interval index equals the number of IntervalEntered that
// were accepted.
func TestApplyProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		all := []Command{}
		for r := uint64(0); r < 3; r++ {
			all = append(all, fullRound(r)...)
		}
		seq := rapid.SliceOfN(rapid.SampledFrom(all), 0, 40).Draw(t, "commands")
		a, b := New(), New()
		_ = apply(a, SetTopology{Topology: topo()})
		_ = apply(b, SetTopology{Topology: topo()})
		entered := uint64(0)
		for _, c := range seq {
			ea, eb := apply(a, c), apply(b, c)
			if (ea == nil) != (eb == nil) {
				t.Fatalf("non-deterministic apply of %T", c)
			}
			if _, ok := c.(IntervalEntered); ok && ea == nil {
				entered++
			}
		}
		if a.State().Interval != entered {
			t.Fatalf("interval %d, accepted IntervalEntered %d", a.State().Interval, entered)
		}
		if !reflect.DeepEqual(a.full(), b.full()) {
			t.Fatal("two FSMs diverged")
		}
	})
}

func FuzzDecode(f *testing.F) {
	cmds := append(fullRound(0),
		SetPolicy{Policy: Policy{DelayBoundMs: 100, Limits: []Limit{{VNF: "fw", Min: 1, Max: 2}, {DC: "b", VNF: "pcscf", Max: 3}}}},
		PutDoc{Key: "policy/night", Doc: []byte(`{"name":"night","tau":3}`)},
		PutDoc{Key: "labels/b", Doc: []byte(`{"group":"asia"}`)},
		DeleteDoc{Key: "policy/night"},
		SetDrain{DC: "b", Drain: true},
		SetDrain{DC: "b"},
		RoundStepDone{Round: 0, Step: protocol.StepPredict, Prediction: &Prediction{Actual: map[string]float64{"dp/a/b": 1}, ClosedBy: "engine-a"}})
	for _, c := range cmds {
		b, _ := Encode(c)
		f.Add(b)
	}
	top := topo()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		s := State{}
		_ = ApplyTo(&s, c) // must not panic
		_ = s.Clone()
		s = State{Topology: &top}
		before := s.Clone()
		if err := ApplyTo(&s, c); err != nil && !reflect.DeepEqual(before, s) {
			t.Fatalf("rejected %T changed the state: %v", c, err)
		}
		if err := checkDrained(&top, s.Drained); err != nil {
			t.Fatal(err)
		}
		_ = s.Clone()
	})
}

func FuzzReadSnapshot(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteSnapshot(&buf, State{Interval: 3, History: []Prediction{{Round: 1}}})
	f.Add(buf.Bytes())
	f.Add([]byte(`{"t":"meta","v":1}`))
	top := topo3()
	buf.Reset()
	_ = WriteSnapshot(&buf, State{Topology: &top, Drained: []string{"b", "c"},
		Policy: Policy{DelayBoundMs: 9, Limits: []Limit{{DC: "b", VNF: "fw", Max: 1}}},
		Docs:   map[string]json.RawMessage{"policy/p": json.RawMessage(`{"tau":3}`), "op/drain-1": json.RawMessage(`{}`)}})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteSnapshot(&out, s); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSnapshot(&out); err != nil {
			t.Fatalf("re-read of a written snapshot: %v", err)
		}
	})
}

// A single on-disk node (raft-wal + file snapshots, TCP on 127.0.0.1)
// survives a restart: the state comes back from the snapshot and the log.
func TestNodeOnDiskRestart(t *testing.T) {
	dir := t.TempDir()
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	open := func() *Node {
		n, err := NewNode(NodeConfig{ID: "n1", Dir: dir, Bind: "127.0.0.1:0", Bootstrap: true, Raft: rc})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-n.Raft.LeaderCh():
		case <-time.After(10 * time.Second):
			t.Fatal("single node did not become leader")
		}
		return n
	}
	n := open()
	if err := n.Apply(SetTopology{Topology: topo()}, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range fullRound(0) {
		if err := n.Apply(c, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	for _, c := range fullRound(1)[:3] { // in the log after the snapshot
		if err := n.Apply(c, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	want := n.FSM.full()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	n = open()
	defer n.Shutdown()
	if err := n.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := n.FSM.full(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}
	if err := n.Apply(fullRound(1)[3], time.Second); err != nil {
		t.Fatalf("continuing the round after restart: %v", err)
	}
}

// The unknown-command policy: an entry of a type this version does not know
// stops the FSM loudly (a panic naming index and type) without touching the
// state; a type with IgnoreUnknownFlag is skipped.
func TestApplyUnknownCommandStops(t *testing.T) {
	f := New()
	before := f.Changes()
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), "index 7 holds command type 99") {
				t.Fatalf("unknown command applied without stopping: recover %v", r)
			}
		}()
		f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte{99, '{', '}'}})
	}()
	if got := f.Apply(&raft.Log{Index: 8, Type: raft.LogCommand, Data: []byte{byte(IgnoreUnknownFlag | 3), '{', '}'}}); got != nil {
		t.Fatalf("ignorable unknown command: %v", got)
	}
	if f.Changes() != before {
		t.Fatal("an unknown command changed the state")
	}
	if _, err := Decode([]byte{99}); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("Decode: %v", err)
	}
	for typ := range registry {
		if typ&IgnoreUnknownFlag != 0 {
			t.Fatalf("command type %d carries IgnoreUnknownFlag", typ)
		}
	}
}
