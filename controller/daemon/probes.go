package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/delayprobe"
	"github.com/ims-orch/ims-orch/controller/system"
)

// Inter-DC delay probes (paper 4.2 step 1, the ping test of section 6):
//
//   - every local controller of this node answers probes at
//     /dc/<dc>/v1/probe (GET, 204, nothing kept);
//   - cluster mode: each local DC of this node probes every other DC's local
//     controller at role.localEndpoints over HTTP every role.probePeriod and
//     its mean RTT/2 goes with the node's workload reports to the leader;
//   - single node, sim driver: the local controllers probe each other over a
//     simulated network with the topology's delays (delayprobe.Net), so the
//     simulated deployment exercises the same measured-delay path;
//   - single node, real drivers: all local controllers run in this one
//     process, there is no network between them to measure, so the static
//     matrix (source "configured") is every link's delay.

// probePeriod is role.probePeriod: default a tenth of the interval within
// [1 s, 30 s]; "off" disables probing.
func (c *Config) probePeriod() (time.Duration, bool, error) {
	switch p := strings.TrimSpace(c.Role.ProbePeriod); p {
	case "off":
		return 0, false, nil
	case "":
		return min(max(c.Interval()/10, time.Second), 30*time.Second), true, nil
	default:
		d, err := time.ParseDuration(p)
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			return 0, false, fmt.Errorf("role.probePeriod: %q is not off or a duration in [100ms, 1h]", p)
		}
		return d, true, nil
	}
}

// serveProbes answers probes for this node's local DCs.
func (d *Daemon) serveProbes() {
	h := delayprobe.Handler()
	for dc := range d.locals {
		d.mux.Handle("/dc/"+dc+delayprobe.Path, h)
	}
}

// singleProbes is the probe configuration of the single-node system: the
// simulated network with the static delays for the sim driver, else none.
func (d *Daemon) singleProbes() (*system.Probes, error) {
	period, on, err := d.cfg.probePeriod()
	if err != nil || !on || d.cfg.Driver.Kind != DriverSim {
		return nil, err
	}
	t := d.cfg.fsmTopology()
	n, err := delayprobe.NewNet(d.clk, t.DCs, t.DelayMs)
	if err != nil {
		return nil, err
	}
	return &system.Probes{Transport: n, Period: period}, nil
}

// startClusterProbes starts one HTTP prober per local DC of this node
// (cluster mode), reporting through the node's workload reporter.
func (d *Daemon) startClusterProbes() error {
	period, on, err := d.cfg.probePeriod()
	if err != nil || !on || len(d.locals) == 0 || d.reports == nil || d.reports.reporter == nil {
		return err
	}
	eps := d.cfg.Role.LocalEndpoints
	if len(eps) == 0 {
		d.log.Warn("role.localEndpoints is empty: this node's local controllers cannot probe the other DCs; links keep the static delays")
		return nil
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if d.peerTr != nil {
		hc.Transport = d.peerTr
	}
	tr := &delayprobe.HTTPTransport{Client: hc, URL: func(dc string) (string, bool) {
		u, ok := eps[dc]
		return strings.TrimSuffix(u, "/") + "/dc/" + dc + delayprobe.Path, ok
	}}
	peers := make([]string, 0, len(eps))
	for dc := range eps {
		peers = append(peers, dc)
	}
	slices.Sort(peers)
	for _, dc := range slices.Sorted(func(yield func(string) bool) {
		for dc := range d.locals {
			if !yield(dc) {
				return
			}
		}
	}) {
		p, err := delayprobe.New(delayprobe.Config{DC: dc, Peers: peers, Period: period, Clock: d.clk, Transport: tr,
			Report: d.reports.reporter, OnError: func(err error) { d.log.Debug("delay probe", "err", err) }})
		if err != nil {
			return err
		}
		d.probers = append(d.probers, p)
		p.Start()
	}
	return nil
}

func (d *Daemon) stopProbes() {
	for _, p := range d.probers {
		p.Stop()
	}
}
