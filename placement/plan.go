package placement

import (
	"context"
	"fmt"
)

// Options tune a round. The zero value is the paper's algorithm with the
// project's documented tie-breaks (docs/algorithms.md).
type Options struct {
	// Exact replaces Alg. 2 by the exhaustive reference solver for every pair
	// that needs a new path (small n and m only).
	Exact bool
	// IgnoreBuffer makes path search count every added instance as new, as the
	// paper does; by default an instance reused from a DC's buffer queue costs
	// nothing, so paths prefer DCs with buffered instances.
	IgnoreBuffer bool
	// PaperOnly restricts Alg. 2 to the paper's candidates (lines 2-17). By
	// default the search also runs the stage-placement DP on short DC routes
	// (docs/algorithms.md), which brings it closer to the optimum.
	PaperOnly bool
	// LocalFirst places the entry = exit pairs (whose path is always local)
	// before the others instead of last (Alg. 1 lines 10-14), so a pair that
	// could be served elsewhere, by buffered or spare instances in another
	// DC, no longer takes the capacity they need and pushes them into
	// creating instances. It packs whole rounds tighter (gap_test); in the
	// simulator it trades instances for loss (docs/reproduction.md).
	LocalFirst bool
	// Improve configures the joint improvement phase after Alg. 1
	// (improve.go); its zero value turns it off.
	Improve ImproveOptions
}

// Plan runs one proactive round over the snapshot.
func Plan(s *Snapshot, opt Options) (*Decision, error) {
	return PlanContext(context.Background(), s, opt)
}

// PlanContext is Plan that gives up when ctx is done (a round engine that
// lost its leadership or shuts down): it checks ctx before each pair's path
// search and each search of the improvement phase, so it returns within one
// search of the cancellation, with no decision and an error wrapping
// ctx.Err(). A ctx that is never done plans exactly as Plan.
func PlanContext(ctx context.Context, s *Snapshot, opt Options) (*Decision, error) {
	return planStopping(newStopper(ctx), s, opt)
}

func planStopping(stop *stopper, s *Snapshot, opt Options) (*Decision, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if opt.Exact {
		if err := exactFeasible(s); err != nil {
			return nil, err
		}
	}
	if stop.stopped() {
		return nil, fmt.Errorf("placement: plan not started: %w", stop.failed())
	}
	d := plan(s, opt, stop)
	if err := stop.failed(); err != nil {
		return nil, fmt.Errorf("placement: plan stopped before it finished: %w", err)
	}
	return d, nil
}
