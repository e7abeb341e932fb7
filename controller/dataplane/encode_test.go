package dataplane

import (
	"context"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// Every rule the compiler emits but the tag rules (learn, move: ovs-ofctl)
// is one the OpenFlow connection's encoder takes (ovs.Encodes), so a
// call's rule update (entry, exit and counter rules, tombstones) never
// falls back to ovs-ofctl: the rules of DC 1 of the 6.3.2 setup with a
// routed and a dropped flow, and of a plane after a call opened (its exit
// rules) and ended (its tombstones).
func TestCompiledRulesButTagRulesEncode(t *testing.T) {
	pk := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: routing.IPv4(0x0a650001), SrcPort: 6000, DstIP: routing.IPv4(0x0a640001), DstPort: 7000}
	routed := routing.Decision{Verdict: routing.Forward, Entry: true, DC: 1, Stages: 3, First: 1, Last: 3, Packet: pk, Tag: routing.NewTag(1, 0, 5)}
	for s := 1; s <= 3; s++ {
		routed.Instances[s-1] = uint8(10 * s)
	}
	fs := compileDC1With(t, false, []Flow{
		{Serial: 1, Decision: routed},
		{Serial: 2, Decision: routing.Decision{Verdict: routing.Drop, DC: 1, Stages: 3, Packet: pk}},
	})
	fs = append(fs, compileDC1(t, true)...) // masked tag ports
	b := newTakeoverBed(t)
	a := sipCall("127.0.0.101", "127.0.0.91")
	if err := b.p.OpenCall(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	fs = append(fs, b.sw.want...)
	kinds := map[uint64]int{}
	for _, f := range fs {
		kind := f.Cookie &^ (1<<48 - 1)
		err := ovs.Encodes(f)
		switch {
		case kind == ovs.CookieTag:
			if err == nil {
				t.Fatalf("tag rule %v encodes: its learn action is not the encoder's", f)
			}
		case err != nil:
			t.Fatalf("rule %v: %v", f, err)
		}
		kinds[kind]++
	}
	for _, k := range []uint64{ovs.CookieClassify, ovs.CookieStatic, ovs.CookieTag, ovs.CookieEntry, ovs.CookieExit, ovs.CookieMiss, ovs.CookiePair} {
		if kinds[k] == 0 {
			t.Fatalf("no rule of cookie kind %#x among %d rules: the test misses a shape", k, len(fs))
		}
	}
	t.Logf("%d rules by kind %v", len(fs), kinds)
}
