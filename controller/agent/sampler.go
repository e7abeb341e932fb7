package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// sampler is the sampling loop both agents run: measure now, then every
// interval on the clock (clock.Every), report each sample to the sink, until
// stop (or until measure returns ErrGone: the measured process is gone).
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
	rep     *clock.Repeater
	running sync.Mutex // held for the whole of a sample
}

func (s *sampler) start() {
	if !s.sample() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.rep = clock.Every(s.clk, s.interval, s.sample)
	}
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
	if s.rep != nil {
		s.rep.Stop()
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
