package clock

import (
	"sync"
	"time"
)

// Repeater calls a function every period on a clock until Stop; each call
// is scheduled once the previous one has returned, so calls never overlap.
type Repeater struct {
	clk    Clock
	period time.Duration
	f      func() bool

	mu      sync.Mutex
	stopped bool
	timer   Timer
}

// Every calls f after period, then again period after each call returns,
// until Stop or until f returns false.
func Every(clk Clock, period time.Duration, f func() (again bool)) *Repeater {
	r := &Repeater{clk: clk, period: period, f: f}
	r.timer = clk.AfterFunc(period, r.fire)
	return r
}

func (r *Repeater) fire() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	again := r.f()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !again {
		r.stopped = true
	}
	if !r.stopped {
		r.timer = r.clk.AfterFunc(r.period, r.fire)
	}
}

// Stop cancels the next call (a call running now finishes). It may be
// called more than once, and from f.
func (r *Repeater) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.timer.Stop()
}

// Stopped reports whether Stop was called or f returned false.
func (r *Repeater) Stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}
