package simulation

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// The analysis outputs: Observe sees every simulated second with every
// DC's local controller, and WriteActionsCSV lists the local controllers'
// scale actions by time since the traffic start (the warm-up's negative),
// the ones the summary counts among them.
func TestObserveAndActionsCSV(t *testing.T) {
	e := short(load(t, "simultaneous-start-20s.yaml"), 120*time.Second)
	seen := 0
	r, err := Run(context.Background(), e, Options{Strategy: strategy.Hybrid, Seed: 1, Observe: func(sec int, locals map[string]*local.Controller) {
		if sec != seen+1 || len(locals) != len(e.DCs) {
			t.Fatalf("observed second %d with %d controllers after %d", sec, len(locals), seen)
		}
		seen = sec
	}})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 120 {
		t.Fatalf("observed %d seconds of 120", seen)
	}
	var buf bytes.Buffer
	if err := r.WriteActionsCSV(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != "t,dc,vnf,kind,reason,instance,interval,detail" {
		t.Fatalf("header %q", lines[0])
	}
	creates, warm, last := 0, 0, -1e9
	for _, l := range lines[1:] {
		f := strings.SplitN(l, ",", 8)
		ts, err := strconv.ParseFloat(f[0], 64)
		if err != nil || ts < last {
			t.Fatalf("line %q: time %v after %v (%v)", l, ts, last, err)
		}
		last = ts
		if ts < 0 {
			warm++
		}
		if f[3] == string(local.KindCreate) && f[4] == string(local.ReasonReactive) {
			creates++
		}
	}
	if warm == 0 || creates != r.Actions["create/reactive"] {
		t.Fatalf("%d warm-up actions, %d reactive creates (summary counts %d)", warm, creates, r.Actions["create/reactive"])
	}
}
