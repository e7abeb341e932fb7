package drivers

import (
	"context"
	"errors"
	"sync"
)

// Unlimited is a QuotaReporter's answer for a flavor the cloud sets no
// limit on.
const Unlimited = -1

// QuotaReporter is an optional capability of a Driver, declared like Drainer
// and Killer: a caller type-asserts (d.(drivers.QuotaReporter)) and treats a
// driver without it as one whose quota is unknown. The local controller asks
// at every proactive round's acquire step and puts the answer into its
// provision report (protocol.VNFProvision.QuotaLeft); the global controller
// keeps the last reported value and the planner routes around a datacenter
// whose quota leaves a VNF no room to grow (Snapshot.Headroom).
type QuotaReporter interface {
	// QuotaLeft returns, for each spec (all in datacenter dc), how many more
	// instances like it the cloud would accept now (its flavor against the
	// project's remaining instances, cores and RAM), or Unlimited. Each
	// answer assumes the others' instances are not launched: the quota is
	// shared, so the sum over specs can exceed what fits. After a Launch
	// failed with ErrQuota, the answer for that spec's flavor is 0 until an
	// instance of the datacenter is terminated or a launch succeeds again.
	QuotaLeft(ctx context.Context, dc string, specs []Spec) ([]int, error)
}

// QuotaHits remembers the flavors whose last launch in a datacenter failed
// with ErrQuota, so that a QuotaReporter answers 0 for them even when the
// cloud's counters (read a moment earlier, or not counting what refused the
// launch) still show room. A termination in the datacenter or a successful
// launch of the flavor forgets it. The zero value is ready; it is safe for
// concurrent use.
type QuotaHits struct {
	mu  sync.Mutex
	hit map[string]map[string]bool // dc → flavor
}

// Launched records the outcome of a launch of flavor in dc.
func (q *QuotaHits) Launched(dc, flavor string, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case err == nil:
		delete(q.hit[dc], flavor)
	case errors.Is(err, ErrQuota):
		if q.hit == nil {
			q.hit = map[string]map[string]bool{}
		}
		if q.hit[dc] == nil {
			q.hit[dc] = map[string]bool{}
		}
		q.hit[dc][flavor] = true
	}
}

// Terminated forgets every quota failure in dc.
func (q *QuotaHits) Terminated(dc string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.hit, dc)
}

// Hit reports whether the last launch of flavor in dc failed with ErrQuota.
func (q *QuotaHits) Hit(dc, flavor string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.hit[dc][flavor]
}
