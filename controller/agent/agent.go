// Package agent owns the statistics agents of VNF instances (paper §4.3) and
// their wire protocol. Agent measures one Kamailio instance run as local
// processes: every second its CPU use over all its processes, its memory,
// and from Kamailio's counters its input packet rate and transaction rate.
// HostAgent runs inside a VNF instance (a VM, `ims-orch agent`) and measures
// the whole machine: CPU from /proc/stat, memory from /proc/meminfo, received
// packets from /proc/net/dev. Both report Samples to a Sink: the local
// controller's intake in-process, or a Pusher that POSTs them to the node
// running the DC's local controller, where StatsHandler (POST
// /dc/<dc>/stats, bearer token, instance checked against the controller's
// registry) hands them on. Reactive scaling therefore runs on real numbers.
//
// Inputs are behind small interfaces: /proc as an fs.FS, Kamailio's counters
// as Counters (drivers/local/kamrpc.Client fits), time as a clock.Clock, so
// tests run on a fake /proc and virtual time.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// Sample is one second of an instance's statistics.
type Sample struct {
	At time.Time
	// CPU is the CPU time of the main process and its children over the
	// interval, in percent of Cores (100 = Cores fully busy).
	CPU float64
	// Mem is the percent of Kamailio's shared memory in use
	// (shmem:real_used_size / shmem:total_size): what fills up under load.
	Mem float64
	// MemBytes is the instance's resident memory: private pages of every
	// process plus the largest shared-memory residency (counted once).
	MemBytes int64
	// PktRate is SIP messages received per second (core:rcv_requests +
	// core:rcv_replies; one UDP datagram each).
	PktRate float64
	// TxnRate is new server transactions per second: requests other than
	// ACK (core:rcv_requests - core:rcv_requests_ack). Kamailio 5.6's
	// tmx:UAS_transactions moves in batches (0 one second, twice the rate the
	// next), so the agent does not use it.
	TxnRate float64
	// ActiveTransactions and ActiveDialogs are the in-flight load now.
	ActiveTransactions, ActiveDialogs int64
	// FlowsUnknown: this agent cannot count what the instance carries (a
	// HostAgent measures the machine, not calls or flows), so InFlight's 0
	// is no count: the local controller must not read it as "empty" and
	// destroy a draining or trimmed instance with calls pinned to it.
	FlowsUnknown bool
	// CP, on an S-CSCF, is its cumulative CP transactions per
	// "entry DC>exit DC" (its htable "cp", deploy/kamailio); nil elsewhere.
	CP map[string]int64
}

// InFlight is what the instance still carries: active transactions plus
// active dialogs. Zero means a draining instance can go without cutting a
// call (the local controller's Stats.Flows).
func (s Sample) InFlight() int64 { return s.ActiveTransactions + s.ActiveDialogs }

// Sink is the local controller's statistics intake.
type Sink interface {
	ReportStats(id string, s Sample) error
}

// Counters fetches Kamailio statistics by "group:name".
type Counters interface {
	Stats(ctx context.Context, names ...string) (map[string]int64, error)
}

// CounterNames are the statistics the agent fetches.
var CounterNames = []string{
	"core:rcv_requests", "core:rcv_requests_ack", "core:rcv_replies",
	"tmx:active_transactions", "dialog:active_dialogs",
	"shmem:real_used_size", "shmem:total_size",
}

// ErrGone means the instance's main process no longer exists; the agent stops.
var ErrGone = errors.New("agent: instance process gone")

// Config configures an Agent.
type Config struct {
	ID       string
	Pid      int   // the instance's main process
	Proc     fs.FS // /proc (os.DirFS("/proc"))
	Counters Counters
	Sink     Sink
	Clock    clock.Clock
	// Interval between samples (1 s), ClkTck the kernel's clock ticks per
	// second (the system's, ClkTck()), Cores the CPU the instance is
	// entitled to (1).
	Interval time.Duration
	ClkTck   int
	Cores    float64
	// OnError, if set, hears about failed measurements (the agent keeps going
	// except after ErrGone).
	OnError func(error)
}

// Agent samples one instance.
type Agent struct {
	cfg  Config
	loop sampler

	mu   sync.Mutex
	prev *reading
}

type reading struct {
	at       time.Time
	ticks    map[int]uint64
	counters map[string]int64
}

// New validates cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.ID == "":
		return nil, errors.New("agent: ID: empty")
	case cfg.Pid <= 0:
		return nil, fmt.Errorf("agent: Pid: %d: not a process id", cfg.Pid)
	case cfg.Proc == nil:
		return nil, errors.New("agent: Proc: nil")
	case cfg.Counters == nil:
		return nil, errors.New("agent: Counters: nil")
	case cfg.Clock == nil:
		return nil, errors.New("agent: Clock: nil")
	case cfg.Interval < 0 || cfg.ClkTck < 0 || cfg.Cores < 0:
		return nil, errors.New("agent: Interval, ClkTck and Cores must not be negative")
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.ClkTck == 0 {
		hz, err := clkTck()
		if err != nil {
			return nil, fmt.Errorf("agent: ClkTck: 0 and the system's unknown: %w", err)
		}
		cfg.ClkTck = hz
	}
	if cfg.Cores == 0 {
		cfg.Cores = 1
	}
	a := &Agent{cfg: cfg}
	a.loop = sampler{id: cfg.ID, clk: cfg.Clock, interval: cfg.Interval, sink: cfg.Sink, onError: cfg.OnError,
		measure: func() (Sample, bool, error) { return a.Measure(context.Background()) }}
	return a, nil
}

// Measure takes one reading. It returns a Sample (ok) once there is an
// earlier reading to take rates against. The instance gets Interval/2 to
// answer its counters, counted from the request (ctx may end it earlier):
// the time this process took to read /proc before, or waited for the CPU
// on a loaded host, is not the instance's.
func (a *Agent) Measure(ctx context.Context) (s Sample, ok bool, err error) {
	now := a.cfg.Clock.Now()
	ticks, mem, err := a.readProc()
	if err != nil {
		return Sample{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Interval/2)
	defer cancel()
	ctr, err := a.cfg.Counters.Stats(ctx, CounterNames...)
	if err != nil {
		return Sample{}, false, fmt.Errorf("agent %s: counters: %w", a.cfg.ID, err)
	}
	cur := &reading{at: now, ticks: ticks, counters: ctr}
	a.mu.Lock()
	prev := a.prev
	a.prev = cur
	a.mu.Unlock()
	if prev == nil {
		return Sample{}, false, nil
	}
	return compute(prev, cur, mem, a.cfg.ClkTck, a.cfg.Cores)
}

// compute turns two readings into a Sample. Pure.
func compute(prev, cur *reading, mem ProcMem, ticksPerSec int, cores float64) (Sample, bool, error) {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return Sample{}, false, fmt.Errorf("agent: clock did not advance between readings (%v)", cur.at.Sub(prev.at))
	}
	var dTicks uint64
	for pid, t := range cur.ticks {
		if p := prev.ticks[pid]; t >= p { // a reused pid would go backwards: skip it
			dTicks += t - p
		}
	}
	delta := func(name string) int64 {
		return max(cur.counters[name]-prev.counters[name], 0) // a restart resets counters
	}
	s := Sample{
		At:                 cur.at,
		CPU:                float64(dTicks) / float64(ticksPerSec) / dt / cores * 100,
		MemBytes:           mem.RssAnon + mem.RssShmem,
		PktRate:            float64(delta("core:rcv_requests")+delta("core:rcv_replies")) / dt,
		TxnRate:            float64(max(delta("core:rcv_requests")-delta("core:rcv_requests_ack"), 0)) / dt,
		ActiveTransactions: cur.counters["tmx:active_transactions"],
		ActiveDialogs:      cur.counters["dialog:active_dialogs"],
	}
	if mem.RssAnon == 0 && mem.RssShmem == 0 {
		s.MemBytes = mem.RSS
	}
	if total := cur.counters["shmem:total_size"]; total > 0 {
		s.Mem = float64(cur.counters["shmem:real_used_size"]) / float64(total) * 100
	}
	return s, true, nil
}

// readProc reads CPU ticks per process and memory of the main process and
// its children.
func (a *Agent) readProc() (map[int]uint64, ProcMem, error) {
	main := strconv.Itoa(a.cfg.Pid)
	b, err := fs.ReadFile(a.cfg.Proc, main+"/stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ProcMem{}, fmt.Errorf("%w: %s: pid %d", ErrGone, a.cfg.ID, a.cfg.Pid)
		}
		return nil, ProcMem{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return nil, ProcMem{}, fmt.Errorf("agent %s: /proc/%d/%w", a.cfg.ID, a.cfg.Pid, err)
	}
	if st.State == 'Z' || st.State == 'X' {
		return nil, ProcMem{}, fmt.Errorf("%w: %s: pid %d is a zombie", ErrGone, a.cfg.ID, a.cfg.Pid)
	}
	pids := []int{a.cfg.Pid}
	kids, err := a.children()
	if err != nil {
		return nil, ProcMem{}, fmt.Errorf("agent %s: %w", a.cfg.ID, err)
	}
	pids = append(pids, kids...)
	ticks := map[int]uint64{}
	var mem ProcMem
	for _, pid := range pids {
		p := strconv.Itoa(pid)
		b, err := fs.ReadFile(a.cfg.Proc, p+"/stat")
		if err != nil {
			continue // exited meanwhile
		}
		st, err := ParseStat(b)
		if err != nil {
			return nil, ProcMem{}, fmt.Errorf("agent %s: /proc/%d/%w", a.cfg.ID, pid, err)
		}
		ticks[pid] = st.UTime + st.STime
		if b, err := fs.ReadFile(a.cfg.Proc, p+"/status"); err == nil {
			m, err := ParseStatus(b)
			if err != nil {
				return nil, ProcMem{}, fmt.Errorf("agent %s: /proc/%d/%w", a.cfg.ID, pid, err)
			}
			mem.RSS += m.RSS
			mem.RssAnon += m.RssAnon
			mem.RssShmem = max(mem.RssShmem, m.RssShmem)
		}
	}
	return ticks, mem, nil
}

// children lists the main process's children from
// /proc/PID/task/PID/children, or by scanning /proc when the kernel lacks it.
func (a *Agent) children() ([]int, error) {
	main := strconv.Itoa(a.cfg.Pid)
	b, err := fs.ReadFile(a.cfg.Proc, main+"/task/"+main+"/children")
	if err == nil {
		return ParseChildren(b)
	}
	ents, err := fs.ReadDir(a.cfg.Proc, ".")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == a.cfg.Pid {
			continue
		}
		b, err := fs.ReadFile(a.cfg.Proc, e.Name()+"/stat")
		if err != nil {
			continue
		}
		if st, err := ParseStat(b); err == nil && st.PPid == a.cfg.Pid {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Start takes a first reading now and then one every Interval on the clock,
// reporting each Sample to the Sink, until Stop or until the process is gone.
func (a *Agent) Start() { a.loop.start() }

// Stop ends sampling.
func (a *Agent) Stop() { a.loop.stop() }

// Stopped reports whether the agent has stopped (Stop, or the process is gone).
func (a *Agent) Stopped() bool { return a.loop.isStopped() }
