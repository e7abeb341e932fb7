package dataplane

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
	"github.com/ims-orch/ims-orch/placement"
)

// randomPaths gives every pair of n DCs a loopless path of m stages, each
// stage in the entry, the exit or a random DC, with DC 0 on many paths.
func randomPaths(rng *rand.Rand, n, m int) map[placement.Pair]placement.Path {
	out := map[placement.Pair]placement.Path{}
	for e := 0; e < n; e++ {
		for x := 0; x < n; x++ {
			for {
				p := placement.Path{e}
				mid := rng.IntN(n)
				if rng.IntN(2) == 0 {
					mid = 0
				}
				cut := 1 + rng.IntN(m)
				for s := 1; s <= m; s++ {
					if s < cut {
						p = append(p, e)
					} else {
						p = append(p, mid)
					}
				}
				p = append(p, x)
				if p.Loopless() {
					out[placement.Pair{Entry: e, Exit: x}] = p
					break
				}
			}
		}
	}
	return out
}

// benchSwitch measures, on a real bridge, the rule update of DC 0 when it
// enters the next interval (step 5: a new path set becomes current, the
// oldest set's tag rules go, the next one's come with the next step 4), for
// n DCs (n² pairs), and reports the rules on the bridge.
func benchSwitch(b *testing.B, n int) {
	ctx := context.Background()
	d := ovstest.Start(b)
	br := BridgeName(d.Prefix(), 0)
	if err := d.EnsureBridge(ctx, br, 0); err != nil {
		b.Fatal(err)
	}
	sw := d.NewSwitch(br)
	rng := rand.New(rand.NewPCG(1, 2))
	const m = 3
	t, err := routing.NewTable(routing.Config{DC: 0, N: n, Stages: m, Paths: randomPaths(rng, n, m)})
	if err != nil {
		b.Fatal(err)
	}
	var live [routing.MaxStages]map[uint8]Ports
	for s := 1; s <= m; s++ {
		live[s-1] = map[uint8]Ports{}
		var work []routing.InstanceLoad
		for i := 0; i < 4; i++ {
			idx := uint8(n + i)
			live[s-1][idx] = InstancePorts(s, idx)
			work = append(work, routing.InstanceLoad{Index: idx})
		}
		if err := t.SetInstances(s, work); err != nil {
			b.Fatal(err)
		}
	}
	interval := uint64(0)
	step := func() (ovs.Changes, time.Duration) {
		if err := t.StoreNext(interval+1, randomPaths(rng, n, m)); err != nil {
			b.Fatal(err)
		}
		if err := t.Enter(interval + 1); err != nil {
			b.Fatal(err)
		}
		interval++
		want, err := Compile(Inputs{Table: t, Live: live, UsersMAC: UsersMAC(0)})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		c, err := sw.Apply(ctx, want)
		if err != nil {
			b.Fatal(err)
		}
		return c, time.Since(start)
	}
	step()
	step() // three sets held from here on
	b.ResetTimer()
	var total time.Duration
	var changed int
	for i := 0; i < b.N; i++ {
		c, dt := step()
		total += dt
		changed += c.Added + c.Deleted + c.Modified
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/switch")
	b.ReportMetric(float64(changed)/float64(b.N), "changed-rules/switch")
	b.ReportMetric(float64(sw.Installed()), "rules")
	b.ReportMetric(float64(n*n), "pairs")
}

func BenchmarkSwitchInterval100Pairs(b *testing.B)  { benchSwitch(b, 10) }
func BenchmarkSwitchInterval1024Pairs(b *testing.B) { benchSwitch(b, 32) }

// forwardBed is a chain of m stages in DC0 (m = 1: one instance) on a
// real switch with one call's media path from dc0's users to dc1's: send
// sends count packets (every gap; 0: unpaced) and returns how many it
// sent, rx counts what the receiving endpoint got from port 4000.
type forwardBed struct {
	insts []*netns.Instance
	rx    *receiver
	send  func(count int, gap time.Duration) int
}

func newForwardBed(b *testing.B, m int) *forwardBed {
	ctx := context.Background()
	hops := placement.Path{0}
	for s := 1; s <= m; s++ {
		hops = append(hops, 0)
	}
	hops = append(hops, 1)
	d := ovstest.Start(b)
	var tables []*routing.Table
	for k := 0; k < 2; k++ {
		tb, err := routing.NewTable(routing.Config{DC: k, N: 2, Stages: m, Paths: map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: hops}})
		if err != nil {
			b.Fatal(err)
		}
		tables = append(tables, tb)
	}
	p, err := New(ctx, Config{Daemon: d, Tables: tables, Forwarder: netnstest.Forwarder(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(ctx) })
	fb := &forwardBed{}
	for s := 1; s <= m; s++ {
		in, err := p.AddInstance(ctx, 0, s, uint8(10*s), kinds[s-1])
		if err != nil {
			b.Fatal(err)
		}
		fb.insts = append(fb.insts, in)
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	p.AddUser(ctx, 0, caller)
	p.AddUser(ctx, 1, callee)
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 5000, CalleeRecvPort: 5002,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	if _, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: 4000, DstIP: EntryIP(0), DstPort: 5002}}); err != nil {
		b.Fatal(err)
	}
	fb.rx = listenB(b, p.UsersNS(1), "10.101.0.1:5002")
	c, err := ListenUDP(p.UsersNS(0), "10.100.0.1:4000")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	s := &sender{c: c}
	dst := fmt.Sprintf("%s:5002", EntryIP(0))
	fb.send = func(count int, gap time.Duration) int { return s.send(dst, count, gap, nil) }
	return fb
}

// benchForward blasts RTP-sized packets unpaced for one second through a
// chain (DC0 hosts stages 1..m, m = 1: one instance) and reports what the
// receiving endpoint got per second.
func benchForward(b *testing.B, m int) {
	fb := newForwardBed(b, m)
	rx := fb.rx
	b.ResetTimer()
	var sent, got int
	var dur time.Duration
	for i := 0; i < b.N; i++ {
		before := rx.count(4000)
		start := time.Now()
		n := 0
		for time.Since(start) < time.Second {
			n += fb.send(100, 0)
		}
		dur += time.Since(start)
		waitFor(500*time.Millisecond, func() bool { return rx.count(4000)-before >= n })
		sent += n
		got += rx.count(4000) - before
	}
	b.ReportMetric(float64(got)/dur.Seconds(), "rcvd-pkt/s")
	b.ReportMetric(float64(sent)/dur.Seconds(), "sent-pkt/s")
	b.ReportMetric(100*float64(sent-got)/float64(max(sent, 1)), "loss-%")
}

// BenchmarkForwardPaced sends RTP-sized packets paced at a fixed rate for
// 3 s through one IDS instance and reports what the receiving endpoint
// got, the loss and the forwarder's CPU (the samples' CPU: its CPU time
// in percent of one core, /proc/PID/stat): the packet rate one instance
// carries on this machine, which a DP stage's capacity (the unit of the
// local controller's share-based rules: anticipation, FallingScaleIn, the
// reactive bar) should not pass (docs/dataplane.md "Capacity").
func BenchmarkForwardPaced(b *testing.B) {
	hz, err := agent.ClkTck()
	if err != nil {
		b.Fatal(err)
	}
	for _, rate := range []int{1000, 2000, 4000, 8000} {
		b.Run(fmt.Sprintf("%dpps", rate), func(b *testing.B) {
			fb := newForwardBed(b, 1)
			pid := fb.insts[0].Pid
			proc := os.DirFS("/proc")
			b.ResetTimer()
			var sent, got int
			var dur time.Duration
			var ticks uint64
			for i := 0; i < b.N; i++ {
				before := fb.rx.count(4000)
				r0, err := ReadProc(proc, pid)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				n := fb.send(3*rate, time.Second/time.Duration(rate))
				d := time.Since(start)
				waitFor(time.Second, func() bool { return fb.rx.count(4000)-before >= n })
				r1, err := ReadProc(proc, pid)
				if err != nil {
					b.Fatal(err)
				}
				dur += d
				ticks += r1.Ticks - r0.Ticks
				sent += n
				got += fb.rx.count(4000) - before
			}
			b.ReportMetric(float64(got)/dur.Seconds(), "rcvd-pkt/s")
			b.ReportMetric(100*float64(sent-got)/float64(max(sent, 1)), "loss-%")
			b.ReportMetric(float64(ticks)/float64(hz)/dur.Seconds()*100, "fwd-cpu-%")
		})
	}
}

func BenchmarkForwardOneInstance(b *testing.B) { benchForward(b, 1) }
func BenchmarkForwardChain(b *testing.B)       { benchForward(b, 3) }
