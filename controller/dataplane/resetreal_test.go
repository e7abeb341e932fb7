package dataplane

import (
	"context"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
	"github.com/ims-orch/ims-orch/placement"
)

// bridgeRules counts the rules on a DC's bridge (dump-flows).
func bridgeRules(t *testing.T, st *dcState) int {
	t.Helper()
	out, err := st.sw.Ofctl(context.Background(), "dump-flows")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(out, "actions=")
}

// A plane on real switches whose bridges lost their rules (as after a
// restart of ovs-vswitchd) and whose reset fails (here its ctx is
// cancelled, so no ovs-ofctl or bundle goes out): every DC is marked
// failed, and the retry (retryFailed, the Watch loop's) puts every rule
// back on the bridges. Before resetfix (final MED-1), the failed Reset
// left the Switch's record listing the rules from before: the retry found
// nothing to change and the bridges stayed empty (revRR LOW-7: the two
// halves were tested only against fakes).
func TestAFailedResetIsRepairedByTheRetryOnRealSwitches(t *testing.T) {
	ctx := context.Background()
	d := ovstest.Start(t)
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 1}}
	var tables []*routing.Table
	for k := range 2 {
		tb, err := routing.NewTable(routing.Config{DC: k, N: 2, Stages: 1, Paths: paths})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, tb)
	}
	p, err := New(ctx, Config{Daemon: d, Tables: tables, Forwarder: netnstest.Forwarder(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	var before []int
	for _, st := range p.dcs {
		n := bridgeRules(t, st)
		if n == 0 {
			t.Fatal("no rules on a bridge after New")
		}
		before = append(before, n)
		if _, err := st.sw.Ofctl(ctx, "del-flows"); err != nil { // the restart emptied it
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	p.mu.Lock()
	err = p.resetAllLocked(cancelled)
	failed := []bool{p.dcs[0].failed, p.dcs[1].failed}
	p.mu.Unlock()
	if err == nil || !failed[0] || !failed[1] {
		t.Fatalf("the reset with a cancelled ctx: %v, failed %v; want an error and both DCs failed", err, failed)
	}
	if err := p.retryFailed(ctx); err != nil {
		t.Fatal(err)
	}
	for k, st := range p.dcs {
		if n := bridgeRules(t, st); n != before[k] || st.failed {
			t.Errorf("DC %d after the retry: %d rules on the bridge (failed %v), want the %d from before", k, n, st.failed, before[k])
		}
	}
}
