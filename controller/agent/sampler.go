package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// sampler is the sampling loop both agents run: measure now, then at a
// fixed rate, one sample every interval on the clock counted from the first
// (a sample that took long, or a timer that fired late on a loaded host,
// does not push the later ones back; ticks already missed are skipped and
// the next sample is taken at once, at least half an interval after the
// last one began), report each sample to the sink, until
// stop (or until measure returns ErrGone: the measured process is gone).
// A fixed delay after each sample instead stretched the period to
// interval + the sample's duration: on a loaded host two slow samples then
// filled the local controller's 3 s statistics timeout.
type sampler struct {
	id       string
	clk      clock.Clock
	interval time.Duration
	sink     Sink
	onError  func(error)
	measure  func() (Sample, bool, error)
	// waitOnStop makes stop wait for a sample being taken, so nothing is
	// reported after stop returns; stop must then not be called from the
	// sink or onError.
	waitOnStop bool

	mu      sync.Mutex
	stopped bool
	next    time.Time // when the next sample is due
	timer   clock.Timer
	running sync.Mutex // held for the whole of a sample
}

func (s *sampler) start() {
	s.mu.Lock()
	s.next = s.clk.Now()
	s.mu.Unlock()
	s.fire()
}

// fire takes a sample and arms the timer of the next one.
func (s *sampler) fire() {
	began := s.clk.Now()
	if !s.sample() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := s.clk.Now()
	// late: skip the ticks missed and sample at once, but never within half
	// an interval of this sample's reading (rates over a sliver of time)
	s.next = s.next.Add(s.interval)
	if earliest := began.Add(s.interval / 2); s.next.Before(earliest) {
		s.next = earliest
	}
	if s.next.Before(now) {
		s.next = now
	}
	s.timer = s.clk.AfterFunc(s.next.Sub(now), s.fire)
}

// sample takes and reports one sample; it returns false once sampling ends.
func (s *sampler) sample() bool {
	if s.waitOnStop {
		s.running.Lock()
		defer s.running.Unlock()
	}
	if s.isStopped() {
		return false
	}
	smp, ok, err := s.measure()
	if err == nil && ok && s.sink != nil {
		err = s.sink.ReportStats(s.id, smp)
	}
	if err != nil && s.onError != nil {
		s.onError(err)
	}
	if errors.Is(err, ErrGone) {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		return false
	}
	return true
}

func (s *sampler) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	if s.waitOnStop {
		s.running.Lock()
		defer s.running.Unlock()
	}
}

func (s *sampler) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}
