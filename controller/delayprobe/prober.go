// Package delayprobe owns the inter-DC delay measurement of the local
// controllers (paper 4.2 step 1 and the ping test of section 6): each DC's
// Prober sends a few probes per interval to every other DC's local
// controller, takes half of each round-trip time as the one-way delay, and
// reports the mean of the samples of each period to the global controller as
// a workload report of kind "delay". The network is behind Transport: HTTP
// between ims-orch processes (HTTPTransport, Handler), or a simulated network
// on the controllers' clock (Net) in tests and the simulator.
package delayprobe

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Kind is the workload report kind carrying only delays.
const Kind = "delay"

// Transport sends one probe from one DC's local controller to another's.
type Transport interface {
	// Probe sends one probe; done is called exactly once, from any
	// goroutine, with the round-trip time or an error.
	Probe(from, to string, done func(rtt time.Duration, err error))
}

// Reporter takes the delay reports (the workload intake of the global
// controller, or the reporter to it).
type Reporter interface {
	ReportWorkload(r protocol.WorkloadReport) error
}

// Config configures a Prober.
type Config struct {
	// DC is the probing DC; Peers the DCs it probes (DC itself is skipped).
	DC    string
	Peers []string
	// Period between two probes of a peer and between two reports (default
	// 5 s: ten samples per 50 s interval).
	Period    time.Duration
	Clock     clock.Clock
	Transport Transport
	Report    Reporter
	// OnError hears about failed probes and reports (nil: ignored).
	OnError func(error)
}

// Prober probes its peers every Period and reports the mean one-way delay
// of the samples that came back since the previous report.
type Prober struct {
	cfg Config

	mu      sync.Mutex
	sum     map[string]float64 // peer → Σ one-way ms since the last report
	n       map[string]int
	sent    int64
	failed  int64
	rep     *clock.Repeater
	stopped bool
}

// New validates cfg.
func New(cfg Config) (*Prober, error) {
	switch {
	case cfg.DC == "":
		return nil, errors.New("delayprobe: DC: empty")
	case cfg.Clock == nil || cfg.Transport == nil || cfg.Report == nil:
		return nil, errors.New("delayprobe: Clock, Transport and Report are required")
	case cfg.Period < 0:
		return nil, fmt.Errorf("delayprobe: Period %v: negative", cfg.Period)
	}
	if cfg.Period == 0 {
		cfg.Period = 5 * time.Second
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	peers := make([]string, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		if p != cfg.DC && !slices.Contains(peers, p) {
			peers = append(peers, p)
		}
	}
	slices.Sort(peers)
	cfg.Peers = peers
	return &Prober{cfg: cfg, sum: map[string]float64{}, n: map[string]int{}}, nil
}

// Start sends the first probes now and then runs Step every Period until Stop.
func (p *Prober) Start() {
	p.Step()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.rep = clock.Every(p.cfg.Clock, p.cfg.Period, func() bool {
			p.Step()
			return true
		})
	}
}

// Stop ends probing; probes in flight are ignored when they come back.
func (p *Prober) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.rep != nil {
		p.rep.Stop()
	}
}

// Step reports the samples gathered since the previous Step (if any came
// back) and sends one new probe to every peer.
func (p *Prober) Step() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	var rep *protocol.WorkloadReport
	if len(p.n) > 0 {
		rep = &protocol.WorkloadReport{DC: p.cfg.DC, At: p.cfg.Clock.Now(), Kind: Kind, DelaysMs: make(map[string]float64, len(p.n))}
		for peer, n := range p.n {
			rep.DelaysMs[peer] = p.sum[peer] / float64(n)
		}
		clear(p.sum)
		clear(p.n)
	}
	p.sent += int64(len(p.cfg.Peers))
	p.mu.Unlock()
	if rep != nil {
		if err := p.cfg.Report.ReportWorkload(*rep); err != nil {
			p.cfg.OnError(fmt.Errorf("delayprobe: %s: delay report: %w", p.cfg.DC, err))
		}
	}
	for _, peer := range p.cfg.Peers {
		p.cfg.Transport.Probe(p.cfg.DC, peer, func(rtt time.Duration, err error) { p.sample(peer, rtt, err) })
	}
}

func (p *Prober) sample(peer string, rtt time.Duration, err error) {
	if err == nil && rtt < 0 {
		err = fmt.Errorf("negative round-trip time %v", rtt)
	}
	if err != nil {
		p.mu.Lock()
		p.failed++
		p.mu.Unlock()
		p.cfg.OnError(fmt.Errorf("delayprobe: %s → %s: %w", p.cfg.DC, peer, err))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.sum[peer] += float64(rtt) / float64(time.Millisecond) / 2
	p.n[peer]++
}

// Counts returns the probes sent and the probes that failed so far.
func (p *Prober) Counts() (sent, failed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, p.failed
}
