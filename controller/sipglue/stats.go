package sipglue

import (
	"fmt"
	"sync"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/local"
)

// StatsIntake is the local controller's statistics intake.
type StatsIntake interface {
	ReportStats(id string, s local.Stats) error
}

// StatsSink is an agent.Sink that forwards every sample to the local
// controller of the instance's DC, converted to local.Stats.
type StatsSink struct {
	mu  sync.RWMutex
	dcs map[string]StatsIntake // DC → controller
	of  map[string]string      // instance → DC
}

// NewStatsSink returns a sink over the controllers, by DC name.
func NewStatsSink(controllers map[string]StatsIntake) *StatsSink {
	s := &StatsSink{dcs: map[string]StatsIntake{}, of: map[string]string{}}
	for dc, c := range controllers {
		s.dcs[dc] = c
	}
	return s
}

// Bind says which DC an instance belongs to.
func (s *StatsSink) Bind(id, dc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.of[id] = dc
}

// Unbind forgets an instance.
func (s *StatsSink) Unbind(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.of, id)
}

// ToStats converts an agent sample to the local controller's statistics:
// Flows is what the instance still carries (active transactions + dialogs),
// so the controller's "draining and Flows == 0 → destroy" rule is the drain
// condition of drivers/local.
func ToStats(x agent.Sample) local.Stats {
	return local.Stats{At: x.At, CPU: x.CPU, Mem: x.Mem, PktRate: x.PktRate, Flows: int(x.InFlight()), FlowsUnknown: x.FlowsUnknown}
}

// ReportStats implements agent.Sink.
func (s *StatsSink) ReportStats(id string, x agent.Sample) error {
	s.mu.RLock()
	dc, ok := s.of[id]
	c := s.dcs[dc]
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("sipglue: stats of %q: instance not bound to a DC", id)
	}
	if c == nil {
		return fmt.Errorf("sipglue: stats of %q: no local controller for DC %q", id, dc)
	}
	return c.ReportStats(id, ToStats(x))
}

var _ agent.Sink = (*StatsSink)(nil)
