package ovs

import (
	"strings"
	"testing"
)

// captured from ovs-vswitchd 3.1 (`dump-flows --no-stats` and with stats)
const learnedDump = "OFPST_FLOW reply (OF1.5) (xid=0x6):\n" +
	" cookie=0x1307000000000000, duration=0.184s, table=1, n_packets=0, n_bytes=0, idle_timeout=10, idle_age=0, priority=190,udp,reg0=0x2,nw_src=10.1.0.1,nw_dst=10.0.0.0/16,tp_src=4000,tp_dst=1234 actions=set_field:10.100.10.11->ip_dst,output:5000\n" +
	" cookie=0x1307000000000000, table=1, idle_timeout=10, priority=190,udp,reg0=0x2,nw_src=10.1.0.2 actions=load:0x0a640a0c->NXM_OF_IP_DST[],output:5002\n"

func TestParseLearned(t *testing.T) {
	fs, err := ParseLearned(learnedDump)
	if err != nil {
		t.Fatal(err)
	}
	want := []LearnedFlow{{DstIP: 10<<24 | 100<<16 | 10<<8 | 11, OutPort: 5000}, {DstIP: 0x0a640a0c, OutPort: 5002}}
	if len(fs) != len(want) || fs[0] != want[0] || fs[1] != want[1] {
		t.Fatalf("got %+v, want %+v", fs, want)
	}
	for _, bad := range []string{
		" cookie=0x1307000000000000, table=1, priority=190,udp",                              // no actions
		" cookie=0x1307000000000000, table=1, priority=190 actions=set_field:10.1.2->ip_dst", // bad address
		" cookie=0x1307000000000000, table=1, priority=190 actions=output:99999",             // not a port
	} {
		if _, err := ParseLearned(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want one naming line 1", bad, err)
		}
	}
	if fs, err := ParseLearned("OFPST_FLOW reply (OF1.5) (xid=0x2):\n"); err != nil || len(fs) != 0 {
		t.Fatalf("no learned rules: %v %v", fs, err)
	}
}

func FuzzParseLearned(f *testing.F) {
	f.Add(learnedDump)
	f.Add(" cookie=0x1, actions=learn(a,b),output:1,mod_nw_dst:1.2.3.4")
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := ParseLearned(s)
		if err != nil {
			return
		}
		for _, fl := range fs {
			if fl.OutPort < 0 || fl.OutPort > 0xffff {
				t.Fatalf("port %d out of range", fl.OutPort)
			}
		}
	})
}
