package routing

import "github.com/ims-orch/ims-orch/placement"

// Resync puts the table at local interval current with the given path sets,
// whatever interval it was in: the set of current (nil: not held, flows
// tagged with it are dropped as unknown-interval until the next Enter) and
// the set of current+1 (nil: not stored yet, step 4 stores it). The
// previous interval's set is dropped. A node whose table fell behind the
// committed rounds (restarted, or stopped while rounds went on) calls it
// with the committed state instead of refusing every later StoreNext and
// Enter. Invalid paths are an error and change nothing.
func (t *Table) Resync(current uint64, cur, next map[placement.Pair]placement.Path) error {
	var c, n pathSet
	c.paths = make([]hopEntry, t.n*t.n)
	n.paths = make([]hopEntry, t.n*t.n)
	if cur != nil {
		if err := t.fill(&c, cur); err != nil {
			return err
		}
		c.held = true
	}
	if next != nil {
		if err := t.fill(&n, next); err != nil {
			return err
		}
		n.held, n.interval = true, current+1
	}
	c.interval = current
	t.sets[prevSlot] = pathSet{paths: t.sets[prevSlot].paths}
	clear(t.sets[prevSlot].paths)
	t.sets[curSlot] = c
	t.sets[nextSlot] = n
	return nil
}

// HoldsNext reports whether the path set of the next interval is stored.
func (t *Table) HoldsNext() bool { return t.sets[nextSlot].held }
