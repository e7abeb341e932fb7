package local

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

const boot = 20 * time.Second

// failEnv has 2 working firewalls (active at t0+20 s) and, if buffered, a
// third one in the buffer.
func failEnv(t *testing.T, buffered bool) *env {
	e := newEnv(t, fwConfig(0), fake.Options{BootDelay: boot})
	n := 2
	if buffered {
		n = 3
	}
	e.round(0, map[string]int{"firewall": n})
	e.clk.Advance(boot)
	e.report()
	if buffered {
		e.round(1, map[string]int{"firewall": 2})
	}
	e.seconds(5)
	return e
}

func TestFailureDetectionAndReplacement(t *testing.T) {
	tests := []struct {
		name     string
		buffered bool
		kill     func(e *env, id string)
		// detect is the delay from the death to the instance leaving routing.
		detect time.Duration
		// restore is the delay from the death until 2 instances are routable again.
		restore time.Duration
		reused  bool
	}{
		{"driver error event, launch", false, func(e *env, id string) { e.drv.Fail(id) }, 0, boot, false},
		{"driver gone event, launch", false, func(e *env, id string) { e.drv.Kill(id) }, 0, boot, false},
		{"driver error event, reuse from buffer", true, func(e *env, id string) { e.drv.Fail(id) }, 0, 0, true},
		{"silent death (no stats), launch", false, func(e *env, id string) { e.silent[id] = true }, 3 * time.Second, 3*time.Second + boot, false},
		{"silent death (no stats), reuse", true, func(e *env, id string) { e.silent[id] = true }, 3 * time.Second, 3 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := failEnv(t, tc.buffered)
			victim := e.c.Routable("firewall")[0].ID
			died := e.clk.Now()
			tc.kill(e, victim)
			e.clk.Advance(0)
			var detectedAt, restoredAt time.Time
			for i := 0; i < 60 && restoredAt.IsZero(); i++ {
				r := e.c.Routable("firewall")
				gone := true
				for _, x := range r {
					gone = gone && x.ID != victim
				}
				if gone && detectedAt.IsZero() {
					detectedAt = e.clk.Now()
				}
				if gone && len(r) == 2 {
					restoredAt = e.clk.Now()
				}
				if restoredAt.IsZero() {
					e.second()
				}
			}
			if got := detectedAt.Sub(died); got != tc.detect {
				t.Fatalf("detected after %v, want %v", got, tc.detect)
			}
			if got := restoredAt.Sub(died); got != tc.restore {
				t.Fatalf("two instances routable again after %v, want %v", got, tc.restore)
			}
			rep := e.actions(KindReplace, ReasonReplacement)
			if len(rep) != 1 || !strings.Contains(rep[0].Detail, "replaces "+victim) {
				t.Fatalf("replace actions %+v", rep)
			}
			if tc.reused != strings.Contains(rep[0].Detail, "from buffer tail") {
				t.Fatalf("replacement detail %q, reused=%v", rep[0].Detail, tc.reused)
			}
			if d := e.actions(KindDestroy, ReasonFailure); len(d) != 1 || d[0].InstanceID != victim {
				t.Fatalf("failure destroy actions %+v", d)
			}
			e.clk.Advance(0)
			if _, ok := e.drv.Get(victim); ok {
				t.Fatal("failed instance not terminated in the cloud")
			}
			if e.state(victim) != "" {
				t.Fatalf("failed instance still in the registry as %s", e.state(victim))
			}
			if err := e.c.ReportStats(victim, idle); err == nil {
				t.Fatal("stats of a removed instance accepted")
			}
		})
	}
}

func TestSilentDeathExactTimeout(t *testing.T) {
	e := failEnv(t, false)
	victim := e.c.Routable("firewall")[0].ID
	e.silent[victim] = true
	last := e.clk.Now()
	e.seconds(2) // the other instance keeps reporting
	e.clk.Advance(time.Second - time.Millisecond)
	if e.state(victim) != StateNormal {
		t.Fatalf("failed before the timeout: %s", e.state(victim))
	}
	e.clk.Advance(time.Millisecond)
	if e.state(victim) != StateFailed && e.state(victim) != "" {
		t.Fatalf("state %s at the timeout", e.state(victim))
	}
	d := e.actions(KindDestroy, ReasonFailure)
	if len(d) != 1 || !d[0].At.Equal(last.Add(3*time.Second)) || !strings.Contains(d[0].Detail, "no statistics for 3s") {
		t.Fatalf("failure actions %+v", d)
	}
}

func TestBootFailureReplaced(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{BootDelay: boot, FailNext: 1})
	r := e.round(0, map[string]int{"firewall": 1})
	if r.Created != 1 {
		t.Fatalf("%+v", r)
	}
	e.clk.Advance(boot) // boot ends in error → replacement launched
	if n := len(e.drv.Launches()); n != 2 {
		t.Fatalf("%d launches, want 2 (the replacement)", n)
	}
	e.clk.Advance(boot)
	e.report()
	if len(e.c.Routable("firewall")) != 1 {
		t.Fatalf("routable %+v", e.c.Routable("firewall"))
	}
}

func TestBufferedInstanceDeathNotReplaced(t *testing.T) {
	e := failEnv(t, true)
	buf := e.c.Buffer("firewall")
	if len(buf) != 1 {
		t.Fatalf("buffer %+v", buf)
	}
	e.drv.Kill(buf[0].ID)
	e.clk.Advance(0)
	if len(e.c.Buffer("firewall")) != 0 {
		t.Fatal("dead instance left in the buffer")
	}
	e.seconds(30)
	if n := len(e.drv.Launches()); n != 3 || e.working("firewall") != 2 {
		t.Fatalf("launches %d working %d: a buffered death must not be replaced", n, e.working("firewall"))
	}
}

func TestAdoptOnStart(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{})
	ctx := context.Background()
	// Instances left by an earlier run of the controller.
	for _, id := range []string{"dc0-firewall-1", "dc0-firewall-2", "dc0-ids-9"} {
		vnf := "firewall"
		if strings.Contains(id, "ids") {
			vnf = "ids"
		}
		if _, err := e.drv.Launch(ctx, drivers.Spec{ID: id, DC: "dc0", VNF: vnf}); err != nil {
			t.Fatal(err)
		}
	}
	e.drv.Fail("dc0-firewall-2")
	e.clk.Advance(time.Second)
	cfg := fwConfig(2)
	c, err := New(cfg, e.drv, e.clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	e.c.Stop()
	e.clk.Advance(0)
	ins := c.Instances()
	if len(ins) != 2 || ins[0].ID != "dc0-firewall-1" || ins[0].State != StateNormal || !strings.Contains(ins[1].Why, "replaces dc0-firewall-2") {
		t.Fatalf("instances %+v: want the active one adopted and one launched (the error one terminated)", ins)
	}
	if ins[1].ID == "dc0-firewall-2" {
		t.Fatal("new instance reused the id of an existing one")
	}
	if _, ok := e.drv.Get("dc0-firewall-2"); ok {
		t.Fatal("adopted error instance not terminated")
	}
	if _, ok := e.drv.Get("dc0-ids-9"); !ok {
		t.Fatal("instance of an unknown VNF touched")
	}
	if err := c.Start(ctx); err == nil {
		t.Fatal("second Start accepted")
	}
}

func TestBootTimeout(t *testing.T) {
	cfg := fwConfig(1)
	cfg.BootTimeout = 5 * time.Minute
	e := newEnv(t, cfg, fake.Options{BootDelay: time.Hour})
	first := e.ids(StateBooting)[0]
	e.clk.Advance(5*time.Minute - time.Second)
	if e.state(first) != StateBooting {
		t.Fatalf("failed before the boot timeout: %s", e.state(first))
	}
	e.clk.Advance(time.Second)
	d := e.actions(KindDestroy, ReasonFailure)
	if len(d) != 1 || d[0].InstanceID != first || !strings.Contains(d[0].Detail, "not active 5m0s after launch") {
		t.Fatalf("failure actions %+v", d)
	}
	if r := e.actions(KindReplace, ReasonReplacement); len(r) != 1 || e.working("firewall") != 1 {
		t.Fatalf("replacement %+v working %d", r, e.working("firewall"))
	}
}
