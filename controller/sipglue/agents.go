package sipglue

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
)

// Runtimes is the part of drivers/local the agents need.
type Runtimes interface {
	Subscribe(h drivers.EventHandler) (cancel func())
	Runtime(id string) (local.Runtime, bool)
}

// AgentsConfig configures Agents.
type AgentsConfig struct {
	Driver Runtimes
	Sink   *StatsSink
	Clock  clock.Clock
	// Proc is /proc (os.DirFS("/proc") when nil); Cores the CPU an instance
	// is entitled to (1); ClkTck the unit of /proc's CPU times (the
	// system's, agent.ClkTck, when 0).
	Proc   fs.FS
	Cores  float64
	ClkTck int
	// Counters gives an instance's Kamailio counters (kamrpc over its RPC
	// socket when nil).
	Counters func(rt local.Runtime) agent.Counters
	// OnError hears about agents that could not start or failed a sample.
	OnError func(id string, err error)
}

// Agents runs one statistics agent per active CP instance of the driver: it
// starts when the driver reports the instance active and stops when it is
// gone.
type Agents struct {
	cfg    AgentsConfig
	mu     sync.Mutex
	agents map[string]*agent.Agent
	cancel func()
	closed bool
}

// StartAgents subscribes to the driver's events.
func StartAgents(cfg AgentsConfig) (*Agents, error) {
	if cfg.Driver == nil || cfg.Sink == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("sipglue: Agents: Driver, Sink and Clock are required")
	}
	if cfg.Proc == nil {
		cfg.Proc = os.DirFS("/proc")
	}
	if cfg.Counters == nil {
		cfg.Counters = func(rt local.Runtime) agent.Counters { return kamrpc.New(rt.RPC) }
	}
	if cfg.OnError == nil {
		cfg.OnError = func(string, error) {}
	}
	a := &Agents{cfg: cfg, agents: map[string]*agent.Agent{}}
	a.cancel = cfg.Driver.Subscribe(a.onEvent)
	return a, nil
}

func (a *Agents) onEvent(ev drivers.Event) {
	switch ev.State {
	case drivers.StateActive:
		rt, ok := a.cfg.Driver.Runtime(ev.ID)
		if !ok {
			return
		}
		a.mu.Lock()
		if a.closed || a.agents[ev.ID] != nil {
			a.mu.Unlock()
			return
		}
		id := ev.ID
		ag, err := agent.New(agent.Config{ID: id, Pid: rt.Pid, Proc: a.cfg.Proc, Counters: a.cfg.Counters(rt),
			Sink: a.cfg.Sink, Clock: a.cfg.Clock, Cores: a.cfg.Cores, ClkTck: a.cfg.ClkTck,
			OnError: func(err error) { a.cfg.OnError(id, err) }})
		if err != nil {
			a.mu.Unlock()
			a.cfg.OnError(id, err)
			return
		}
		a.cfg.Sink.Bind(id, ev.DC)
		a.agents[id] = ag
		a.mu.Unlock()
		ag.Start()
	case drivers.StateGone, drivers.StateError:
		a.mu.Lock()
		ag := a.agents[ev.ID]
		delete(a.agents, ev.ID)
		a.mu.Unlock()
		if ag != nil {
			ag.Stop()
		}
		a.cfg.Sink.Unbind(ev.ID)
	}
}

// Running returns the instances with a running agent, sorted.
func (a *Agents) Running() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id := range a.agents {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Close stops every agent and unsubscribes.
func (a *Agents) Close() {
	a.mu.Lock()
	a.closed = true
	ags := a.agents
	a.agents = map[string]*agent.Agent{}
	a.mu.Unlock()
	a.cancel()
	for _, ag := range ags {
		ag.Stop()
	}
}
