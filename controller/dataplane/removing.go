package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/drivers/netns"
)

// removalTimeout bounds a removal whose caller has no context (an
// instance's exit, a pending removal a later apply covered).
const removalTimeout = 30 * time.Second

// removal is an instance being removed: out of its DC's state (removeState,
// under mu), its flows moving off it by a rule update applied without mu,
// deleted after (finishRemoval). Until then it stays in the DC's removing
// set, so that AddInstance refuses its index (its namespace and ports
// still exist), a second RemoveInstance waits for it and Close deletes or
// waits for it.
type removal struct {
	in *netns.Instance // nil: nothing to delete (unit tests)
	// seq: the first compiled set that includes the removal (a set
	// compiled after it; publish is under mu): once a set of seq >= seq
	// is on the switch, no rule sends to the instance
	seq uint64
	// done is closed when the attempt ends; deleted and err are set
	// before: deleted, or not (its update failed: pending)
	done    chan struct{}
	deleted bool
	err     error
}

// pending says the removal's update failed and nobody deletes it: a
// successful apply that covers it (noteApplied), another RemoveInstance of
// it, or Close does.
func (r *removal) pending() bool {
	select {
	case <-r.done:
		return !r.deleted
	default:
		return false
	}
}

// nextSeq is the seq the next compiled set gets (under mu).
func (r *rulePipe) nextSeq() uint64 {
	r.slotMu.Lock()
	defer r.slotMu.Unlock()
	return r.seq + 1
}

// startRemoval puts instance in (stage, idx) of DC st into the removing
// set (under mu): a new attempt, owned by the caller.
func startRemoval(st *dcState, stage int, idx uint8, in *netns.Instance, seq uint64) *removal {
	r := &removal{in: in, seq: seq, done: make(chan struct{})}
	if st.removing[stage-1] == nil {
		st.removing[stage-1] = map[uint8]*removal{}
	}
	st.removing[stage-1][idx] = r
	return r
}

// removalUpdateUnlock is the rule update that moves the flows off r's
// instance (called with mu held, returns with it released): compiled
// under mu, applied without it (syncCompile, syncWait). Nothing is
// updated when r is nil (the instance was not live) or err, the error of
// the removal's state change (removeState), is set; err is returned then.
// The caller ends the removal (finishRemoval, failRemoval).
func (p *Plane) removalUpdateUnlock(ctx context.Context, k int, r *removal, err error) error {
	var u syncing
	if err == nil && r != nil {
		u, err = p.syncCompile(k)
	}
	p.mu.Unlock()
	if err == nil && r != nil {
		err = p.syncWait(ctx, u)
	}
	return err
}

// finishRemoval deletes r's instance (without mu) and takes it out of DC
// k's removing set.
func (p *Plane) finishRemoval(ctx context.Context, k, stage int, idx uint8, r *removal) error {
	err := p.endRemoval(ctx, r)
	p.mu.Lock()
	p.dropRemoval(k, stage, idx, r)
	p.mu.Unlock()
	return err
}

// endRemoval deletes r's instance and ends its attempt (without mu: Close
// waits for it under mu; so several removals end before any is dropped).
func (p *Plane) endRemoval(ctx context.Context, r *removal) error {
	if r.in != nil {
		r.err = p.deleteInstance(ctx, r.in)
	}
	r.deleted = true
	close(r.done)
	return r.err
}

// dropRemoval takes an ended removal out of DC k's removing set (under
// mu) unless a newer attempt replaced it.
func (p *Plane) dropRemoval(k, stage int, idx uint8, r *removal) {
	if st := p.dcs[k]; st.removing[stage-1][idx] == r {
		delete(st.removing[stage-1], idx)
	}
}

// failRemoval ends r's attempt without deleting (its update failed: the
// switch may still send to the instance): r stays pending.
func failRemoval(r *removal, err error) {
	r.err = err
	close(r.done)
}

// deleteInstance deletes an instance's namespace, processes and ports.
func (p *Plane) deleteInstance(ctx context.Context, in *netns.Instance) error {
	if p.deleteInst != nil {
		return p.deleteInst(ctx, in)
	}
	return in.Delete(ctx, p.d)
}

// beingRemoved refuses an index whose instance is still being removed
// (under mu): a new one would get the same namespace and port names.
func beingRemoved(st *dcState, dc, stage int, idx uint8) error {
	if st.removing[stage-1][idx] != nil {
		return fmt.Errorf("instance: stage %d index %d of dc%d is being removed", stage, idx, dc)
	}
	return nil
}

// takeCoveredRemovals deletes, in the background, the pending removals
// of DC k that a successful apply of set seq covered (under mu:
// noteApplied).
func (p *Plane) takeCoveredRemovals(k int, st *dcState, seq uint64) {
	for s := range st.removing {
		for idx, r := range st.removing[s] {
			if r.pending() && r.seq <= seq {
				r2 := startRemoval(st, s+1, idx, r.in, r.seq)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), removalTimeout)
					defer cancel()
					if err := p.finishRemoval(ctx, k, s+1, idx, r2); err != nil && p.cfg.OnError != nil {
						p.cfg.OnError(err)
					}
				}()
			}
		}
	}
}

// stopUpdates is Close's part before the bridges go (under mu): no apply
// runs any more (stopApplies), and the instances being removed are
// deleted: those whose removal runs by it (its update ends now), the
// pending ones here.
func (p *Plane) stopUpdates(ctx context.Context) error {
	p.stopApplies()
	return p.settleRemovals(ctx)
}

// settleRemovals waits for the removals in flight and deletes the pending
// ones (under mu, after stopApplies: Close). Their owners close done
// without mu.
func (p *Plane) settleRemovals(ctx context.Context) error {
	var errs []error
	for _, st := range p.dcs {
		if st == nil {
			continue
		}
		for s := range st.removing {
			for idx, r := range st.removing[s] {
				select {
				case <-r.done:
				case <-ctx.Done():
					errs = append(errs, fmt.Errorf("instance: stage %d index %d still being removed: %w", s+1, idx, ctx.Err()))
					continue
				}
				if !r.deleted && r.in != nil {
					errs = append(errs, p.deleteInstance(ctx, r.in))
				}
				delete(st.removing[s], idx)
			}
		}
	}
	return errors.Join(errs...)
}
