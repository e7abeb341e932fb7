package local

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// stallClock is the controller's view of a virtual clock in a process that
// can stall (get no CPU): while stalled, the callbacks that come due are
// held, and resume runs them late, at the resume time, in order.
type stallClock struct {
	*clock.Virtual
	mu      sync.Mutex
	stalled bool
	held    []func()
}

func (s *stallClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return s.Virtual.AfterFunc(d, func() {
		s.mu.Lock()
		if s.stalled {
			s.held = append(s.held, f)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		f()
	})
}

func (s *stallClock) stall() { s.mu.Lock(); s.stalled = true; s.mu.Unlock() }

func (s *stallClock) resume() {
	s.mu.Lock()
	held := s.held
	s.held, s.stalled = nil, false
	s.mu.Unlock()
	for _, f := range held {
		f()
	}
}

// stallEnv is failEnv's two reporting firewalls under a controller whose
// clock can stall (the cloud's and the agents' clock does not).
func stallEnv(t *testing.T) (*env, *stallClock) {
	clk := clock.NewVirtual(t0)
	drv, err := fake.New(clk, fake.Options{BootDelay: boot})
	if err != nil {
		t.Fatal(err)
	}
	sc := &stallClock{Virtual: clk}
	e := &env{t: t, clk: clk, drv: drv, sink: &recSink{}, paths: &recPaths{}, load: map[string]Stats{}, silent: map[string]bool{}}
	cfg := fwConfig(0)
	cfg.Sink, cfg.Paths = e.sink, e.paths
	if e.c, err = New(cfg, drv, sc, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.c.Stop)
	e.round(0, map[string]int{"firewall": 2})
	e.clk.Advance(boot)
	e.report()
	e.seconds(5)
	return e, sc
}

// A controller that gets no CPU for 4 s (longer than the 3 s stats timeout)
// does not fail its healthy instances: their watches fire late, at the
// resume, before the statistics that arrived meanwhile are handled; a watch
// that fires late looks again one timeout later. An instance that stays
// silent after the resume is failed then. (Before, both were failed at the
// resume: session 5's false failures of a starved controller.)
func TestStalledControllerDoesNotFailHealthyInstances(t *testing.T) {
	e, sc := stallEnv(t)
	ids := e.ids(StateNormal)
	if len(ids) != 2 {
		t.Fatalf("working %v, want 2", ids)
	}
	dead := ids[1]
	sc.stall()
	e.clk.Advance(4 * time.Second) // no report handled: the controller does not run
	sc.resume()                    // its late timers run first
	e.silent[dead] = true
	e.report() // then the statistics that waited, of the live one only
	if s := e.state(ids[0]); s != StateNormal {
		t.Fatalf("the healthy instance is %s after the controller's stall, want normal", s)
	}
	if f := e.actions(KindDestroy, ReasonFailure); len(f) != 0 {
		t.Fatalf("failures after the stall: %+v", f)
	}
	resumed := e.clk.Now()
	e.seconds(2)
	e.clk.Advance(time.Second - time.Millisecond)
	if s := e.state(dead); s != StateNormal {
		t.Fatalf("the silent instance is %s before one timeout after the resume", s)
	}
	e.clk.Advance(time.Millisecond)
	f := e.actions(KindDestroy, ReasonFailure)
	if len(f) != 1 || f[0].InstanceID != dead || !f[0].At.Equal(resumed.Add(3*time.Second)) {
		t.Fatalf("failure actions %+v, want %s failed 3 s after the resume", f, dead)
	}
	if s := e.state(ids[0]); s != StateNormal {
		t.Fatalf("the healthy instance is %s, want normal", s)
	}
}
