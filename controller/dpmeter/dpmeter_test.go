package dpmeter

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

type sink struct {
	mu   sync.Mutex
	reps []protocol.WorkloadReport
}

func (s *sink) ReportWorkload(r protocol.WorkloadReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reps = append(s.reps, r)
	return nil
}

// fakeSwitch is the entry DC's switch: cumulative packets per pair.
type fakeSwitch struct {
	c   map[Pair]uint64
	err error
}

func (f *fakeSwitch) read() (map[Pair]uint64, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := make(map[Pair]uint64, len(f.c))
	for k, v := range f.c {
		out[k] = v
	}
	return out, nil
}

func TestNewValidates(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	sw := &fakeSwitch{}
	if _, err := New(Config{DC: "x", DCs: []string{"a"}, Counters: sw.read, Report: &sink{}, Clock: clk}); err == nil || !strings.Contains(err.Error(), "DC") {
		t.Fatalf("unknown DC: %v", err)
	}
	if _, err := New(Config{DC: "a", DCs: []string{"a"}, Report: &sink{}, Clock: clk}); err == nil {
		t.Fatal("no Counters accepted")
	}
}

// The meter turns cumulative switch counters into packets/s per pair; a
// failed read is spread over the next good one; a re-created switch
// (counters back near 0) counts its new values; a pair that does not enter
// at this DC is refused.
func TestMeterRates(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(100, 0))
	sw := &fakeSwitch{c: map[Pair]uint64{{1, 0}: 1000, {1, 2}: 0}}
	out := &sink{}
	var errs []error
	m, err := New(Config{DC: "b", DCs: []string{"a", "b", "c"}, Counters: sw.read, Report: out, Clock: clk,
		OnError: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	sw.c[Pair{1, 0}] += 500
	sw.c[Pair{1, 2}] += 2000
	clk.Advance(time.Second)
	if len(out.reps) != 1 {
		t.Fatalf("reports %+v", out.reps)
	}
	r := out.reps[0]
	if r.Kind != "dp" || r.DC != "b" || len(r.Pairs) != 2 || r.Pairs[0] != (protocol.PairLoad{Entry: "b", Exit: "a", Rate: 500}) ||
		r.Pairs[1] != (protocol.PairLoad{Entry: "b", Exit: "c", Rate: 2000}) {
		t.Fatalf("report %+v", r)
	}
	sw.err = errors.New("ovs-ofctl: timeout")
	sw.c[Pair{1, 0}] += 300
	clk.Advance(time.Second)
	sw.err = nil
	sw.c[Pair{1, 0}] += 300
	clk.Advance(time.Second)
	if len(out.reps) != 2 || out.reps[1].Pairs[0].Rate != 300 || len(errs) != 1 {
		t.Fatalf("after a failed read: %+v, errors %v", out.reps, errs)
	}
	sw.c = map[Pair]uint64{{1, 0}: 40, {0, 1}: 7} // switch re-created; a foreign pair
	clk.Advance(time.Second)
	last := out.reps[2]
	if len(last.Pairs) != 1 || last.Pairs[0].Rate != 40 || len(errs) != 2 || !strings.Contains(errs[1].Error(), "0→1") {
		t.Fatalf("after a re-created switch: %+v, errors %v", last, errs)
	}
	m.Stop()
	clk.Advance(time.Minute)
	if len(out.reps) != 3 {
		t.Fatalf("%d reports after Stop", len(out.reps))
	}
}

// A read that takes time is dated at its end (a slow read of the real
// switch is slow to start; the counters are those of its end): a slow read
// (400 ms) between two fast ones does not stretch one period and shrink
// the next.
func TestMeterDatesSlowReadsAtTheirEnd(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(100, 0))
	var n uint64
	var took time.Duration
	read := func() (map[Pair]uint64, error) {
		clk.Advance(took) // the read takes this long; it returns the counters of its end
		return map[Pair]uint64{{0, 1}: n}, nil
	}
	out := &sink{}
	m, err := New(Config{DC: "a", DCs: []string{"a", "b"}, Counters: read, Report: out, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	m.Step()
	// 100 packets/s, counted at the read's end: 1.4 s after the first
	took = 400 * time.Millisecond
	clk.Advance(time.Second)
	n = 140
	if r, ok := m.Step(); !ok || r.Pairs[0].Rate != 100 {
		t.Fatalf("slow read: %+v, want 100 pkt/s", r)
	}
	took = 0
	clk.Advance(time.Second) // 1 s after the slow read's end
	n = 240
	if r, ok := m.Step(); !ok || r.Pairs[0].Rate != 100 {
		t.Fatalf("after the slow read: %+v, want 100 pkt/s", r)
	}
}

// A read whose counts come with ErrCountsLost (the switch ended a rule's
// counter unread: packets are missing from the increase) reports nothing,
// and the next read measures from its counts: the span is a missing
// measurement, not a low one. Before, the next read measured from the
// read before the loss, spreading the short increase over two periods.
func TestMeterLostCountsAreAMissingSpan(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(100, 0))
	var c uint64
	var lost bool
	read := func() (map[Pair]uint64, error) {
		out := map[Pair]uint64{{0, 1}: c}
		if lost {
			lost = false
			return out, fmt.Errorf("switch: %w", ErrCountsLost)
		}
		return out, nil
	}
	out := &sink{}
	var errs []error
	m, err := New(Config{DC: "a", DCs: []string{"a", "b"}, Counters: read, Report: out, Clock: clk,
		OnError: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	m.Step()
	// 1000 packets/s; a rule update loses 600 of the second second's
	c, lost = 1400, true
	clk.Advance(2 * time.Second)
	if r, ok := m.Step(); ok || len(out.reps) != 0 {
		t.Fatalf("a read of lost counts reported %+v (%v), want nothing", r, out.reps)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrCountsLost) {
		t.Fatalf("errors %v, want the lost counts'", errs)
	}
	c += 1000
	clk.Advance(time.Second)
	if r, ok := m.Step(); !ok || len(r.Pairs) != 1 || r.Pairs[0].Rate != 1000 {
		t.Fatalf("the read after the loss: %+v, want 1000 pkt/s (measured from the lost read's counts)", r)
	}
}
