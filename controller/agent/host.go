package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// CPUTimes is the aggregate "cpu" line of /proc/stat, in clock ticks.
type CPUTimes struct {
	Busy, Total uint64
}

// ParseCPUStat reads the aggregate "cpu" line of /proc/stat: Total is the
// sum of its fields (user nice system idle iowait irq softirq steal; guest
// time is already inside user), Busy is Total minus idle and iowait.
func ParseCPUStat(b []byte) (CPUTimes, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return CPUTimes{}, fmt.Errorf("stat: cpu line has %d fields, want at least 4 counters", len(f)-1)
		}
		var t CPUTimes
		var idle uint64
		for i, s := range f[1:min(len(f), 9)] { // guest and guest_nice are counted in user already
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("stat: cpu field %d %q: not a counter", i+1, s)
			}
			if t.Total+n < t.Total {
				return CPUTimes{}, errors.New("stat: cpu counters overflow")
			}
			t.Total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		t.Busy = t.Total - idle
		return t, nil
	}
	if err := sc.Err(); err != nil {
		return CPUTimes{}, fmt.Errorf("stat: %w", err)
	}
	return CPUTimes{}, errors.New("stat: no aggregate \"cpu\" line")
}

// MemInfo is what the agent reads from /proc/meminfo, in bytes.
type MemInfo struct {
	Total, Available int64
}

// ParseMemInfo reads MemTotal and MemAvailable (kB). Kernels before 3.14
// lack MemAvailable: MemFree + Buffers + Cached stands in.
func ParseMemInfo(b []byte) (MemInfo, error) {
	vals := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch key {
		case "MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached":
		default:
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return MemInfo{}, fmt.Errorf("meminfo: %s: %q: want \"N kB\"", key, strings.TrimSpace(val))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return MemInfo{}, fmt.Errorf("meminfo: %s: %q: not a size in kB", key, f[0])
		}
		vals[key] = n * 1024
	}
	if err := sc.Err(); err != nil {
		return MemInfo{}, fmt.Errorf("meminfo: %w", err)
	}
	m := MemInfo{Total: vals["MemTotal"]}
	if m.Total <= 0 {
		return MemInfo{}, errors.New("meminfo: MemTotal: missing or zero")
	}
	if a, ok := vals["MemAvailable"]; ok {
		m.Available = a
	} else {
		m.Available = vals["MemFree"] + vals["Buffers"] + vals["Cached"]
	}
	m.Available = min(m.Available, m.Total)
	return m, nil
}

// NetCounters are one interface's counters from /proc/net/dev.
type NetCounters struct {
	RxPackets, TxPackets uint64
}

// ParseNetDev reads /proc/net/dev: two header lines, then
// "iface: rx_bytes rx_packets … (8 rx fields) tx_bytes tx_packets …".
func ParseNetDev(b []byte) (map[string]NetCounters, error) {
	out := map[string]NetCounters{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("net/dev: line %d: no \"iface:\"", line+1)
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "" || len(f) < 16 {
			return nil, fmt.Errorf("net/dev: line %d: interface %q: %d counters, want 16", line+1, name, len(f))
		}
		rx, err1 := strconv.ParseUint(f[1], 10, 64)
		tx, err2 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("net/dev: interface %q: packet counters %q, %q: not counters", name, f[1], f[9])
		}
		out[name] = NetCounters{RxPackets: rx, TxPackets: tx}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("net/dev: %w", err)
	}
	return out, nil
}

// HostConfig configures a HostAgent: the statistics agent that runs inside
// a VNF instance (a VM) and measures the whole machine.
type HostConfig struct {
	ID   string
	Proc fs.FS // /proc (os.DirFS("/proc"))
	Sink Sink
	// Clock and Interval (default 1 s) time the samples.
	Clock    clock.Clock
	Interval time.Duration
	// Interfaces whose received packets count as input; empty means every
	// interface but "lo".
	Interfaces []string
	// OnError hears about failed measurements and reports (the agent keeps
	// going).
	OnError func(error)
	// CP, if set, reads the instance's S-CSCF CP counters (Sample.CP) with
	// every sample; a failed read sends the sample without them.
	CP func(ctx context.Context) (map[string]int64, error)
}

// HostAgent samples the machine it runs on: CPU busy share over all cores
// from /proc/stat, memory in use (MemTotal − MemAvailable) from
// /proc/meminfo, received packets per second from /proc/net/dev.
type HostAgent struct {
	cfg  HostConfig
	loop sampler

	mu   sync.Mutex
	prev *hostReading
}

type hostReading struct {
	at  time.Time
	cpu CPUTimes
	rx  map[string]uint64
}

// NewHost validates cfg and returns a HostAgent.
func NewHost(cfg HostConfig) (*HostAgent, error) {
	switch {
	case cfg.ID == "":
		return nil, errors.New("agent: ID: empty")
	case cfg.Proc == nil:
		return nil, errors.New("agent: Proc: nil")
	case cfg.Clock == nil:
		return nil, errors.New("agent: Clock: nil")
	case cfg.Interval < 0:
		return nil, errors.New("agent: Interval: must not be negative")
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	a := &HostAgent{cfg: cfg}
	a.loop = sampler{id: cfg.ID, clk: cfg.Clock, interval: cfg.Interval, sink: cfg.Sink, onError: cfg.OnError,
		measure: a.Measure, waitOnStop: true}
	return a, nil
}

func (a *HostAgent) counted(iface string) bool {
	if len(a.cfg.Interfaces) == 0 {
		return iface != "lo"
	}
	for _, n := range a.cfg.Interfaces {
		if n == iface {
			return true
		}
	}
	return false
}

// Measure takes one reading; it returns a Sample (ok) once there is an
// earlier reading to take rates against.
func (a *HostAgent) Measure() (s Sample, ok bool, err error) {
	now := a.cfg.Clock.Now()
	read := func(name string) ([]byte, error) {
		b, err := fs.ReadFile(a.cfg.Proc, name)
		if err != nil {
			return nil, fmt.Errorf("agent %s: %w", a.cfg.ID, err)
		}
		return b, nil
	}
	b, err := read("stat")
	if err != nil {
		return Sample{}, false, err
	}
	cpu, err := ParseCPUStat(b)
	if err != nil {
		return Sample{}, false, fmt.Errorf("agent %s: /proc/%w", a.cfg.ID, err)
	}
	if b, err = read("meminfo"); err != nil {
		return Sample{}, false, err
	}
	mem, err := ParseMemInfo(b)
	if err != nil {
		return Sample{}, false, fmt.Errorf("agent %s: /proc/%w", a.cfg.ID, err)
	}
	if b, err = read("net/dev"); err != nil {
		return Sample{}, false, err
	}
	nd, err := ParseNetDev(b)
	if err != nil {
		return Sample{}, false, fmt.Errorf("agent %s: /proc/%w", a.cfg.ID, err)
	}
	cur := &hostReading{at: now, cpu: cpu, rx: map[string]uint64{}}
	for name, c := range nd {
		if a.counted(name) {
			cur.rx[name] = c.RxPackets
		}
	}
	a.mu.Lock()
	prev := a.prev
	a.prev = cur
	a.mu.Unlock()
	if prev == nil {
		return Sample{}, false, nil
	}
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return Sample{}, false, fmt.Errorf("agent %s: clock did not advance between readings", a.cfg.ID)
	}
	s = Sample{At: now, MemBytes: mem.Total - mem.Available, Mem: float64(mem.Total-mem.Available) / float64(mem.Total) * 100,
		FlowsUnknown: true} // the machine's counters say nothing of the calls it carries
	if dTotal := cur.cpu.Total - prev.cpu.Total; cur.cpu.Total > prev.cpu.Total && cur.cpu.Busy >= prev.cpu.Busy {
		s.CPU = min(float64(cur.cpu.Busy-prev.cpu.Busy)/float64(dTotal)*100, 100)
	}
	var rx uint64
	for name, n := range cur.rx {
		if p, ok := prev.rx[name]; ok && n >= p { // a new or reset interface counts from its next reading
			rx += n - p
		}
	}
	s.PktRate = float64(rx) / dt
	if a.cfg.CP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), max(a.cfg.Interval/2, 200*time.Millisecond))
		defer cancel()
		var cerr error
		if s.CP, cerr = a.cfg.CP(ctx); cerr != nil {
			s.CP = nil
			if a.cfg.OnError != nil {
				a.cfg.OnError(fmt.Errorf("agent %s: CP counters (the sample goes without them): %w", a.cfg.ID, cerr))
			}
		}
	}
	return s, true, nil
}

// Start takes a first reading now and then one every Interval on the clock,
// reporting each Sample to the Sink, until Stop.
func (a *HostAgent) Start() { a.loop.start() }

// Stop ends sampling; a sample being taken finishes first. Stop must not
// be called from the Sink or OnError.
func (a *HostAgent) Stop() { a.loop.stop() }

// Run samples until ctx is done (the `ims-orch agent` command, real clock).
func (a *HostAgent) Run(ctx context.Context) {
	a.Start()
	<-ctx.Done()
	a.Stop()
}
