package ovs

import (
	"slices"
	"strings"
	"testing"
)

// captured from ovs-vswitchd 3.1 (`dump-flows --no-stats` and with stats)
const learnedDump = "OFPST_FLOW reply (OF1.5) (xid=0x6):\n" +
	" cookie=0x1307000000000000, duration=0.184s, table=1, n_packets=0, n_bytes=0, idle_timeout=10, idle_age=0, priority=190,udp,reg0=0x2,nw_src=10.1.0.1,nw_dst=10.0.0.0/16,tp_src=4000,tp_dst=1234 actions=set_field:10.100.10.11->ip_dst,output:5000\n" +
	" cookie=0x1307000000000000, table=1, idle_timeout=10, priority=190,udp,reg0=0x2,nw_src=10.1.0.2 actions=load:0x0a640a0c->NXM_OF_IP_DST[],output:5002\n"

func TestParseLearned(t *testing.T) {
	r := ParseLearned(learnedDump)
	if len(r.Skipped) != 0 {
		t.Fatal(r.Skipped)
	}
	fs := r.Flows
	want := []LearnedFlow{{DstIP: 10<<24 | 100<<16 | 10<<8 | 11, OutPort: 5000}, {DstIP: 0x0a640a0c, OutPort: 5002}}
	if len(fs) != len(want) || fs[0] != want[0] || fs[1] != want[1] {
		t.Fatalf("got %+v, want %+v", fs, want)
	}
	if r := ParseLearned("OFPST_FLOW reply (OF1.5) (xid=0x2):\n"); len(r.Flows) != 0 || len(r.Skipped) != 0 {
		t.Fatalf("no learned rules: %+v", r)
	}
}

// One unreadable rule is skipped and counted, naming its line; the rules
// around it are still read. Before, one such line failed the whole read, so
// every instance of the DC reported its flows unknown (no trim, no drain end)
// until that rule idled out.
func TestParseLearnedSkipsAnUnreadableRule(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(learnedDump, "\n"), "\n")
	for _, bad := range []string{
		" cookie=0x1307000000000000, table=1, priority=190,udp",                              // no actions
		" cookie=0x1307000000000000, table=1, priority=190 actions=set_field:10.1.2->ip_dst", // bad address
		" cookie=0x1307000000000000, table=1, priority=190 actions=output:99999",             // not a port
		` cookie=0x1307000000000000, table=1, priority=190 actions=output:"s8d0s1x2"`,        // a port name
	} {
		dump := strings.Join([]string{lines[0], lines[1], bad, lines[2]}, "\n")
		r := ParseLearned(dump)
		if len(r.Flows) != 2 || r.Flows[0].OutPort != 5000 || r.Flows[1].OutPort != 5002 {
			t.Errorf("%q: rules read %+v, want the 2 good ones", bad, r.Flows)
		}
		if len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0].Error(), "line 3") {
			t.Errorf("%q: skipped %v, want one error naming line 3", bad, r.Skipped)
		}
	}
}

func FuzzParseLearned(f *testing.F) {
	f.Add(learnedDump)
	f.Add(" cookie=0x1, actions=learn(a,b),output:1,mod_nw_dst:1.2.3.4")
	f.Add(" cookie=0x1, actions=output:1\n cookie=0x2, actions=output:x\nheader")
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseLearned(s)
		rules := 0
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "cookie=") {
				rules++
			}
		}
		if len(r.Flows)+len(r.Skipped) != rules {
			t.Fatalf("%d rules read and %d skipped of %d rule lines", len(r.Flows), len(r.Skipped), rules)
		}
		for _, fl := range r.Flows {
			if fl.OutPort < 0 || fl.OutPort > 0xffff {
				t.Fatalf("port %d out of range", fl.OutPort)
			}
		}
		again := ParseLearned(s)
		if !slices.Equal(again.Flows, r.Flows) || len(again.Skipped) != len(r.Skipped) {
			t.Fatalf("a second parse of the same dump differs: %+v, then %+v", r, again)
		}
	})
}
