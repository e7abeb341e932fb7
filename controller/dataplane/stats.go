package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/local"
)

// RecvBuffer is a DP forwarder's input buffer in bytes: dpfwd asks for 4 MiB
// (SO_RCVBUFFORCE) and the kernel doubles it for its bookkeeping.
const RecvBuffer = 8 << 20

// ProcReading is one reading of a DP instance's process.
type ProcReading struct {
	// Ticks is the forwarder's CPU time (user + system, clock ticks).
	Ticks uint64
	// RSS is its resident memory, Queued the bytes waiting in its packet
	// sockets' receive queues (frames it has not forwarded yet).
	RSS, Queued int64
}

// ReadProc reads a forwarder's CPU time, resident memory and receive queue
// from proc (/proc): /PID/stat, /PID/status and /PID/net/packet (the packet
// sockets of the process's network namespace: the instance's own).
func ReadProc(proc fs.FS, pid int) (ProcReading, error) {
	var r ProcReading
	p := strconv.Itoa(pid)
	b, err := fs.ReadFile(proc, p+"/stat")
	if err != nil {
		return r, err
	}
	st, err := agent.ParseStat(b)
	if err != nil {
		return r, fmt.Errorf("/proc/%d/%w", pid, err)
	}
	if st.State == 'Z' || st.State == 'X' {
		return r, fmt.Errorf("/proc/%d: the forwarder is a zombie", pid)
	}
	r.Ticks = st.UTime + st.STime
	if b, err = fs.ReadFile(proc, p+"/status"); err != nil {
		return r, err
	}
	m, err := agent.ParseStatus(b)
	if err != nil {
		return r, fmt.Errorf("/proc/%d/%w", pid, err)
	}
	r.RSS = m.RSS
	if b, err = fs.ReadFile(proc, p+"/net/packet"); err != nil {
		return r, err
	}
	if r.Queued, err = ParsePacketRmem(b); err != nil {
		return r, fmt.Errorf("/proc/%d/net/%w", pid, err)
	}
	return r, nil
}

// ParsePacketRmem sums the Rmem column (bytes queued for reading) of
// /proc/net/packet.
func ParsePacketRmem(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	col := -1
	var sum int64
	for line := 0; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if line == 0 {
			for i, h := range f {
				if h == "Rmem" {
					col = i
				}
			}
			if col < 0 {
				return 0, fmt.Errorf("packet: no Rmem column in %q", sc.Text())
			}
			continue
		}
		if len(f) == 0 {
			continue
		}
		if col >= len(f) {
			return 0, fmt.Errorf("packet: line %d has %d fields, Rmem is field %d", line+1, len(f), col+1)
		}
		v, err := strconv.ParseInt(f[col], 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("packet: line %d: Rmem %q is not a byte count", line+1, f[col])
		}
		sum += v
	}
	if col < 0 {
		return 0, fmt.Errorf("packet: empty")
	}
	return sum, sc.Err()
}

// InstanceSample turns two readings dt apart into the statistics of a DP
// instance (pure):
//
//	CPU      the forwarder's CPU time over dt in percent of one core (the
//	         instance's entitlement, like a VM with one vCPU); 100 = a
//	         core busy forwarding
//	Mem      how full its input buffer is: bytes queued and not yet
//	         forwarded, in percent of RecvBuffer (the DP analogue of
//	         Kamailio's shared memory in use: what fills up under load)
//	MemBytes its resident memory
//	PktRate  packets/s the switch sent into its in port (interface counter)
func InstanceSample(at time.Time, prev, cur ProcReading, dt time.Duration, clkTck int, pkts uint64) agent.Sample {
	s := agent.Sample{At: at, MemBytes: cur.RSS, Mem: float64(cur.Queued) / RecvBuffer * 100}
	if sec := dt.Seconds(); sec > 0 {
		if cur.Ticks >= prev.Ticks {
			s.CPU = float64(cur.Ticks-prev.Ticks) / float64(clkTck) / sec * 100
		}
		s.PktRate = float64(pkts) / sec
	}
	return s
}

// StatsSink takes one statistics report of an instance (the local
// controller's intake: local.Controller.ReportStats).
type StatsSink interface {
	ReportStats(id string, s local.Stats) error
}

// SampleStats reports every active DP instance of attached datacenter dc to
// sink each period until ctx ends (InstanceSample says what CPU, Mem and
// PktRate are). Packet counts come from the switch side of the veths (one
// netlink dump for all instances), CPU and memory from each forwarder's
// /proc, Flows from the flows the DC's switch pins to the instance
// (FlowCounts: the plane's per-flow rules and the rules the switch learned).
// When the switch's rules cannot be read, the samples say FlowsUnknown.
func (p *Plane) SampleStats(ctx context.Context, dc int, sink StatsSink, period time.Duration) error {
	p.mu.Lock()
	st, err := p.dc(dc)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if st.router == nil || p.cfg.Driver == nil {
		return fmt.Errorf("dc: %d has a standalone table: its instances are not the driver's (Config.Routers)", dc)
	}
	flows := func(ctx context.Context) (map[string]int, error) {
		fs, err := p.FlowCounts(ctx, dc)
		if err != nil {
			return nil, err
		}
		out := make(map[string]int, len(fs))
		for _, f := range fs {
			if f.ID != "" {
				out[f.ID] = f.Flows
			}
		}
		return out, nil
	}
	hz, err := agent.ClkTck()
	if err != nil {
		return fmt.Errorf("dataplane: statistics of %s: %w", st.name, err)
	}
	sampleStats(ctx, p.cfg.Driver, os.DirFS("/proc"), hz, st.name, flows, sink, period)
	return nil
}

// instanceCounters is what sampleStats needs of the driver (netns.Driver):
// the switch-side packet counters of a DC's instances and their forwarders.
type instanceCounters interface {
	InPackets(ctx context.Context, dc string) (map[string]uint64, error)
	Pid(id string) int
}

func sampleStats(ctx context.Context, drv instanceCounters, proc fs.FS, clkTck int, dc string,
	flowsOf func(context.Context) (map[string]int, error), sink StatsSink, period time.Duration) {
	s := &statsSampler{drv: drv, proc: proc, clkTck: clkTck, dc: dc, flowsOf: flowsOf, sink: sink, period: period,
		now: time.Now, prev: map[string]lastReading{}}
	everyTick(ctx, period, func() { s.tick(ctx) })
}

// statsSampler is one DC's sampling state (sampleStats).
type statsSampler struct {
	drv     instanceCounters
	proc    fs.FS
	clkTck  int
	dc      string
	flowsOf func(context.Context) (map[string]int, error)
	sink    StatsSink
	period  time.Duration
	now     func() time.Time
	prev    map[string]lastReading
}

type lastReading struct {
	at   time.Time
	rcv  uint64
	pid  int
	proc ProcReading
}

// tick reports one sample of every instance with a previous reading.
func (s *statsSampler) tick(ctx context.Context) {
	counts, err := s.drv.InPackets(ctx, s.dc)
	if err != nil {
		return // the switch namespace is being restarted or gone: Watch reports it
	}
	// the time of the counters: the flow dump below takes tens of ms of
	// ovs-ofctl, more under load, and would skew the rate's interval
	now := s.now()
	// flowsOf names every instance in the plane's live view (0 flows
	// included); one the driver runs but the view lacks (booting, or its
	// routing index lost) may still be the target of learned rules the
	// count cannot attribute: its flows are unknown, not 0. The dump is
	// bounded (half a period): a hung ovs-vswitchd must not stop
	// the CPU and packet samples; on expiry the flows are unknown
	fctx, cancel := context.WithTimeout(ctx, max(s.period/2, time.Millisecond))
	flows, ferr := s.flowsOf(fctx)
	cancel()
	for id, rcv := range counts {
		pid := s.drv.Pid(id)
		if pid == 0 {
			continue
		}
		r, err := ReadProc(s.proc, pid)
		if err != nil {
			continue // the forwarder just exited: the driver reports the instance gone
		}
		cur := lastReading{at: now, rcv: rcv, pid: pid, proc: r}
		p, ok := s.prev[id]
		s.prev[id] = cur
		if !ok || p.pid != pid || !now.After(p.at) || rcv < p.rcv {
			continue // the first reading: rates need two
		}
		smp := InstanceSample(now, p.proc, r, now.Sub(p.at), s.clkTck, rcv-p.rcv)
		n, known := flows[id]
		_ = s.sink.ReportStats(id, local.Stats{At: smp.At, CPU: smp.CPU, Mem: smp.Mem, PktRate: smp.PktRate,
			Flows: n, FlowsUnknown: ferr != nil || !known})
	}
	for id := range s.prev {
		if _, ok := counts[id]; !ok {
			delete(s.prev, id)
		}
	}
}
