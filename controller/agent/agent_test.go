package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

func statLine(pid int, comm string, ppid int, utime, stime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1 0 0 0 %d %d 0 0 20 0 1 0 100 1000 200 18446744073709551615\n", pid, comm, ppid, pid, pid, utime, stime)
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ProcStat
		wantErr string
	}{
		{"kamailio", statLine(42, "kamailio", 1, 120, 30), ProcStat{Pid: 42, Comm: "kamailio", State: 'S', PPid: 1, UTime: 120, STime: 30}, ""},
		{"comm with spaces and parens", statLine(7, "a) (b c", 42, 5, 6), ProcStat{Pid: 7, Comm: "a) (b c", State: 'S', PPid: 42, UTime: 5, STime: 6}, ""},
		{"empty", "", ProcStat{}, "no \"pid (comm)\""},
		{"bad pid", "x (k) S 1 1 1 0 -1 0 0 0 0 0 1 1", ProcStat{}, "pid"},
		{"short", "1 (k) S 1 1", ProcStat{}, "fields after comm"},
		{"bad utime", "1 (k) S 1 1 1 0 -1 0 0 0 0 0 x 1", ProcStat{}, "utime"},
		{"bad state", "1 (k) SS 1 1 1 0 -1 0 0 0 0 0 1 1", ProcStat{}, "state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseStatusAndChildren(t *testing.T) {
	m, err := ParseStatus([]byte("Name:\tkamailio\nVmRSS:\t  2048 kB\nRssAnon:\t  1024 kB\nRssFile:\t 512 kB\nRssShmem:\t 512 kB\n"))
	if err != nil || m != (ProcMem{RSS: 2048 * 1024, RssAnon: 1024 * 1024, RssShmem: 512 * 1024}) {
		t.Fatalf("ParseStatus = %+v, %v", m, err)
	}
	for name, in := range map[string]string{"no VmRSS": "Name: x\n", "bad unit": "VmRSS: 3 MB\n", "negative": "VmRSS: -3 kB\n"} {
		if _, err := ParseStatus([]byte(in)); err == nil {
			t.Errorf("%s: ParseStatus succeeded", name)
		}
	}
	if c, err := ParseChildren([]byte("43 44 45 \n")); err != nil || len(c) != 3 || c[2] != 45 {
		t.Fatalf("ParseChildren = %v, %v", c, err)
	}
	if _, err := ParseChildren([]byte("43 x")); err == nil {
		t.Fatal("ParseChildren accepted x")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(42, "kamailio", 1, 120, 30)))
	f.Add([]byte("1 ((() S 1 1 1 0 -1 0 0 0 0 0 1 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err == nil && s.Pid <= 0 {
			t.Fatalf("accepted pid %d", s.Pid)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("VmRSS:\t 2048 kB\nRssAnon: 1 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseStatus(b)
		if err == nil && (m.RSS < 0 || m.RssAnon < 0 || m.RssShmem < 0) {
			t.Fatalf("negative memory %+v", m)
		}
		_, _ = ParseChildren(b)
	})
}

type fakeCounters struct {
	vals map[string]int64
	err  error
}

func (f *fakeCounters) Stats(_ context.Context, names ...string) (map[string]int64, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]int64{}
	for _, n := range names {
		if v, ok := f.vals[n]; ok {
			out[n] = v
		}
	}
	return out, nil
}

type sink struct {
	got []Sample
	ids []string
}

func (s *sink) ReportStats(id string, x Sample) error {
	s.ids = append(s.ids, id)
	s.got = append(s.got, x)
	return nil
}

func procFS(mainTicks, childTicks [2]uint64, withChildrenFile bool) fstest.MapFS {
	fsys := fstest.MapFS{
		"42/stat":   {Data: []byte(statLine(42, "kamailio", 1, mainTicks[0], mainTicks[1]))},
		"42/status": {Data: []byte("VmRSS: 4000 kB\nRssAnon: 1000 kB\nRssShmem: 3000 kB\n")},
		"43/stat":   {Data: []byte(statLine(43, "kamailio", 42, childTicks[0], childTicks[1]))},
		"43/status": {Data: []byte("VmRSS: 5000 kB\nRssAnon: 500 kB\nRssShmem: 4000 kB\n")},
		"99/stat":   {Data: []byte(statLine(99, "other", 1, 1000, 1000))},
	}
	if withChildrenFile {
		fsys["42/task/42/children"] = &fstest.MapFile{Data: []byte("43")}
	}
	return fsys
}

func TestAgentSamples(t *testing.T) {
	for _, withChildren := range []bool{true, false} {
		t.Run(fmt.Sprintf("children file %v", withChildren), func(t *testing.T) {
			clk := clock.NewVirtual(time.Unix(0, 0))
			ctr := &fakeCounters{vals: map[string]int64{
				"core:rcv_requests": 1000, "core:rcv_requests_ack": 100, "core:rcv_replies": 500,
				"tmx:active_transactions": 0, "dialog:active_dialogs": 0,
				"shmem:real_used_size": 25, "shmem:total_size": 100,
			}}
			proc := procFS([2]uint64{10, 10}, [2]uint64{100, 0}, withChildren)
			sk := &sink{}
			a, err := New(Config{ID: "p1", Pid: 42, Proc: proc, Counters: ctr, Sink: sk, Clock: clk, Cores: 2, ClkTck: 100})
			if err != nil {
				t.Fatal(err)
			}
			a.Start()
			if len(sk.got) != 0 {
				t.Fatal("a sample from a single reading")
			}
			// one second later: main +20 ticks, child +80 ticks (= 1 s of CPU),
			// 600 requests (400 of them ACK) + 300 replies
			proc["42/stat"].Data = []byte(statLine(42, "kamailio", 1, 25, 15))
			proc["43/stat"].Data = []byte(statLine(43, "kamailio", 42, 150, 30))
			ctr.vals["core:rcv_requests"] = 1600
			ctr.vals["core:rcv_replies"] = 800
			ctr.vals["core:rcv_requests_ack"] = 500 // 600 requests of which 400 ACKs: 200 transactions
			ctr.vals["tmx:active_transactions"] = 7
			ctr.vals["dialog:active_dialogs"] = 3
			clk.Advance(time.Second)
			if len(sk.got) != 1 || sk.ids[0] != "p1" {
				t.Fatalf("samples = %+v", sk.got)
			}
			s := sk.got[0]
			want := Sample{At: time.Unix(1, 0), CPU: 50, Mem: 25, MemBytes: (1500 + 4000) * 1024, PktRate: 900, TxnRate: 200, ActiveTransactions: 7, ActiveDialogs: 3}
			if !reflect.DeepEqual(s, want) {
				t.Fatalf("sample = %+v\nwant     %+v", s, want)
			}
			if s.InFlight() != 10 {
				t.Fatalf("InFlight = %d, want 7 transactions + 3 dialogs", s.InFlight())
			}
			// a counter reset (restart) gives rate 0, not a negative one
			ctr.vals["core:rcv_requests"] = 10
			ctr.vals["core:rcv_replies"] = 1100
			clk.Advance(time.Second)
			if s := sk.got[1]; s.PktRate != 300 || math.IsNaN(s.CPU) || s.CPU != 0 {
				t.Fatalf("after reset = %+v", s)
			}
			a.Stop()
			clk.Advance(5 * time.Second)
			if len(sk.got) != 2 {
				t.Fatalf("samples after Stop: %d", len(sk.got))
			}
		})
	}
}

func TestAgentStopsWhenGone(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	proc := procFS([2]uint64{1, 1}, [2]uint64{1, 1}, true)
	var errs []error
	a, err := New(Config{ID: "p1", Pid: 42, Proc: proc, Counters: &fakeCounters{vals: map[string]int64{}}, Clock: clk,
		OnError: func(e error) { errs = append(errs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	delete(proc, "42/stat")
	clk.Advance(time.Second)
	if !a.Stopped() || len(errs) != 1 || !errors.Is(errs[0], ErrGone) {
		t.Fatalf("stopped=%v errs=%v", a.Stopped(), errs)
	}
	if clk.Pending() != 0 {
		t.Fatal("a gone agent keeps a timer")
	}
}

func TestAgentCounterErrorKeepsGoing(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	ctr := &fakeCounters{err: errors.New("timeout")}
	var errs []error
	a, _ := New(Config{ID: "p1", Pid: 42, Proc: procFS([2]uint64{1, 1}, [2]uint64{1, 1}, true), Counters: ctr, Clock: clk,
		OnError: func(e error) { errs = append(errs, e) }})
	a.Start()
	clk.Advance(time.Second)
	if a.Stopped() || len(errs) != 2 || !strings.Contains(errs[0].Error(), "counters: timeout") {
		t.Fatalf("stopped=%v errs=%v", a.Stopped(), errs)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{ID: "x", Pid: 1, Proc: fstest.MapFS{}, Counters: &fakeCounters{}, Clock: clock.NewVirtual(time.Unix(0, 0))}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no id", func(c *Config) { c.ID = "" }, "ID"},
		{"bad pid", func(c *Config) { c.Pid = 0 }, "Pid"},
		{"no proc", func(c *Config) { c.Proc = nil }, "Proc"},
		{"no counters", func(c *Config) { c.Counters = nil }, "Counters"},
		{"no clock", func(c *Config) { c.Clock = nil }, "Clock"},
		{"negative interval", func(c *Config) { c.Interval = -1 }, "Interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
}

// compute must refuse a clock that did not move.
func TestComputeNeedsTime(t *testing.T) {
	r := &reading{at: time.Unix(5, 0)}
	if _, _, err := compute(r, r, ProcMem{}, 100, 1); err == nil {
		t.Fatal("compute accepted a zero interval")
	}
}

// lateFS stands for /proc read on a loaded host: every open takes d.
type lateFS struct {
	fs.FS
	d time.Duration
}

func (l lateFS) Open(name string) (fs.File, error) {
	time.Sleep(l.d)
	return l.FS.Open(name)
}

type deadlineCounters struct{ left []time.Duration }

func (d *deadlineCounters) Stats(ctx context.Context, _ ...string) (map[string]int64, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, errors.New("no deadline")
	}
	d.left = append(d.left, time.Until(dl))
	return map[string]int64{}, ctx.Err()
}

// The instance gets its Interval/2 to answer counted from the request: a
// slow read of /proc before it (the agent's process waiting for the CPU)
// does not use up the instance's time. Before, the budget ran from the
// start of the measurement and a late agent asked with its deadline
// already over (e2e/sip TestSIPRounds under load: "write udp … i/o
// timeout", the request never sent, a healthy instance declared failed).
func TestAgentCounterBudgetStartsAtTheRequest(t *testing.T) {
	const interval = 100 * time.Millisecond
	ctr := &deadlineCounters{}
	// the 5 /proc opens of procFS take 5 × 20 ms, twice the budget of 50 ms
	a, err := New(Config{ID: "p1", Pid: 42, Proc: lateFS{procFS([2]uint64{1, 1}, [2]uint64{1, 1}, true), 20 * time.Millisecond},
		Counters: ctr, Clock: clock.NewVirtual(time.Unix(0, 0)), Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	a.Start() // the first sample is taken at once
	a.Stop()
	if len(ctr.left) != 1 || ctr.left[0] < interval/2-10*time.Millisecond {
		t.Fatalf("counters asked with %v left, want about %v", ctr.left, interval/2)
	}
}
