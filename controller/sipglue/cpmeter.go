package sipglue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
)

// ParsePairKey reads one counter key of the S-CSCFs' "cp" table,
// "entry>exit": the entry DCs of the caller and of the callee as the
// registrar knows them (the DC in the Path of each user's registration, see
// deploy/kamailio). ok is false when either side is empty (a user not
// registered through a P-CSCF) or not one of dcs: such transactions are
// unmapped.
func ParsePairKey(key string, dcs []string) (entry, exit string, ok bool) {
	entry, exit, found := strings.Cut(key, ">")
	if !found || !slices.Contains(dcs, entry) || !slices.Contains(dcs, exit) {
		return "", "", false
	}
	return entry, exit, true
}

// ParseHTableDump reads the result of Kamailio's "htable.dump" RPC: the
// integer items of the table by name. String items are skipped.
func ParseHTableDump(result json.RawMessage) (map[string]int64, error) {
	var slots []struct {
		Slot []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
			Type  string          `json:"type"`
		} `json:"slot"`
	}
	if err := json.Unmarshal(result, &slots); err != nil {
		return nil, fmt.Errorf("htable.dump: %w", err)
	}
	out := map[string]int64{}
	for i, s := range slots {
		for j, it := range s.Slot {
			if it.Type != "int" {
				continue
			}
			var v int64
			if err := json.Unmarshal(it.Value, &v); err != nil {
				return nil, fmt.Errorf("htable.dump [%d].slot[%d] %q: value: %w", i, j, it.Name, err)
			}
			out[it.Name] += v
		}
	}
	return out, nil
}

// ReadCP reads the CP counters of one S-CSCF (its htable table) with call.
func ReadCP(ctx context.Context, call Caller, rpc netip.AddrPort, table string) (map[string]int64, error) {
	res, err := call(ctx, rpc, "htable.dump", table)
	if err != nil {
		return nil, err
	}
	return ParseHTableDump(res)
}

// KamailioCP reads the CP counters of the S-CSCF whose Kamailio answers
// JSON-RPC on rpc (`ims-orch agent --kamailio-rpc`, inside the S-CSCF).
func KamailioCP(rpc netip.AddrPort) func(ctx context.Context) (map[string]int64, error) {
	call := func(ctx context.Context, a netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
		return kamrpc.New(a).Call(ctx, method, params...)
	}
	return func(ctx context.Context) (map[string]int64, error) { return ReadCP(ctx, call, rpc, "cp") }
}

// Target is one S-CSCF to read.
type Target struct {
	ID  string
	RPC netip.AddrPort
}

// Caller makes one Kamailio RPC call (kamrpc.Client.Call over the address).
type Caller func(ctx context.Context, rpc netip.AddrPort, method string, params ...any) (json.RawMessage, error)

// Reporter is the global controller's workload intake (system.System,
// global.Engine).
type Reporter interface {
	ReportWorkload(r protocol.WorkloadReport) error
}

// CPMeterConfig configures a CPMeter.
type CPMeterConfig struct {
	// DC is the reporting DC (the S-CSCF DC).
	DC string
	// DCs are the topology's datacenters: a counter naming any other DC
	// is unmapped.
	DCs []string
	// Targets lists the live S-CSCFs (e.g. from the driver).
	Targets func() []Target
	// Call reads a target's counters over its RPC socket (ReadCP), unless
	// Read is set: then Read gives them (e.g. the last ones its agent
	// pushed, PushedCP).
	Call   Caller
	Read   func(ctx context.Context, t Target) (map[string]int64, error)
	Report Reporter
	Clock  clock.Clock
	// Period between reports (5 s, paper 4.2 step 1); Table is the htable
	// name ("cp").
	Period time.Duration
	Table  string
	// OnError hears about failed reads and reports (nil: ignored).
	OnError func(error)
}

// PairCount is the transactions of one entry→exit pair in one period.
type PairCount struct {
	Entry, Exit string
	N           int64
}

// CPMeter reports the CP workload per entry→exit pair, as measured by the
// S-CSCFs, to the global controller every Period.
type CPMeter struct {
	cfg CPMeterConfig

	mu       sync.Mutex
	last     map[string]map[string]int64 // instance → key → counter
	readAt   map[string]time.Time        // instance → time of its last read
	lastAt   time.Time
	rep      *clock.Repeater
	stopped  bool
	unmapped int64
	reports  []protocol.WorkloadReport
}

// NewCPMeter validates cfg.
func NewCPMeter(cfg CPMeterConfig) (*CPMeter, error) {
	switch {
	case cfg.DC == "":
		return nil, errors.New("sipglue: CPMeter: DC: empty")
	case !slices.Contains(cfg.DCs, cfg.DC):
		return nil, fmt.Errorf("sipglue: CPMeter: DC: %q is not one of DCs %v", cfg.DC, cfg.DCs)
	case cfg.Targets == nil || (cfg.Call == nil && cfg.Read == nil) || cfg.Report == nil || cfg.Clock == nil:
		return nil, errors.New("sipglue: CPMeter: Targets, Call or Read, Report and Clock are required")
	case cfg.Period < 0:
		return nil, fmt.Errorf("sipglue: CPMeter: Period %v: negative", cfg.Period)
	}
	if cfg.Period == 0 {
		cfg.Period = 5 * time.Second
	}
	if cfg.Table == "" {
		cfg.Table = "cp"
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	if cfg.Read == nil {
		call, table := cfg.Call, cfg.Table
		cfg.Read = func(ctx context.Context, t Target) (map[string]int64, error) { return ReadCP(ctx, call, t.RPC, table) }
	}
	return &CPMeter{cfg: cfg, last: map[string]map[string]int64{}, readAt: map[string]time.Time{}}, nil
}

// Start takes a baseline reading now and reports every Period until Stop.
func (m *CPMeter) Start() {
	m.Step(context.Background())
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stopped {
		m.rep = clock.Every(m.cfg.Clock, m.cfg.Period, func() bool {
			m.Step(context.Background())
			return true
		})
	}
}

// Stop ends reporting.
func (m *CPMeter) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.rep != nil {
		m.rep.Stop()
	}
}

// Step reads every S-CSCF's counters and, once there is an earlier
// reading, reports the rates since then. A counter seen for the first time
// on a new instance counts from 0 (instances start empty) since the previous
// step; one that went backwards counts its new value. Instances that could
// not be read keep their last counters and report nothing this time; their
// next delta is spread over the whole time since their last read.
func (m *CPMeter) Step(ctx context.Context) (protocol.WorkloadReport, bool) {
	now := m.cfg.Clock.Now()
	type read struct {
		id string
		c  map[string]int64
	}
	var reads []read
	for _, t := range m.cfg.Targets() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := m.cfg.Read(cctx, t)
		cancel()
		if err == nil {
			reads = append(reads, read{t.ID, c})
			continue
		}
		m.cfg.OnError(fmt.Errorf("sipglue: CP counters of %s: %w", t.ID, err))
	}
	m.mu.Lock()
	first := m.lastAt.IsZero()
	sums := map[[2]string]float64{}
	seen := map[string]bool{}
	for _, r := range reads {
		seen[r.id] = true
		prev := m.last[r.id]
		since, ok := m.readAt[r.id]
		if !ok {
			since = m.lastAt
		}
		elapsed := now.Sub(since).Seconds()
		for k, v := range r.c {
			d := v - prev[k]
			if d < 0 {
				d = v
			}
			if d == 0 {
				continue
			}
			e, x, ok := ParsePairKey(k, m.cfg.DCs)
			if !ok {
				m.unmapped += d
				continue
			}
			if elapsed > 0 {
				sums[[2]string{e, x}] += float64(d) / elapsed
			}
		}
		m.last[r.id] = r.c
		m.readAt[r.id] = now
	}
	targets := m.cfg.Targets()
	for id := range m.last { // instances gone: forget them
		if !seen[id] && !slices.ContainsFunc(targets, func(t Target) bool { return t.ID == id }) {
			delete(m.last, id)
			delete(m.readAt, id)
		}
	}
	m.lastAt = now
	m.mu.Unlock()
	if first {
		return protocol.WorkloadReport{}, false
	}
	rep := protocol.WorkloadReport{DC: m.cfg.DC, At: now, Kind: "cp"}
	keys := make([][2]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	for _, k := range keys {
		rep.Pairs = append(rep.Pairs, protocol.PairLoad{Entry: k[0], Exit: k[1], Rate: sums[k]})
	}
	if err := m.cfg.Report.ReportWorkload(rep); err != nil {
		m.cfg.OnError(fmt.Errorf("sipglue: CP workload report: %w", err))
	}
	m.mu.Lock()
	m.reports = append(m.reports, rep)
	m.mu.Unlock()
	return rep, true
}

// Reports returns the reports sent so far.
func (m *CPMeter) Reports() []protocol.WorkloadReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reports)
}

// Unmapped returns how many transactions had a caller or callee without a
// registration through a P-CSCF of a known DC.
func (m *CPMeter) Unmapped() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unmapped
}

// PushedCP keeps the CP counters the S-CSCFs' agents push with their
// statistics (driver openstack: `ims-orch agent --kamailio-rpc`, through the
// stats endpoint, agent.StatsHandler.OnCP) for a CPMeter to read: Targets
// are the instances of a DC that pushed within MaxAge, Read their last
// counters.
type PushedCP struct {
	// MaxAge: an instance silent this long is no target (gone or failed).
	MaxAge time.Duration
	Clock  clock.Clock

	mu   sync.Mutex
	last map[string]pushed // instance → last push
}

type pushed struct {
	dc string
	at time.Time // when it arrived (the controller's clock)
	c  map[string]int64
}

// NewPushedCP returns an empty store.
func NewPushedCP(clk clock.Clock, maxAge time.Duration) *PushedCP {
	return &PushedCP{MaxAge: maxAge, Clock: clk, last: map[string]pushed{}}
}

// Put takes an instance's counters (agent.StatsHandler.OnCP).
func (p *PushedCP) Put(dc, instance string, _ time.Time, c map[string]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[instance] = pushed{dc: dc, at: p.Clock.Now(), c: c}
}

// Targets lists the instances of dc with counters younger than MaxAge,
// sorted; older ones are forgotten.
func (p *PushedCP) Targets(dc string) []Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.Clock.Now()
	var out []Target
	for id, x := range p.last {
		if now.Sub(x.at) > p.MaxAge {
			delete(p.last, id)
			continue
		}
		if x.dc == dc {
			out = append(out, Target{ID: id})
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Read returns a target's last counters.
func (p *PushedCP) Read(_ context.Context, t Target) (map[string]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	x, ok := p.last[t.ID]
	if !ok {
		return nil, fmt.Errorf("no CP counters from %s's agent", t.ID)
	}
	return x.c, nil
}
