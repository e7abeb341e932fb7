package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/delayprobe"
	"github.com/ims-orch/ims-orch/controller/protocol"
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

// probes is the delay probe configuration of system.New: HTTP between the
// nodes in a cluster (the reports go through this node's workload
// reporter), the simulated network with the static delays for a single
// node on the sim driver, else none.
func (d *Daemon) probes() (*system.Probes, error) {
	period, on, err := d.cfg.probePeriod()
	if err != nil || !on {
		return nil, err
	}
	if !d.cfg.Clustered() {
		if d.cfg.Driver.Kind != DriverSim {
			return nil, nil
		}
		t := d.cfg.fsmTopology()
		n, err := delayprobe.NewNet(d.clk, t.DCs, t.DelayMs)
		if err != nil {
			return nil, err
		}
		return &system.Probes{Transport: n, Period: period}, nil
	}
	eps := d.cfg.Role.LocalEndpoints
	if len(d.cfg.Role.Locals) == 0 {
		return nil, nil
	}
	if len(eps) == 0 {
		d.log.Warn("role.localEndpoints is empty: this node's local controllers cannot probe the other DCs; links keep the static delays")
		return nil, nil
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if d.peerTr != nil {
		hc.Transport = d.peerTr
	}
	tr := &delayprobe.HTTPTransport{Client: hc, URL: func(dc string) (string, bool) {
		u, ok := eps[dc]
		return strings.TrimSuffix(u, "/") + "/dc/" + dc + delayprobe.Path, ok
	}}
	return &system.Probes{Transport: tr, Period: period, Report: viaReporter{d}}, nil
}

// viaReporter hands reports (delay probes, DP meters, the CP meter) to this
// node's workload reporter (built after the controllers).
type viaReporter struct{ d *Daemon }

func (v viaReporter) ReportWorkload(r protocol.WorkloadReport) error { return v.d.reportLocal(r) }

// reportLocal hands a report of this node's local-side sources to its
// workload reporter (cluster mode), seen by Options.ObserveReport once the
// reporter took it.
func (d *Daemon) reportLocal(r protocol.WorkloadReport) error {
	if d.reports == nil || d.reports.reporter == nil {
		return errors.New("no workload reporter on this node")
	}
	err := d.reports.reporter.ReportWorkload(r)
	if err == nil && d.opt.ObserveReport != nil {
		d.opt.ObserveReport(r)
	}
	return err
}
