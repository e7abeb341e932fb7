package dataplane

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// transitDC is DC 1 of 2 hosting the whole chain of 0→1 (a tunnel arrival
// at stage 1) with insts[s-1] working and live in stage s, and the pack
// limit pack on every stage.
func transitDC(t *testing.T, insts [3][]routing.InstanceLoad, pack float64) Inputs {
	t.Helper()
	tb, err := routing.NewTable(routing.Config{DC: 1, N: 2, Stages: 3, Paths: map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 1, 1, 1, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	var live [routing.MaxStages]map[uint8]Ports
	for s := 1; s <= 3; s++ {
		live[s-1] = map[uint8]Ports{}
		for _, x := range insts[s-1] {
			live[s-1][x.Index] = InstancePorts(s, x.Index)
		}
		if err := tb.SetInstances(s, insts[s-1]); err != nil {
			t.Fatal(err)
		}
		if err := tb.SetPackLimit(s, pack); err != nil {
			t.Fatal(err)
		}
	}
	return Inputs{Table: tb, Live: live, UsersMAC: UsersMAC(1)}
}

var (
	tpSrcRe = regexp.MustCompile(`,tp_src=(0x[0-9a-f]+)/(0x[0-9a-f]+)`)
	reg1Re  = regexp.MustCompile(`set_field:(0x[0-9a-f]+)/0x[0-9a-f]+->reg1`)
	outRe   = regexp.MustCompile(`,output:(\d+)$`)
)

// ruleFor returns the one tag rule whose match takes a tunnel arrival from
// source port sp (the rules differ only in tp_src), failing the test when
// none or several do.
func ruleFor(t *testing.T, tags []ovs.Flow, sp uint16) ovs.Flow {
	t.Helper()
	var hit []ovs.Flow
	for _, f := range tags {
		if m := tpSrcRe.FindStringSubmatch(f.Match); m != nil {
			v, _ := strconv.ParseUint(m[1], 0, 16)
			mask, _ := strconv.ParseUint(m[2], 0, 16)
			if uint64(sp)&mask != v {
				continue
			}
		}
		hit = append(hit, f)
	}
	if len(hit) != 1 {
		t.Fatalf("source port %d matches %d tag rules, want 1: %v", sp, len(hit), hit)
	}
	return hit[0]
}

// instancesOf reads the instances a tag rule writes for stages 1..3: the
// routing bytes it loads into reg1, and checks it outputs to stage 1's.
func instancesOf(t *testing.T, f ovs.Flow) [3]uint8 {
	t.Helper()
	m, o := reg1Re.FindStringSubmatch(f.Actions), outRe.FindStringSubmatch(f.Actions)
	if m == nil || o == nil {
		t.Fatalf("rule %s: no reg1 or output", f)
	}
	v, _ := strconv.ParseUint(m[1], 0, 32)
	var x [3]uint8
	for s := 1; s <= 3; s++ {
		x[s-1] = routing.StageByte(routing.IPv4(v), s)
	}
	if out, _ := strconv.Atoi(o[1]); out != InstancePorts(1, x[0]).In {
		t.Fatalf("rule %s outputs to %d, its stage-1 byte names %d", f, out, x[0])
	}
	return x
}

// spreadOf sends one source port of each bucket through the tag rules and
// counts the buckets per instance of each stage.
func spreadOf(t *testing.T, tags []ovs.Flow) [3]map[uint8]int {
	t.Helper()
	var c [3]map[uint8]int
	for s := range c {
		c[s] = map[uint8]int{}
	}
	for b := uint16(0); b < splitBuckets; b++ {
		x := instancesOf(t, ruleFor(t, tags, 40000+b<<1))
		// bit 0 and the bits above the bucket's choose nothing
		for _, sp := range []uint16{40000 + b<<1 + 1, 4097 + b<<1} {
			if y := instancesOf(t, ruleFor(t, tags, sp)); y != x {
				t.Fatalf("source port %d goes to %v, %d of the same bucket to %v", sp, y, 40000+b<<1, x)
			}
		}
		for s := range c {
			c[s][x[s]]++
		}
	}
	return c
}

// A tag rule of a DC with several instances of a stage spreads the tunnel
// arrivals over the instances Route would give the next splitBatch (2)
// flows (before: every one went to the instance PickInstance named when the
// rules were compiled): without packing the least-loaded ones, 8 buckets
// each; one rule when a stage has one instance.
func TestCompileTagRuleSplitsOverTheInstances(t *testing.T) {
	in := transitDC(t, [3][]routing.InstanceLoad{{{Index: 10}}, {{Index: 20, Load: 3}, {Index: 21}, {Index: 22}}, {{Index: 30, Load: 100}, {Index: 31}}}, 0)
	fs, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	tags := tagRules(fs)
	c := spreadOf(t, tags)
	// stage 3: loads 100 and 0, the empty one takes the next flows as Route
	// would (the equal shares before gave it half)
	want := [3]map[uint8]int{{10: 16}, {21: 8, 22: 8}, {31: 16}}
	for s := range want {
		if !maps.Equal(c[s], want[s]) {
			t.Errorf("stage %d: buckets per instance %v, want %v", s+1, c[s], want[s])
		}
	}
	if len(tags) != 2 {
		t.Errorf("%d tag rules, want 2: %v", len(tags), tags)
	}

	one := transitDC(t, [3][]routing.InstanceLoad{{{Index: 10}}, {{Index: 20}}, {{Index: 30}}}, 0)
	fs, err = Compile(one)
	if err != nil {
		t.Fatal(err)
	}
	if tags := tagRules(fs); len(tags) != 1 || tpSrcRe.MatchString(tags[0].Match) {
		t.Fatalf("one instance per stage: %v, want one rule without a source-port match", tags)
	}
}

// With packing the next flows go where Route packs them: the most-loaded
// instance with room (not the emptiest, which packing is emptying so that
// it can be trimmed); an overloaded or full instance gets no bucket while
// another has room.
func TestCompileTagRuleSplitFollowsPacking(t *testing.T) {
	in := transitDC(t, [3][]routing.InstanceLoad{
		{{Index: 10, Load: 5}, {Index: 11}},                                                   // room 5 and 10: the fuller, 10
		{{Index: 20, Load: 9}, {Index: 21, Load: 1}},                                          // room 1 on 20: one flow each (before: 2 and 14 buckets)
		{{Index: 30, Load: 10}, {Index: 31, Load: 3, Overloaded: true}, {Index: 32, Load: 6}}, // 30 full, 31 overloaded: 32
	}, 10)
	fs, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	c := spreadOf(t, tagRules(fs))
	want := [3]map[uint8]int{{10: 16}, {20: 8, 21: 8}, {32: 16}}
	for s := range want {
		if !maps.Equal(c[s], want[s]) {
			t.Errorf("stage %d: buckets per instance %v, want %v", s+1, c[s], want[s])
		}
	}
	for s := 1; s <= 3; s++ {
		if pi, _ := in.Table.PickInstance(s); c[s-1][pi] < splitBuckets/2 {
			t.Errorf("stage %d: the instance Route fills next (%d) gets %d of %d buckets: %v", s, pi, c[s-1][pi], splitBuckets, c[s-1])
		}
	}
}

// Ties go to the instance listed first, as in Route, and an instance
// without ports (routed, not live) is left out of the pick: the next gets
// its buckets.
func TestCompileTagRuleSplitTiesAndPortlessInstances(t *testing.T) {
	a := [3][]routing.InstanceLoad{{{Index: 10}, {Index: 11}, {Index: 12}}, {{Index: 20}}, {{Index: 30}, {Index: 31}}}
	fs, err := Compile(transitDC(t, a, 0))
	if err != nil {
		t.Fatal(err)
	}
	if c := spreadOf(t, tagRules(fs)); !maps.Equal(c[0], map[uint8]int{10: 8, 11: 8}) {
		t.Fatalf("stage 1 of three idle instances: %v, want the first two listed alike", c[0])
	}
	in := transitDC(t, a, 0)
	delete(in.Live[0], 11)
	fs, err = Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	if c := spreadOf(t, tagRules(fs)); !maps.Equal(c[0], map[uint8]int{10: 8, 12: 8}) {
		t.Fatalf("stage 1 without 11's ports: %v, want 10 and 12 alike", c[0])
	}
}

func TestApportion(t *testing.T) {
	for _, c := range []struct {
		w    []float64
		want []int
	}{
		{[]float64{1, 1, 1}, []int{6, 5, 5}},
		{[]float64{1, 0}, []int{16, 0}},
		{[]float64{0, 0}, nil},
		{[]float64{3, 1}, []int{12, 4}},
		{[]float64{1, 2, 1, 2, 1, 2}, []int{2, 4, 2, 3, 2, 3}}, // .78 ×3 first, then the earlier .56
	} {
		var sh []routing.Share
		for i, w := range c.w {
			sh = append(sh, routing.Share{Index: uint8(10 + i), Weight: w})
		}
		got := apportion(sh, splitBuckets)
		if !slices.Equal(got, c.want) {
			t.Errorf("apportion(%v) = %v, want %v", c.w, got, c.want)
		}
	}
}
