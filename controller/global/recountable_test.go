package global

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// recountable's guards, each on its own: the closer's word for the
// interval this engine measures counts a dropped entry again, and
// nothing else does — in particular not while this engine's own close is
// in flight (the defence-in-depth guard TestDroppedIntakeReportCountedOnce
// cannot reach: a real close in flight holds the next interval's intake).
func TestRecountableGuards(t *testing.T) {
	const closer, other = "c1", "c2"
	dropped := seenAt{in: 0 | droppedIntake}
	word := &protocol.CountedBy{Engine: closer, Interval: 1}
	for _, tc := range []struct {
		name    string
		word    *protocol.CountedBy
		seen    seenAt
		closed  string
		closing bool
		want    bool
	}{
		{name: "closer's word for the measured interval", word: word, seen: dropped, closed: closer, want: true},
		{name: "no word", seen: dropped, closed: closer},
		{name: "entry not dropped", word: word, seen: seenAt{in: 0}, closed: closer},
		{name: "closer unknown", word: word, seen: dropped},
		{name: "word of another engine", word: word, seen: dropped, closed: other},
		{name: "word for another interval", word: &protocol.CountedBy{Engine: closer, Interval: 2}, seen: dropped, closed: closer},
		{name: "own close in flight", word: word, seen: dropped, closed: closer, closing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{inFor: 1}
			if tc.closing {
				in := newIntake()
				e.closing, e.closingFor = &in, 0
			}
			r := protocol.WorkloadReport{CountedBy: tc.word}
			if got := e.recountable(r, tc.seen, transport.Counted{ClosedBy: tc.closed}); got != tc.want {
				t.Fatalf("recountable = %v, want %v", got, tc.want)
			}
		})
	}
}
