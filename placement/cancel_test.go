package placement

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// stepCtx is a context that counts its Err checks and is cancelled at the
// cancelAt-th (0: never): the plan's steps are counted, not timed. trace[i]
// is how many path searches stop had run at check i+1.
type stepCtx struct {
	context.Context
	stop             *stopper
	checks, cancelAt int
	trace            []int
	done             chan struct{}
}

// stepPlan plans s under a stepCtx cancelled at check cancelAt (0: never).
func stepPlan(s *Snapshot, opt Options, cancelAt int) (*Decision, *stepCtx, error) {
	c := &stepCtx{Context: context.Background(), cancelAt: cancelAt, done: make(chan struct{})}
	c.stop = &stopper{ctx: c}
	d, err := planStopping(c.stop, s, opt)
	return d, c, err
}

func (c *stepCtx) Done() <-chan struct{} { return c.done }

func (c *stepCtx) Err() error {
	c.checks++
	c.trace = append(c.trace, c.stop.searches)
	if c.cancelAt > 0 && c.checks == c.cancelAt {
		close(c.done)
	}
	if c.cancelAt > 0 && c.checks >= c.cancelAt {
		return context.Canceled
	}
	return nil
}

// A plan cancelled between its steps stops at the first check after the
// cancellation: no path search and no check after it, no decision, an error
// wrapping context.Canceled. Checked at points in Alg. 1's pair searches, a
// drained DC's pairs, the improvement phase and its second start; a context
// that is never cancelled gives Plan's decision.
func TestPlanContextStopsAtTheNextStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Snapshot
		opt  Options
	}{
		{"alg1", benchSnap(30, 3), Options{}},
		{"improve", benchSnap(30, 3), Options{Improve: ImproveOptions{Budget: 200}}},
		{"second start", benchSnap(12, 3), Options{Improve: ImproveOptions{Budget: 5000}}},
		{"drained", func() *Snapshot {
			s := benchSnap(30, 3)
			s.Excluded = make([]bool, s.N)
			s.Excluded[5], s.Excluded[17] = true, true
			return s
		}(), Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Plan(tc.s, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got, full, err := stepPlan(tc.s, tc.opt, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatal("PlanContext with a context never done planned differently from Plan")
			}
			n, searches := full.checks, full.stop.searches
			if n < 100 || searches < n/2 {
				t.Fatalf("a full plan made %d checks and %d searches: want ≥ 100 checks, about one per search", n, searches)
			}
			t.Logf("a full plan: %d checks, %d searches", n, searches)
			for _, at := range []int{1, 2, n / 3, n / 2, n - 1, n} {
				dec, c, err := stepPlan(tc.s, tc.opt, at)
				if !errors.Is(err, context.Canceled) || dec != nil {
					t.Fatalf("cancelled at check %d of %d: decision %v, err %v; want none and context.Canceled", at, n, dec != nil, err)
				}
				if c.checks != at {
					t.Errorf("cancelled at check %d of %d: the plan checked again, %d checks", at, n, c.checks)
				}
				// the uncancelled plan had run full.trace[at-1] searches at
				// this check: a stopped plan runs none after it
				if c.stop.searches != full.trace[at-1] {
					t.Errorf("cancelled at check %d of %d: %d searches run, want the %d before the check", at, n, c.stop.searches, full.trace[at-1])
				}
			}
		})
	}
}
