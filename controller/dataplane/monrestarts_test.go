package dataplane

import (
	"maps"
	"testing"

	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// restartingMonitor is a learned-rule monitor that was restarted.
type restartingMonitor struct{ restarts, paused int }

func (m *restartingMonitor) Learned() (ovs.LearnedRules, error) {
	return ovs.LearnedRules{}, ovs.ErrMonitorNotArmed
}
func (m *restartingMonitor) Restarts() (int, int) { return m.restarts, m.paused }
func (m *restartingMonitor) Close()               {}

// What the daemon exports as ims_orch_dataplane_learned_monitor_restarts_total:
// each DC's monitor restarts by name, nil before the plane is set, nothing
// for a DC without a monitor (another node's).
func TestMonitorRestartsByDC(t *testing.T) {
	p := &Plane{dcs: []*dcState{
		{name: "tokyo", mon: &restartingMonitor{restarts: 5, paused: 3}},
		nil,
		{mon: &restartingMonitor{restarts: 1}},
		{name: "london"},
	}}
	want := map[string]MonitorRestarts{"tokyo": {Restarts: 5, Paused: 3}, "dc2": {Restarts: 1}}
	if got := p.MonitorRestartsByDC(); !maps.Equal(got, want) {
		t.Fatalf("restarts by DC %v, want %v", got, want)
	}
	l := NewLazy([]string{"tokyo"})
	if got := l.MonitorRestarts(); got != nil {
		t.Errorf("restarts %v before the plane is set, want nil", got)
	}
	l.Set(p)
	if got := l.MonitorRestarts(); !maps.Equal(got, want) {
		t.Errorf("through Lazy: %v, want %v", got, want)
	}
}
