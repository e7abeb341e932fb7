package predictor

import (
	"runtime"
	"sync"
)

// parallelMin is the least number of series a bank round splits over
// goroutines; below it the round runs inline.
const parallelMin = 1 << 14

// parallel calls body over [0, n) split into at most GOMAXPROCS contiguous
// chunks, one goroutine each, and waits for all. The chunks are disjoint, so
// a body that only touches its own series gives the same result as one
// sequential call, whatever the split.
func parallel(n int, body func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if workers <= 1 {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		wg.Go(func() { body(lo, min(lo+chunk, n)) })
	}
	wg.Wait()
}
