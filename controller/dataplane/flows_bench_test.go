package dataplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// BenchmarkFlowCounts measures what one DP statistics sample pays per DC
// for the flow counts (Plane.FlowCounts): the rules the switch learned, as
// the DC's learned-rule monitor follows them, on a real bridge holding
// `learned` such rules (only when the DC has tag rules), and the count over
// `entry` flows of the plane's own, 4 instances per stage, 3 stages. The
// monitor's own cost is per rule change, not per read (docs/benchmarks.md).
func BenchmarkFlowCounts(b *testing.B) {
	for _, sz := range []struct {
		entry, learned int
		tags           bool
	}{{0, 0, false}, {0, 0, true}, {200, 200, true}, {2000, 2000, true}} {
		b.Run(fmt.Sprintf("entry%d_learned%d_tags%v", sz.entry, sz.learned, sz.tags), func(b *testing.B) {
			benchFlowCounts(b, sz.entry, sz.learned, sz.tags)
		})
	}
}

func benchFlowCounts(b *testing.B, entry, learned int, tags bool) {
	ctx := context.Background()
	const n, m = 2, 3
	p := newPlane(b, n, m, map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 0, 0, 1}}, false)
	st := p.dcs[0]
	for s := 1; s <= m; s++ {
		for i := 0; i < 4; i++ {
			idx := uint8(n + i)
			st.live[s-1][idx] = InstancePorts(s, idx) // ports only: the count reads rules, not packets
		}
	}
	for i := 0; i < entry; i++ {
		d := routing.Decision{Verdict: routing.Forward, First: 1, Last: m}
		for s := 1; s <= m; s++ {
			d.Instances[s-1] = uint8(n + i%4)
		}
		st.flows[uint32(i+1)] = Flow{Serial: uint32(i + 1), Decision: d}
	}
	var lines []string
	for i := 0; i < learned; i++ {
		idx := n + i%4
		lines = append(lines, fmt.Sprintf("table=1,priority=190,idle_timeout=600,cookie=%#x,udp,reg0=2,nw_src=10.101.%d.%d,tp_src=4000,actions=set_field:0.%d.%d.1->ip_dst,output:%d",
			ovs.CookieLearned, i/250, i%250+1, idx, idx, InstancePorts(1, uint8(idx)).In))
	}
	if len(lines) > 0 {
		file := filepath.Join(b.TempDir(), "learned.flows")
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		if _, err := st.sw.Ofctl(ctx, "add-flows", file); err != nil {
			b.Fatal(err)
		}
	}
	// the DC's monitor follows the rules just added (its process is real:
	// a bounded wait)
	if !waitFor(30*time.Second, func() bool {
		r, err := st.mon.Learned()
		return err == nil && len(r.Flows) == learned
	}) {
		b.Fatalf("the learned-rule monitor did not reach %d rules", learned)
	}
	// tags: the DC continues chains from the tunnel (tag rules), so its
	// learned rules are read every time (from the monitor, no process)
	st.hasTags, st.learning = tags, tags
	fs, err := p.FlowCounts(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, f := range fs {
		total += f.Flows
	}
	if want := entry*m + learned*m; total != want {
		b.Fatalf("counted %d flow-instance pins, want %d", total, want)
	}
	// CPU time of this process and of its children (the ovs-ofctl runs):
	// wall time on a loaded shared host is mostly waiting
	cpu := func() time.Duration {
		var self, kids syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
		tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
		return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
	}
	b.ResetTimer()
	c0 := cpu()
	ops := 0
	for b.Loop() {
		if _, err := p.FlowCounts(ctx, 0); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64((cpu()-c0).Microseconds())/1000/float64(ops), "cpu-ms/op")
}
