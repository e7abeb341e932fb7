package ovs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// BenchmarkCallUpdatePaths is one call's rule update on the real switch,
// over the OpenFlow connection and through ovs-ofctl, in one run: 200
// calls' entry rules of three pairs are installed (the rule set of a busy
// bridge), and each update ends one call (its entry rule becomes a
// tombstone in place) and starts another, as BenchmarkApplyCallChurn, so
// every op is one bundle of a few lines (wall clock, the Switch's work
// included). Real Open vSwitch: root, the OVS lock.
//
//	flock /tmp/ims-orch-ovs.lock flock /tmp/ims-orch-sip.lock nice go test -run '^$' -bench BenchmarkCallUpdatePaths -benchtime 200x ./drivers/ovs
func BenchmarkCallUpdatePaths(b *testing.B) {
	d := startReal(b)
	ctx := context.Background()
	for i, path := range []string{"conn", "ofctl"} {
		br := fmt.Sprintf("%sb%d", d.Prefix(), i)
		if err := d.EnsureBridge(ctx, br, i); err != nil {
			b.Fatal(err)
		}
		sw := d.NewSwitch(br)
		sw.clk = clock.NewVirtual(time.Now()) // no delayed delete: one tombstone at a time, taken over
		b.Cleanup(sw.Close)
		sw.conn = nil
		if path == "conn" {
			sw.conn = newOfConn(d.mgmt(br))
		}
		wants := churnSets(200, func(p Pair, c int) Flow {
			return Flow{Table: 1, Priority: 200, Cookie: EntryCookie(p, uint32(c)),
				Match:   fmt.Sprintf("udp,reg0=1,nw_src=10.100.%d.%d,tp_src=6000", c/250, c%250+1),
				Actions: CountPair(p, "set_field:0.3.0.0/0.255.0.0->ip_dst,set_field:7002->udp_dst,output:20")}
		})
		if _, err := sw.Apply(ctx, wants[0]); err != nil {
			b.Fatal(err)
		}
		b.Run(path, func(b *testing.B) {
			for i := range b.N {
				if _, err := sw.Apply(ctx, wants[(i+1)%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
		if p := sw.BundlePaths(); (path == "conn") != (p.Conn > 0 && p.Ofctl == 0) {
			b.Fatalf("%s: bundle paths %+v", path, p)
		}
	}
}
