package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// idsFlowPackets reads an IDS instance's own per-flow counters: the
// elements of its nftables set "flows" (source address . source port,
// updated with a counter by every UDP packet it forwards), by source port.
func idsFlowPackets(ctx context.Context, in *netns.Instance) (map[int]uint64, error) {
	out, err := ovs.InNetns(ctx, in.NS, "nft", "-j", "list", "set", "netdev", "ims", "flows")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []struct {
					Elem struct {
						Val struct {
							Concat []any `json:"concat"`
						} `json:"val"`
						Counter struct {
							Packets uint64 `json:"packets"`
						} `json:"counter"`
					} `json:"elem"`
				} `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("nft -j list set: %v", err)
	}
	got := map[int]uint64{}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			c := e.Elem.Val.Concat
			if len(c) != 2 {
				return nil, fmt.Errorf("nft set element %v: want address . port", c)
			}
			port, ok := c[1].(float64)
			if !ok {
				return nil, fmt.Errorf("nft set element %v: port is not a number", c)
			}
			got[int(port)] += e.Elem.Counter.Packets
		}
	}
	return got, nil
}

// switchSocketDrops is what the kernel dropped at ovs-vswitchd's packet
// sockets (the userspace datapath reads every port through one, from its
// main thread) because their receive queues were full, by port: the drop
// counts ("d") of `ss -0 -m` in the switch's namespace, every socket
// parsed (zeros too), so a caller can tell a port without drops from a
// port whose line ss no longer prints in the form ssDrop reads.
func switchSocketDrops(ctx context.Context, p *Plane) (map[string]uint64, error) {
	out, err := ovs.InNetns(ctx, p.d.SwitchNS(), "ss", "-0", "-a", "-m", "-n")
	if err != nil {
		return nil, err
	}
	drops := map[string]uint64{}
	for _, m := range ssDrop.FindAllStringSubmatch(out, -1) {
		n, err := strconv.ParseUint(m[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ss: %q: %v", m[0], err)
		}
		drops[m[1]] += n
	}
	return drops, nil
}

// ssDrop matches a packet socket of ss -0 -m: its interface and the
// drop count of its skmem.
var ssDrop = regexp.MustCompile(`\*:(\S+)\s[^\n]*?skmem:\([^)]*,d(\d+)\)`)

// Many flows of one pair arrive through the tunnel at DC 1, which runs the
// whole chain with two IDS instances, then three: the flows go where the
// tag rules' split (Route's placement of the next two flows) sends them,
// counted by each instance's own nftables flow set: phase A over the two
// idle IDS instances alike; then the switch's flow counts become the
// routing loads (8 and 8), a third, empty instance comes and phase B goes
// to it. No flow is split between instances although the split changes
// under the running flows (the third instance, two interval changes:
// interval 0's rules are recompiled, then removed), and the callee's socket
// gets every packet. Before the split, every flow of the pair went to the
// one instance the tag rule named.
func TestTransitFlowsSpreadOverTheInstances(t *testing.T) {
	ctx := context.Background()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 1, 1, 1, 1}}
	p := newPlane(t, 2, 3, paths, false)
	ids := map[uint8]*netns.Instance{}
	// the switch ports the test's packets enter the switch by: the
	// caller's users port and every instance's out port
	entries := []string{p.UsersNS(0)}
	for _, x := range []struct {
		stage int
		idx   uint8
	}{{1, 10}, {2, 20}, {2, 21}, {3, 30}} {
		in, err := p.AddInstance(ctx, 1, x.stage, x.idx, kinds[x.stage-1])
		if err != nil {
			t.Fatal(err)
		}
		if x.stage == 2 {
			ids[x.idx] = in
		}
		entries = append(entries, in.OutName)
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	for k, u := range []routing.IPv4{caller, callee} {
		if err := p.AddUser(ctx, k, u); err != nil {
			t.Fatal(err)
		}
	}
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")

	// 16 flows per phase, from even source ports (RTP), one per bucket;
	// 25 packets/s each until its phase stops
	const perPhase, gap = 16, 40 * time.Millisecond
	var (
		mu   sync.Mutex
		sent = map[int]int{}
		wg   sync.WaitGroup
	)
	start := func(first int, stop <-chan struct{}) []int {
		var ports []int
		for i := 0; i < perPhase; i++ {
			port := first + 2*i
			ports = append(ports, port)
			c := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
				CallerSendPort: uint16(port), CallerRecvPort: 6000, CalleeSendPort: uint16(port), CalleeRecvPort: 6000,
				CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
			if _, err := p.StartCall(ctx, c, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: uint16(port), DstIP: EntryIP(0), DstPort: 6000}}); err != nil {
				t.Fatal(err)
			}
			s := dial(t, p.UsersNS(0), fmt.Sprintf("%s:%d", caller, port))
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for {
					select {
					case <-stop:
						mu.Lock()
						sent[port] = n
						mu.Unlock()
						return
					default:
					}
					n += s.send(fmt.Sprintf("%s:6000", EntryIP(0)), 1, 0, nil)
					time.Sleep(gap)
				}
			}()
		}
		return ports
	}
	step := func(interval uint64) {
		for dc := 0; dc < 2; dc++ {
			if err := p.StoreNext(ctx, dc, interval, paths); err != nil {
				t.Fatal(err)
			}
		}
		for dc := 0; dc < 2; dc++ {
			if err := p.Enter(ctx, dc, interval); err != nil {
				t.Fatal(err)
			}
		}
	}
	stopA, stopB := make(chan struct{}), make(chan struct{})
	phaseA := start(20000, stopA) // interval 0: IDS 20 and 21
	time.Sleep(time.Second)
	// the local controller's tick: the switch's flow counts become the
	// routing loads (FlowCounts sets them), so the empty instance added next
	// takes the next transit flows
	idsFlows := func(want int) map[uint8]int {
		var counted map[uint8]int
		if !waitFor(5*time.Second, func() bool { // the learned-rule monitor follows the switch
			fc, err := p.FlowCounts(ctx, 1)
			if err != nil {
				return false
			}
			counted = map[uint8]int{}
			n := 0
			for _, f := range fc {
				if f.Stage == 2 {
					counted[f.Index] = f.Flows
					n += f.Flows
				}
			}
			return n == want
		}) {
			t.Errorf("FlowCounts of the IDS instances %v, want %d flows", counted, want)
		}
		return counted
	}
	idsFlows(perPhase)
	in22, err := p.AddInstance(ctx, 1, 2, 22, netns.IDS) // interval 0's split changes under phase A
	if err != nil {
		t.Fatal(err)
	}
	ids[22] = in22
	entries = append(entries, in22.OutName)
	step(1)
	phaseB := start(21000, stopB) // interval 1: IDS 20, 21 and 22
	time.Sleep(time.Second)
	step(2) // interval 0's rules go while phase A sends
	time.Sleep(time.Second)
	// the plane's counts (the learned rules, which feed the routing loads),
	// taken while every flow still sends: a learned rule times out 10 s
	// after its flow's last packet
	counted := idsFlows(2 * perPhase)
	close(stopA)
	step(3) // interval 1's rules go while phase B sends
	time.Sleep(time.Second)
	close(stopB)
	wg.Wait()
	total := 0
	for _, n := range sent {
		total += n
	}
	waitFor(20*time.Second, func() bool { // packets in flight through the forwarders
		got := 0
		for port := range sent {
			got += rx.count(port)
		}
		return got >= total
	})

	// where each flow went, by the IDS instances' own counters
	at := map[int]map[uint8]uint64{}
	for idx, in := range ids {
		got, err := idsFlowPackets(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for port, n := range got {
			if at[port] == nil {
				at[port] = map[uint8]uint64{}
			}
			at[port][idx] += n
		}
	}
	// want: each instance's fraction of the phase's flows (buckets/16)
	share := func(name string, ports []int, want map[uint8]float64) {
		per := map[uint8]uint64{}
		var all uint64
		for _, port := range ports {
			if len(at[port]) != 1 {
				t.Errorf("%s: flow from port %d went through IDS instances %v, want exactly one", name, port, at[port])
			}
			for idx, n := range at[port] {
				per[idx] += n
				all += n
			}
		}
		for _, idx := range []uint8{20, 21, 22} {
			// the bound: every instance within half its share (16 flows,
			// one per bucket), none for an instance without buckets
			eq := want[idx] * float64(all)
			if f := float64(per[idx]); f < 0.5*eq || f > 1.5*eq {
				t.Errorf("%s: IDS %d forwarded %d of %d packets, want within 50 %% of its share (%.0f)", name, idx, per[idx], all, eq)
			}
		}
		t.Logf("%s: IDS packets per instance %v of %d", name, per, all)
	}
	// the plane's counts saw the spread too: each IDS instance carried the
	// flows it forwarded
	perInst := map[uint8]int{}
	for _, on := range at {
		for idx := range on {
			perInst[idx]++
		}
	}
	if !maps.Equal(counted, perInst) {
		t.Errorf("FlowCounts of the IDS instances %v, their own flow sets %v", counted, perInst)
	}
	share("interval 0 (2 idle instances)", phaseA, map[uint8]float64{20: 0.5, 21: 0.5})
	share("interval 1 (loads 8, 8, 0)", phaseB, map[uint8]float64{22: 1})

	// per flow: a duplicate in one flow must not hide a loss in another
	got, lost, lostFlows := 0, 0, 0
	for port, n := range sent {
		g := rx.count(port)
		got += g
		switch {
		case g > n:
			t.Errorf("flow from port %d: callee got %d packets, %d sent", port, g, n)
		case g < n:
			lost += n - g
			lostFlows++
		}
	}
	var recv []string
	for _, idx := range []uint8{20, 21, 22} {
		st, err := ids[idx].Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recv = append(recv, fmt.Sprintf("%d: %d", idx, st.Received))
	}
	// Every packet sent reaches the callee, except one the kernel dropped
	// at a full receive queue of ovs-vswitchd: its userspace datapath
	// reads each port through a packet socket with the default 208 KB
	// buffer (~256 RTP frames), from its main thread. A forwarder starved
	// of CPU (the test's processes share 2 cores with the rest of the
	// machine) keeps what arrives in its own 8 MB buffer and then sends it
	// out at once, faster than the switch reads that port: session 18
	// counted 175 such drops at the firewall's out port and 1 at the
	// transcoder's, all 176 packets the callee missed, and reproduced it
	// by stopping the firewall's forwarder (docs/dataplane.md). That loss
	// is the machine's, not the split's; any other is a failure. Only the
	// sockets of the ports the packets enter the switch by count (drops
	// elsewhere cannot be the test's packets), and they must account for
	// the loss exactly but for dropSlack frames: the mechanism drops test
	// packets only, equal in every case seen (176 = 175+1, 162 = 22+140,
	// 417, 464), but a burst may also overflow a socket with the few frames
	// that are not test packets (ARP, IPv6 ND of the namespaces).
	const dropSlack = 4
	drops, err := switchSocketDrops(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var dropped uint64
	at0 := map[string]uint64{}
	for _, port := range entries {
		n, ok := drops[port]
		if !ok {
			t.Fatalf("no ovs-vswitchd socket of port %s in ss -0 -m (parsed %v): its drops cannot be read", port, drops)
		}
		dropped += n
		if n > 0 {
			at0[port] = n
		}
	}
	t.Logf("callee got %d of %d packets (%d lost, %d flows short); the IDS instances' in ports received %v; ovs-vswitchd's full sockets of the entry ports dropped %d %v (all sockets %v)", got, total, lost, lostFlows, recv, dropped, at0, drops)
	if uint64(lost) > dropped || dropped-uint64(lost) > dropSlack {
		t.Errorf("%d packets lost (%d flows short); ovs-vswitchd's full sockets of the ports they enter the switch by dropped %d (%v), want the loss and at most %d more", lost, lostFlows, dropped, at0, dropSlack)
	}
}
