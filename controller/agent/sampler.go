package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/controller/clock"
)

// sampler is the sampling loop both agents run: measure now, then every
// interval on the clock, report each sample to the sink, until stop (or
// until measure returns ErrGone: the measured process is gone).
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
	timer   clock.Timer
	running sync.Mutex // held for the whole of a tick
}

func (s *sampler) start() { s.tick() }

func (s *sampler) tick() {
	if s.waitOnStop {
		s.running.Lock()
		defer s.running.Unlock()
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	smp, ok, err := s.measure()
	if err == nil && ok && s.sink != nil {
		err = s.sink.ReportStats(s.id, smp)
	}
	if err != nil && s.onError != nil {
		s.onError(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, ErrGone) {
		s.stopped = true
	}
	if !s.stopped {
		s.timer = s.clk.AfterFunc(s.interval, s.tick)
	}
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
