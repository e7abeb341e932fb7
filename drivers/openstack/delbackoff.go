package openstack

import (
	"fmt"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
)

// A DELETE Nova keeps refusing (a 403 of a policy, a locked server's 409
// after Terminate's retries, a delete that keeps failing) is not sent again
// at every call: the local controller retries Terminate every tick, the
// Reconciler re-plans an orphan or a surplus server every pass, and the
// pass's re-issue of a lost delete (ReissueDeletes) comes round every pass
// — each attempt a list, a mark, the DELETE and, refused, the name back. After a server's
// delete failed, nothing deletes it again (Terminate, DeleteSurplus, the
// re-issue) before its backoff ends: delBackoffBase after the first
// failure, doubling per failure in a row, at most delBackoffMax (on the
// driver's clock). A call inside the backoff returns a *DeleteBackoffError
// (Skipped) and sends nothing to that server (Terminate, when every server
// of the id the last List showed is held and that List shows every launch
// of the id, not even its list: drivers.ErrBackoff). An accepted
// DELETE, or a list asked for after the failure that no longer shows the
// server (deleted by hand, gone) or shows it deleting, ends the backoff.
// Terminate targets the hidden servers of the id whose delete failed too,
// so it never reports success while a server of the id still runs, and
// never wedges either: once the server can be deleted
// (unlocked, the policy fixed) the next attempt, at most delBackoffMax
// later, deletes it, and one deleted by hand is seen by the next list.
const (
	delBackoffBase = 10 * time.Second
	delBackoffMax  = 5 * time.Minute
)

// DeleteBackoffError is a server whose delete failed and is not sent again
// before Next: the error of the attempt that failed (Skipped false) and of
// every call inside its backoff (Skipped true, nothing sent).
type DeleteBackoffError struct {
	DC, ID   string // our datacenter and instance id
	Server   string // Nova id
	Failures int    // failed deletes in a row
	Next     time.Time
	Skipped  bool  // this call sent nothing: inside the backoff
	Err      error // the last failure
}

func (e *DeleteBackoffError) Error() string {
	what := "failed"
	if e.Skipped {
		what = "failed before"
	}
	return fmt.Sprintf("openstack: delete of server %s (instance %s) %s (%d in a row; not sent again before %s): %v",
		e.Server, e.ID, what, e.Failures, e.Next.UTC().Format(time.RFC3339), e.Err)
}

func (e *DeleteBackoffError) Unwrap() error { return e.Err }

// backoffError is a call that tried no server: every one it would delete
// inside its backoff (Skipped *DeleteBackoffErrors, joined). It is
// drivers.ErrBackoff, so a caller knows a retry later, not a failure, without
// knowing this driver. A single DeleteBackoffError is not: in a join with a
// delete that failed now it would hide the failure.
type backoffError struct{ error }

func (e backoffError) Unwrap() error        { return e.error }
func (e backoffError) Is(target error) bool { return target == drivers.ErrBackoff }

// delFailure is one server's failed deletes.
type delFailure struct {
	dc, id string
	n      int
	at     time.Time // the last failure
	next   time.Time
	err    error
}

// delBackoffs are the servers whose delete failed, by Nova id.
type delBackoffs struct {
	mu   sync.Mutex
	byID map[string]*delFailure
}

// wait returns the Skipped error of server cloudID inside its backoff at
// now, nil when a delete may be sent.
func (b *delBackoffs) wait(cloudID string, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.byID[cloudID]
	if !ok || !now.Before(f.next) {
		return nil
	}
	return &DeleteBackoffError{DC: f.dc, ID: f.id, Server: cloudID, Failures: f.n, Next: f.next, Skipped: true, Err: f.err}
}

// failed records a failed delete of server cloudID at now and returns its
// error. A failure delBackoffMax after the previous backoff ended (nobody
// tried meanwhile: a refused surplus copy that became the instance) is a
// first failure again.
func (b *delBackoffs) failed(cloudID, dc, id string, err error, now time.Time) *DeleteBackoffError {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID = map[string]*delFailure{}
	}
	f, ok := b.byID[cloudID]
	if !ok {
		if len(b.byID) >= maxTombstones {
			return &DeleteBackoffError{DC: dc, ID: id, Server: cloudID, Failures: 1, Next: now, Err: err} // full: not remembered
		}
		f = &delFailure{dc: dc, id: id}
		b.byID[cloudID] = f
	}
	if !now.Before(f.next.Add(delBackoffMax)) {
		f.n = 0
	}
	f.n++
	f.at, f.err = now, err
	f.next = now.Add(backoffN(delBackoffBase, delBackoffMax, f.n-1))
	return &DeleteBackoffError{DC: dc, ID: id, Server: cloudID, Failures: f.n, Next: f.next, Err: err}
}

// has reports whether server cloudID's last delete failed (in its backoff
// or due again).
func (b *delBackoffs) has(cloudID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.byID[cloudID]
	return ok
}

// ok ends the backoff of server cloudID (its delete was accepted); it
// returns the failures it had (0: none).
func (b *delBackoffs) ok(cloudID string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, had := b.byID[cloudID]
	if !had {
		return 0
	}
	delete(b.byID, cloudID)
	return f.n
}

// prune ends the backoff of the servers of the DCs in dcs a list asked for
// at asked no longer shows (live: their Nova ids) and returns them. A
// failure after asked stays: the list may predate the server.
func (b *delBackoffs) prune(dcs map[string]bool, live map[string]bool, asked time.Time) map[string]delFailure {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out map[string]delFailure
	for id, f := range b.byID {
		if dcs[f.dc] && !live[id] && !f.at.After(asked) {
			if out == nil {
				out = map[string]delFailure{}
			}
			out[id] = *f
			delete(b.byID, id)
		}
	}
	return out
}

// len is the number of servers in their backoff at now.
func (b *delBackoffs) len(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, f := range b.byID {
		if now.Before(f.next) {
			n++
		}
	}
	return n
}
