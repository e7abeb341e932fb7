// Package dpmeter owns the DP workload measurement per entry→exit pair at
// the entry DC (paper 4.2 step 1): it polls the cumulative per-pair packet
// counters of the DC's switch (the real data plane's entry rules) every
// Period, turns their increase into packets/s and reports them to the
// global controller as "dp" workload reports. The switch is behind
// Counters, so the meter is tested with a fake; controller/system builds
// one per local DC with a real switch (Config.DPMeters, the daemon wires
// controller/dataplane's Lazy.Counters over drivers/ovs when its real data
// plane runs).
package dpmeter

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Pair is an entry→exit pair by DC index (the topology's order).
type Pair struct{ Entry, Exit int }

// Counters reads the switch's cumulative packets per pair (never
// decreasing while the switch lives; a smaller value means the switch was
// re-created and counts again from 0). An error wrapping ErrCountsLost
// comes with good counts whose increase since the previous read misses
// packets.
type Counters func() (map[Pair]uint64, error)

// ErrCountsLost marks a read whose counts are right but whose increase
// since the previous read is not (the switch ended counters unread: a rule
// update whose read before it failed): the meter reports nothing for that
// span, a missing measurement rather than a low one, and measures from
// these counts on.
var ErrCountsLost = errors.New("packets since the previous read are missing")

// Reporter takes the reports (the global controller's intake or the
// reporter to it).
type Reporter interface {
	ReportWorkload(r protocol.WorkloadReport) error
}

// Config configures a Meter.
type Config struct {
	// DC is the entry DC whose switch is read; DCs names the indices.
	DC       string
	DCs      []string
	Counters Counters
	Report   Reporter
	Clock    clock.Clock
	// Period between reports (default 1 s, paper 4.2 step 5).
	Period time.Duration
	// OnError hears about failed reads, bad pairs and refused reports.
	OnError func(error)
}

// Meter reports the DP workload per pair of one entry DC.
type Meter struct {
	cfg   Config
	entry int

	mu      sync.Mutex
	last    map[Pair]uint64
	lastAt  time.Time
	rep     *clock.Repeater
	stopped bool
}

// New validates cfg.
func New(cfg Config) (*Meter, error) {
	switch {
	case cfg.Counters == nil || cfg.Report == nil || cfg.Clock == nil:
		return nil, errors.New("dpmeter: Counters, Report and Clock are required")
	case cfg.Period < 0:
		return nil, fmt.Errorf("dpmeter: Period %v: negative", cfg.Period)
	}
	entry := slices.Index(cfg.DCs, cfg.DC)
	if entry < 0 {
		return nil, fmt.Errorf("dpmeter: DC: %q is not one of %v", cfg.DC, cfg.DCs)
	}
	if cfg.Period == 0 {
		cfg.Period = time.Second
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	return &Meter{cfg: cfg, entry: entry}, nil
}

// Start takes a baseline reading now and reports every Period until Stop.
func (m *Meter) Start() {
	m.Step()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stopped {
		m.rep = clock.Every(m.cfg.Clock, m.cfg.Period, func() bool { m.Step(); return true })
	}
}

// Stop ends reporting.
func (m *Meter) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.rep != nil {
		m.rep.Stop()
	}
}

// Step reads the counters and, once there is an earlier reading, reports
// each pair's packets/s since then (times are the reads' ends). A failed
// read reports nothing; the next good one spreads its increase over the
// whole time since the last good read. A read of lost counts
// (ErrCountsLost) reports nothing either, and the next read measures from
// it. A counter that went backwards (switch re-created) counts its new
// value. Pairs that do not enter at this DC or name no DC are refused.
func (m *Meter) Step() (protocol.WorkloadReport, bool) {
	// the counters hold the packets up to shortly before the read returns,
	// however long it took: on the real switch a read is mostly starting
	// ovs-ofctl, and the switch answers at its end (measured under load:
	// reads of 36 ms to 2.4 s held the packets sent up to 50–270 ms before
	// they returned, so dating them at their midpoint was off by up to
	// 0.9 s and one slow read skewed two periods)
	c, err := m.cfg.Counters()
	now := m.cfg.Clock.Now()
	if err != nil {
		m.cfg.OnError(fmt.Errorf("dpmeter: %s: reading the switch counters: %w", m.cfg.DC, err))
		if errors.Is(err, ErrCountsLost) && c != nil {
			// the span since the last read is missing: no report; the
			// next one measures from here
			m.mu.Lock()
			m.last, m.lastAt = c, now
			m.mu.Unlock()
		}
		return protocol.WorkloadReport{}, false
	}
	n := len(m.cfg.DCs)
	m.mu.Lock()
	prev, prevAt := m.last, m.lastAt
	m.last, m.lastAt = c, now
	m.mu.Unlock()
	if prevAt.IsZero() {
		return protocol.WorkloadReport{}, false
	}
	elapsed := now.Sub(prevAt).Seconds()
	if elapsed <= 0 {
		return protocol.WorkloadReport{}, false
	}
	rep := protocol.WorkloadReport{DC: m.cfg.DC, At: now, Kind: "dp"}
	pairs := make([]Pair, 0, len(c))
	for p := range c {
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, func(a, b Pair) int { return (a.Entry-b.Entry)*n + a.Exit - b.Exit })
	for _, p := range pairs {
		if p.Entry != m.entry || p.Exit < 0 || p.Exit >= n {
			m.cfg.OnError(fmt.Errorf("dpmeter: %s: pair %d→%d does not enter here or names no DC", m.cfg.DC, p.Entry, p.Exit))
			continue
		}
		v := c[p]
		d := v - prev[p]
		if v < prev[p] {
			d = v
		}
		rep.Pairs = append(rep.Pairs, protocol.PairLoad{Entry: m.cfg.DC, Exit: m.cfg.DCs[p.Exit], Rate: float64(d) / elapsed})
	}
	if err := m.cfg.Report.ReportWorkload(rep); err != nil {
		m.cfg.OnError(fmt.Errorf("dpmeter: %s: DP workload report: %w", m.cfg.DC, err))
	}
	return rep, true
}
