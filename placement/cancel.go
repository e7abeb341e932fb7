package placement

import "context"

// stopper lets a plan stop between its steps when its context is done: a
// step is one pair's path search (Alg. 1 lines 5-9, a drained DC's pair),
// one search of the improvement phase, or stopEvery pairs of a pass over
// every pair (Alg. 1's kept paths, an improvement pass's set-up); the
// phases are steps too. A nil stopper never stops (Plan).
type stopper struct {
	ctx context.Context
	err error // ctx's error once a check saw it
	// searches counts the path searches run, pairs the pairs (cells) the
	// passes over every pair visited (tests: none after the stop, at most
	// stopEvery pairs)
	searches, pairs int
}

// stopEvery is how many pairs a pass over every pair handles between two
// checks (at 500 DCs a pass is 249 500 pairs, tens to hundreds of ms); a
// variable for the tests only.
var stopEvery = 4096

// newStopper returns nil for a context that can never be done.
func newStopper(ctx context.Context) *stopper {
	if ctx.Done() == nil {
		return nil
	}
	return &stopper{ctx: ctx}
}

// stopped checks the context once; after it said done, it stays done
// without checking again.
func (s *stopper) stopped() bool {
	if s == nil {
		return false
	}
	if s.err == nil {
		s.err = s.ctx.Err()
	}
	return s.err != nil
}

// searched counts one path search.
func (s *stopper) searched() {
	if s != nil {
		s.searches++
	}
}

// visited counts n pairs of a pass over every pair.
func (s *stopper) visited(n int) {
	if s != nil {
		s.pairs += n
	}
}

// failed is the error a stopped plan returns (nil: not stopped).
func (s *stopper) failed() error {
	if s == nil {
		return nil
	}
	return s.err
}
