package local

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// drainingDriver is a fake cloud whose Terminate drains (the SIP glue's: it
// would wait up to the drain timeout) and which can Kill. It logs the calls.
type drainingDriver struct {
	*fake.Driver
	mu  sync.Mutex
	log []string
}

func (d *drainingDriver) note(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, s)
}

func (d *drainingDriver) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.log)
}

func (d *drainingDriver) Launch(ctx context.Context, s drivers.Spec) (drivers.Instance, error) {
	d.note("launch " + s.ID + " replaces=" + s.Replaces)
	return d.Driver.Launch(ctx, s)
}

func (d *drainingDriver) Terminate(ctx context.Context, dc, id string) error {
	d.note("drain " + id)
	return d.Driver.Terminate(ctx, dc, id)
}

func (d *drainingDriver) Kill(ctx context.Context, dc, id string) error {
	d.note("kill " + id)
	return d.Driver.Terminate(ctx, dc, id)
}

// A failed instance is killed, not drained, and its replacement is launched
// before the kill, naming the failed instance (Spec.Replaces): the driver can
// hand the replacement its address. Without a drivers.Killer the controller
// falls back to Terminate (the fake cloud of the other tests).
func TestFailedInstanceKilledAfterReplacementLaunch(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(d *fake.Driver, id string)
		// silent: the instance stops reporting (a stopped process) instead
		silent bool
		// vanished: the daemon's cloud reconciliation reports it missing instead
		vanished bool
	}{
		{"gone event (SIGKILL)", func(d *fake.Driver, id string) { d.Kill(id) }, false, false},
		{"error event", func(d *fake.Driver, id string) { d.Fail(id) }, false, false},
		{"no statistics (SIGSTOP)", nil, true, false},
		{"vanished (reconciliation)", nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			fd, err := fake.New(clk, fake.Options{BootDelay: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			drv := &drainingDriver{Driver: fd}
			e := &env{t: t, clk: clk, drv: fd, sink: &recSink{}, paths: &recPaths{}, load: map[string]Stats{}, silent: map[string]bool{}}
			cfg := fwConfig(2)
			cfg.Sink, cfg.Paths = e.sink, e.paths
			if e.c, err = New(cfg, drv, clk, nil); err != nil {
				t.Fatal(err)
			}
			if err := e.c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.c.Stop)
			e.clk.Advance(0)
			e.second()
			e.second()
			if n := len(e.c.Routable("firewall")); n != 2 {
				t.Fatalf("%d routable, want the minimum 2", n)
			}
			victim := e.c.Routable("firewall")[0].ID
			before := len(drv.calls())
			if tc.vanished {
				if e.c.Vanished("no-such-instance", "vanished") {
					t.Fatal("Vanished took an unknown instance")
				}
				if !e.c.Vanished(victim, "vanished from the cloud") {
					t.Fatal("Vanished refused a working instance")
				}
				if e.c.Vanished(victim, "vanished from the cloud") {
					t.Fatal("Vanished took an instance that had already failed")
				}
				e.clk.Advance(0)
			} else if tc.silent {
				e.silent[victim] = true
				for i := 0; i < 4; i++ {
					e.second()
				}
			} else {
				tc.kill(fd, victim)
				e.clk.Advance(0)
			}
			got := drv.calls()[before:]
			if len(got) < 2 || got[0] != "launch dc0-firewall-3 replaces="+victim {
				t.Fatalf("driver calls after the failure %q: want the replacement's launch (replaces=%s) first", got, victim)
			}
			if tc.name == "gone event (SIGKILL)" {
				// the cloud already forgot it; a kill of a gone instance is harmless
				if !slices.Contains(got, "kill "+victim) {
					t.Fatalf("driver calls %q: want kill %s", got, victim)
				}
			} else if got[1] != "kill "+victim {
				t.Fatalf("driver calls %q: want kill %s right after the launch", got, victim)
			}
			for _, c := range got {
				if c == "drain "+victim {
					t.Fatalf("driver calls %q: the failed instance was drained", got)
				}
			}
			e.second()
			e.second()
			if n := len(e.c.Routable("firewall")); n != 2 {
				t.Fatalf("%d routable after the replacement booted, want 2", n)
			}
		})
	}
}

// A VNF's own StatsTimeout overrides the controller's: with the
// controller's off (-1), a silent instance of a VNF with 2 s fails after
// 2 s; with the controller's on, a VNF with -1 is never failed for silence.
func TestPerVNFStatsTimeout(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ctl, vnf    time.Duration
		failedAfter int // seconds of silence, 0 = never within 10 s
	}{
		{"VNF on, controller off", -1, 2 * time.Second, 2},
		{"VNF off, controller on", 3 * time.Second, -1, 0},
		{"VNF unset: the controller's", 3 * time.Second, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(1)
			cfg.StatsTimeout, cfg.VNFs[0].StatsTimeout = tc.ctl, tc.vnf
			e := newEnv(t, cfg, fake.Options{BootDelay: time.Second})
			e.clk.Advance(0)
			e.second()
			e.second()
			r := e.c.Routable("firewall")
			if len(r) != 1 {
				t.Fatalf("%d routable", len(r))
			}
			e.silent[r[0].ID] = true
			failedAt := 0
			for s := 1; s <= 10 && failedAt == 0; s++ {
				e.second()
				for _, a := range e.c.Actions() {
					if a.InstanceID == r[0].ID && a.Kind == KindDestroy && a.Reason == ReasonFailure {
						failedAt = s
					}
				}
			}
			if failedAt != tc.failedAfter && !(tc.failedAfter > 0 && failedAt == tc.failedAfter+1) {
				t.Fatalf("silent instance failed after %d s, want %d (0: never)", failedAt, tc.failedAfter)
			}
		})
	}
}
