package transport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// MemConfig sets the faults of an in-memory transport. Each direction
// (request, response) is faulted independently.
type MemConfig struct {
	// Loss is the probability that a message is dropped.
	Loss float64
	// Dup is the probability that a message is delivered twice (the copy
	// after its own random delay).
	Dup float64
	// Delay is the base one-way delay; Jitter adds a uniform random delay in
	// [0, Jitter). Jitter larger than the gap between messages reorders them.
	Delay, Jitter time.Duration
	// Seed seeds the fault generator.
	Seed uint64
}

// MemStats counts what an in-memory transport did.
type MemStats struct {
	Requests, Responses   int // messages handed to the network
	Dropped, Duplicated   int // faults injected (both directions)
	Delivered, Unanswered int // Handle calls; requests to a DC that is down or unknown
}

// Mem is an in-memory transport: messages travel through clock timers, so in
// a clock.Virtual everything happens in the goroutine that advances time, in
// an order fixed by the seed.
type Mem struct {
	clk clock.Clock
	cfg MemConfig

	mu    sync.Mutex
	rng   *rand.Rand
	parts map[string]Participant
	down  map[string]bool
	stats MemStats
}

var _ Transport = (*Mem)(nil)

// NewMem returns an in-memory transport on clk.
func NewMem(clk clock.Clock, cfg MemConfig) (*Mem, error) {
	for _, p := range []struct {
		n string
		v float64
	}{{"Loss", cfg.Loss}, {"Dup", cfg.Dup}} {
		if !(p.v >= 0 && p.v < 1) {
			return nil, fmt.Errorf("transport.MemConfig.%s: must be in [0, 1), got %g", p.n, p.v)
		}
	}
	if cfg.Delay < 0 || cfg.Jitter < 0 {
		return nil, errors.New("transport.MemConfig.Delay/Jitter: must not be negative")
	}
	return &Mem{
		clk:   clk,
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6a09e667f3bcc908)),
		parts: map[string]Participant{},
		down:  map[string]bool{},
	}, nil
}

// Register attaches a participant as datacenter dc.
func (m *Mem) Register(dc string, p Participant) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts[dc] = p
}

// SetDown makes dc silently drop every request (down = true) or answer again.
func (m *Mem) SetDown(dc string, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[dc] = down
}

// Stats returns the counters.
func (m *Mem) Stats() MemStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// copies decides how many copies of one message arrive and after which
// delays. Called with m.mu held.
func (m *Mem) copies() []time.Duration {
	if m.rng.Float64() < m.cfg.Loss {
		m.stats.Dropped++
		return nil
	}
	n := 1
	if m.rng.Float64() < m.cfg.Dup {
		m.stats.Duplicated++
		n = 2
	}
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = m.cfg.Delay
		if m.cfg.Jitter > 0 {
			out[i] += time.Duration(m.rng.Int64N(int64(m.cfg.Jitter)))
		}
	}
	return out
}

// Send schedules the request's delivery; the participant's answer travels
// back the same way.
func (m *Mem) Send(dc string, req protocol.Request, deliver Deliver) {
	m.mu.Lock()
	m.stats.Requests++
	delays := m.copies()
	m.mu.Unlock()
	for _, d := range delays {
		m.clk.AfterFunc(d, func() { m.arrive(dc, req, deliver) })
	}
}

func (m *Mem) arrive(dc string, req protocol.Request, deliver Deliver) {
	m.mu.Lock()
	p, ok := m.parts[dc]
	if !ok || m.down[dc] {
		m.stats.Unanswered++
		m.mu.Unlock()
		return
	}
	m.stats.Delivered++
	m.mu.Unlock()

	resp := p.Handle(req)

	m.mu.Lock()
	m.stats.Responses++
	delays := m.copies()
	m.mu.Unlock()
	for _, d := range delays {
		m.clk.AfterFunc(d, func() { deliver(resp, nil) })
	}
}
