// Package bufferq owns the double-ended buffer queue of idle VNF instances
// that a local controller keeps per VNF (ScalIMS paper 4.2).
//
// Scale-in tags an instance with an interval and pushes it at the tail;
// scale-out reuses the most recently buffered instance from the tail (the
// warmest one); "enter new interval" pops, head first, every instance
// buffered τ or more intervals ago (and, with buffer trimming, those left
// unused for a whole interval), to be destroyed once idle.
//
//	          head (oldest)                            tail (newest)
//	expire ◀── ┌──────┬──────┬──────┬──────┬──────┐ ◀── PushTail(id, t)   scale-in
//	PopDue     │ i3@2 │ i7@4 │ i1@5 │ i9@5 │ i4@8 │
//	(due(e))   └──────┴──────┴──────┴──────┴──────┘ ──▶ PopTail()         scale-out (reuse)
//
// Tags need not be in order: the local controller's scale-in on a falling
// load tags the next interval, so an entry pushed after it in the same
// interval has a lower tag. PopDue therefore skips an entry not yet due
// instead of stopping at it (the paper's head pop stops at the first young
// entry; with non-decreasing tags the two agree). Remove takes out an
// instance anywhere (it died while buffered). The queue is not safe for
// concurrent use; the controller guards it with its own lock.
package bufferq

// Entry is one buffered instance and the interval it was buffered in.
type Entry struct {
	ID       string
	Interval uint64
}

// Queue is a double-ended queue of entries on a growable ring.
type Queue struct {
	buf  []Entry
	head int // index of the head entry in buf
	n    int
}

// Len returns the number of entries.
func (q *Queue) Len() int { return q.n }

func (q *Queue) at(i int) int { return (q.head + i) % len(q.buf) }

func (q *Queue) grow() {
	nb := make([]Entry, max(4, 2*len(q.buf)))
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[q.at(i)]
	}
	q.buf, q.head = nb, 0
}

// PushTail enqueues id at the tail, tagged with interval.
func (q *Queue) PushTail(id string, interval uint64) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[q.at(q.n)] = Entry{ID: id, Interval: interval}
	q.n++
}

// PopTail removes and returns the newest entry.
func (q *Queue) PopTail() (Entry, bool) {
	if q.n == 0 {
		return Entry{}, false
	}
	i := q.at(q.n - 1)
	e := q.buf[i]
	q.buf[i] = Entry{}
	q.n--
	return e, true
}

// PopDue removes up to n entries for which due is true, head first,
// skipping the others, and returns them oldest first; the order of the rest
// is kept. With tags non-decreasing from head to tail and a due that holds
// for the older tags, it pops the head's old-enough run, as the paper's
// controller does; an entry tagged ahead of a later push (the local
// controller's scale-in on a falling load tags the next interval) does not
// hold back the due ones behind it.
func (q *Queue) PopDue(n int, due func(Entry) bool) []Entry {
	var out []Entry
	for i := 0; i < q.n && len(out) < n; {
		e := q.buf[q.at(i)]
		if !due(e) {
			i++
			continue
		}
		q.Remove(e.ID)
		out = append(out, e)
	}
	return out
}

// Remove takes id out of the queue wherever it is and reports whether it
// was there. The order of the other entries is kept.
func (q *Queue) Remove(id string) bool {
	for i := 0; i < q.n; i++ {
		if q.buf[q.at(i)].ID != id {
			continue
		}
		for j := i; j < q.n-1; j++ {
			q.buf[q.at(j)] = q.buf[q.at(j+1)]
		}
		q.buf[q.at(q.n-1)] = Entry{}
		q.n--
		return true
	}
	return false
}

// Entries returns a copy of the queue, head first.
func (q *Queue) Entries() []Entry {
	out := make([]Entry, q.n)
	for i := range out {
		out[i] = q.buf[q.at(i)]
	}
	return out
}
