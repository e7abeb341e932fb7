package routing_test

import (
	"fmt"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement"
)

// A flow from a user at DC 0 to a user at DC 1 over the path (0,0,1,1,1):
// DC 0 tags it and runs stage 1, DC 1 runs stages 2 and 3 and translates it
// out of the chain.
func Example() {
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 1, 1, 1}}
	call := routing.Call{
		CallerDC: 0, CalleeDC: 1,
		CallerIP: 0x0a000005, CalleeIP: 0x0a010007, // 10.0.0.5, 10.1.0.7
		CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 6000, CalleeRecvPort: 6002,
		CallerEntryIP: 0xc0a80001, CalleeEntryIP: 0xc0a80101, // 192.168.0.1, 192.168.1.1
	}
	var dcs []*routing.Table
	for dc := 0; dc < 2; dc++ {
		t, err := routing.NewTable(routing.Config{DC: dc, N: 2, Stages: 3, Interval: 6, Paths: paths})
		if err != nil {
			panic(err)
		}
		for s := 1; s <= 3; s++ {
			_ = t.SetInstances(s, []routing.InstanceLoad{{Index: uint8(10 * s), Load: 3}, {Index: uint8(10*s + 1), Load: 1}})
		}
		_ = t.AddCall(call)
		dcs = append(dcs, t)
	}
	p := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: call.CallerIP, SrcPort: 4000, DstIP: call.CallerEntryIP, DstPort: 5004}
	d0 := dcs[0].Route(p)
	fmt.Println(d0)
	for _, r := range d0.AppendRules(nil) {
		fmt.Println(" ", r)
	}
	p.From, p.DstIP, p.DstPort = routing.FromTunnel, d0.DstIP, d0.DstPort
	d1 := dcs[1].Route(p)
	fmt.Println(d1)
	for _, r := range d1.AppendRules(nil) {
		fmt.Println(" ", r)
	}
	// Output:
	// dc0 user 10.0.0.5:4000→192.168.0.1:5004 tag=0→1@2 interval=6 path=(0,0,1,1,1) entry s1→#11 dst=11.1.0.1:6 tunnel→dc1
	//   priority=200,in=user,nw_proto=17,nw_src=10.0.0.5,nw_dst=192.168.0.1,tp_src=4000,tp_dst=5004 actions=set_field:6->tp_dst,set_field:11.1.0.0/255.255.0.0->ip_dst,output:stage1-instance11  # dc0 flow 0→1@2 interval 6 → stage 1
	// dc1 tunnel 10.0.0.5:4000→11.1.0.1:6 tag=0→1@2 interval=6 path=(0,0,1,1,1) s2→#21 s3→#31 dst=11.21.31.1:6 exit(src→192.168.1.1 dst→10.1.0.7:6002)
	//   priority=200,in=tunnel,nw_proto=17,nw_src=10.0.0.5,nw_dst=11.1.0.1,tp_src=4000,tp_dst=6 actions=set_field:0.21.31.1/0.255.255.255->ip_dst,output:stage2-instance21  # dc1 flow 0→1@2 interval 6 → stage 2
	//   priority=200,in=stage3-exit,nw_proto=17,nw_src=10.0.0.5,nw_dst=0.0.0.1/0.0.0.255,tp_src=4000,tp_dst=6 actions=set_field:192.168.1.1->ip_src,set_field:10.1.0.7->ip_dst,set_field:6002->tp_dst,output:users  # dc1 flow 0→1@2 leaves the chain: src→192.168.1.1 dst→10.1.0.7:6002
}
