package dataplane

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const packetSample = `sk               RefCnt Type Proto  Iface R Rmem   User   Inode
ffff8880054d1800 3      3    0003   5     1 2304   0      123
ffff8880054d2000 3      3    0000   6     0 0      0      124
`

func TestParsePacketRmem(t *testing.T) {
	if n, err := ParsePacketRmem([]byte(packetSample)); err != nil || n != 2304 {
		t.Fatalf("rmem %d %v, want 2304", n, err)
	}
	for name, in := range map[string]string{
		"empty":     "",
		"no column": "sk RefCnt\nffff 3\n",
		"short":     "sk Rmem\nffff\nx\n",
		"negative":  "sk Rmem\nffff -5\n",
	} {
		if _, err := ParsePacketRmem([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "packet:") {
			t.Errorf("%s: %v, want a packet: error", name, err)
		}
	}
}

func FuzzParsePacketRmem(f *testing.F) {
	f.Add([]byte(packetSample))
	f.Add([]byte("sk Rmem\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := ParsePacketRmem(b); err == nil && n < 0 {
			t.Fatalf("negative queue %d", n)
		}
	})
}

// CPU in percent of one core from clock ticks, Mem the input buffer's fill,
// PktRate from the packet count.
func TestInstanceSample(t *testing.T) {
	prev := ProcReading{Ticks: 100}
	cur := ProcReading{Ticks: 150, RSS: 9 << 20, Queued: RecvBuffer / 4}
	s := InstanceSample(time.Unix(10, 0), prev, cur, 2*time.Second, 100, 3000)
	if s.CPU != 25 || s.Mem != 25 || s.PktRate != 1500 || s.MemBytes != 9<<20 {
		t.Fatalf("sample %+v, want CPU 25 Mem 25 PktRate 1500", s)
	}
	if s := InstanceSample(time.Unix(10, 0), cur, prev, 0, 100, 5); s.CPU != 0 || s.PktRate != 0 {
		t.Fatalf("no time or a counter going back: %+v", s)
	}
}

// ReadProc on this very process: /proc/self has stat, status and net/packet.
func TestReadProcOfThisProcess(t *testing.T) {
	r, err := ReadProc(os.DirFS("/proc"), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.RSS <= 0 {
		t.Fatalf("reading %+v: no resident memory", r)
	}
	fake := fstest.MapFS{"7/stat": {Data: []byte("7 (x) Z 1 0 0 0 0 0 0 0 0 0 5 6")}}
	if _, err := ReadProc(fake, 7); err == nil {
		t.Fatal("a zombie forwarder read as alive")
	}
}
