// Package clock owns time for the controllers: a Clock interface with a real
// implementation for the daemon and a virtual one for tests and the simulator,
// so the same controller code runs in real and in virtual time, and the
// waits on one (Sleep, Repeater).
package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Clock tells the time and runs functions later.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed. In a Virtual clock f runs in the
	// goroutine that advances the clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop cancels the call; it reports whether the call was still pending.
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Virtual is a manual clock: time moves only when Advance or RunUntil is
// called, and due timers fire in time order (ties in the order they were
// set), in the caller's goroutine. It is safe for concurrent use; timer
// callbacks may set new timers.
type Virtual struct {
	mu   sync.Mutex
	now  time.Time
	seq  uint64
	heap timerHeap
}

// NewVirtual returns a virtual clock that starts at start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

type vtimer struct {
	v     *Virtual
	at    time.Time
	seq   uint64
	f     func()
	index int // position in the heap, -1 once fired or stopped
}

func (t *vtimer) Stop() bool {
	t.v.mu.Lock()
	defer t.v.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.v.heap, t.index)
	t.index = -1
	return true
}

// AfterFunc schedules f at Now()+d (d ≤ 0 means at the next Advance).
func (v *Virtual) AfterFunc(d time.Duration, f func()) Timer {
	v.mu.Lock()
	defer v.mu.Unlock()
	if d < 0 {
		d = 0
	}
	v.seq++
	t := &vtimer{v: v, at: v.now.Add(d), seq: v.seq, f: f}
	heap.Push(&v.heap, t)
	return t
}

// Advance moves time forward by d, firing every timer that falls due on the way.
func (v *Virtual) Advance(d time.Duration) {
	v.mu.Lock()
	end := v.now.Add(d)
	v.mu.Unlock()
	v.RunUntil(end)
}

// RunUntil fires, in order, every timer due at or before end, then sets the
// time to end (if end is later than now).
func (v *Virtual) RunUntil(end time.Time) {
	for {
		v.mu.Lock()
		if len(v.heap) == 0 || v.heap[0].at.After(end) {
			if end.After(v.now) {
				v.now = end
			}
			v.mu.Unlock()
			return
		}
		t := heap.Pop(&v.heap).(*vtimer)
		t.index = -1
		if t.at.After(v.now) {
			v.now = t.at
		}
		v.mu.Unlock()
		t.f()
	}
}

// Step fires the next pending timer (moving time to it) and reports whether
// there was one. Useful to run a simulation event by event.
func (v *Virtual) Step() bool {
	v.mu.Lock()
	if len(v.heap) == 0 {
		v.mu.Unlock()
		return false
	}
	at := v.heap[0].at
	v.mu.Unlock()
	v.RunUntil(at)
	return true
}

// Pending returns the number of timers not yet fired or stopped.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.heap)
}

type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
