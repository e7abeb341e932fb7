package daemon

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/dataplane"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// dpParts is the real data plane of serve --driver local (single node):
// private Open vSwitch daemons, one bridge per DC, DP instances as network
// namespaces (docs/dataplane.md).
type dpParts struct {
	ovs    *ovs.Daemon
	drv    *netns.Driver
	lazy   *dataplane.Lazy
	plane  *dataplane.Plane
	cancel context.CancelFunc
}

// dpPrefix names this run's objects: the same run dir gives the same prefix,
// so a killed run's leftovers are found and removed, and two daemons with
// different run dirs never touch each other's.
func dpPrefix(dir string) string {
	h := fnv.New32a()
	h.Write([]byte(dir))
	return fmt.Sprintf("io%03x", h.Sum32()&0xfff)
}

// startDataPlane starts Open vSwitch and the DP instance driver when it can
// run here; otherwise it returns nil and the reason (the DP stays simulated).
func (d *Daemon) startDataPlane() (drivers.Driver, error) {
	if d.cfg.Clustered() {
		return nil, errors.New("cluster mode: the real data plane runs with a single node only")
	}
	if err := ovs.Available(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("not root: network namespaces and veths need root")
	}
	dir, err := filepath.Abs(filepath.Join(d.cfg.Driver.KamailioDir, "dataplane"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	od, err := ovs.Start(ctx, ovs.Config{Dir: dir, Prefix: dpPrefix(dir)})
	if err != nil {
		return nil, err
	}
	// flow counters fresh within 100 ms (default 500 ms between revalidator
	// rounds): the DP workload meters read them every second, and a 0.5 s
	// stale reading at each end of an interval skews its average by up to
	// 1/interval-seconds (measured ±10 % at 4 s intervals, ±1 % at 100 ms)
	if _, err := od.Vsctl(ctx, "set", "Open_vSwitch", ".", "other_config:max-revalidator=100"); err != nil {
		_ = od.Stop(ctx)
		return nil, err
	}
	names := d.cfg.dcNames()
	bridges := map[string]string{}
	for k, dc := range names {
		br := dataplane.BridgeName(od.Prefix(), k)
		if err := od.EnsureBridge(ctx, br, k); err != nil {
			_ = od.Stop(ctx)
			return nil, err
		}
		bridges[dc] = br
	}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: od, Bridges: bridges})
	if err != nil {
		_ = od.Stop(ctx)
		return nil, err
	}
	d.dp = &dpParts{ovs: od, drv: drv, lazy: dataplane.NewLazy(names)}
	d.log.Info("driver local: DP stages run as network namespaces on Open vSwitch bridges", "dir", dir, "prefix", od.Prefix())
	return drv, nil
}

// wrapPaths chains the path-store wrappers this node needs: the real data
// plane's rule installer and the workload reporter's interval hook (nil when
// neither applies).
func (d *Daemon) wrapPaths() func(string, local.PathStore) local.PathStore {
	var ws []func(string, local.PathStore) local.PathStore
	for _, w := range []func(string, local.PathStore) local.PathStore{d.wrapDPPaths(), d.wrapReportPaths()} {
		if w != nil {
			ws = append(ws, w)
		}
	}
	switch len(ws) {
	case 0:
		return nil
	case 1:
		return ws[0]
	}
	return func(dc string, p local.PathStore) local.PathStore {
		for _, w := range ws {
			p = w(dc, p)
		}
		return p
	}
}

// wrapDPPaths installs each DC's path sets on its bridge (nil without a real
// data plane).
func (d *Daemon) wrapDPPaths() func(string, local.PathStore) local.PathStore {
	if d.dp == nil {
		return nil
	}
	return d.dp.lazy.Paths
}

// dpMeters measures the DP workload per pair from each DC's switch (the
// entry rules' counters, controller/dpmeter) whenever the real data plane
// runs: the entry DC's local controller reports each entry→exit pair's
// packets/s every second through this node's report path (the in-process
// engine, or the reporter to the leader in a cluster). Nil without a real
// data plane: the simulated cloud's fluid model (pump) reports then.
func (d *Daemon) dpMeters() *system.DPMeters {
	if d.dp == nil {
		return nil
	}
	m := &system.DPMeters{Counters: d.dp.lazy.Counters, Period: time.Second}
	if d.cfg.Clustered() {
		m.Report = viaReporter{d}
	}
	return m
}

// wrapDPSink puts the DC's rule updates after inner's sink.
func (d *Daemon) wrapDPSink(inner func(string, local.InstanceSink) local.InstanceSink) func(string, local.InstanceSink) local.InstanceSink {
	if d.dp == nil {
		return inner
	}
	return func(dc string, s local.InstanceSink) local.InstanceSink {
		if inner != nil {
			s = inner(dc, s)
		}
		return d.dp.lazy.Sink(dc, s)
	}
}

type dpIntake struct{ c *local.Controller }

func (i dpIntake) ReportStats(id string, s agent.Sample) error {
	return i.c.ReportStats(id, local.Stats{At: s.At, CPU: s.CPU, Mem: s.Mem, PktRate: s.PktRate, Flows: int(s.InFlight())})
}

// attachDataPlane builds the plane over the routers once they exist and
// starts its failure watch and the DP statistics.
func (d *Daemon) attachDataPlane(routers map[string]*dcroute.Router) error {
	if d.dp == nil {
		return nil
	}
	names := d.cfg.dcNames()
	rs := make([]*dcroute.Router, len(names))
	for k, dc := range names {
		rs[k] = routers[dc]
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.dp.cancel = cancel
	p, err := dataplane.New(ctx, dataplane.Config{Daemon: d.dp.ovs, Routers: rs, Names: names, Driver: d.dp.drv,
		OnError: func(err error) { d.log.Warn("data plane", "err", err) }})
	if err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	d.dp.plane = p
	d.dp.lazy.Set(p)
	go p.Watch(ctx, 200*time.Millisecond)
	for _, dc := range names {
		if c := d.locals[dc]; c != nil {
			go dataplane.SampleStats(ctx, d.dp.drv, dc, dpIntake{c}, time.Second)
		}
	}
	return nil
}

// close removes every instance, bridge and namespace and stops the daemons.
func (dp *dpParts) close(log interface{ Warn(string, ...any) }) {
	if dp == nil {
		return
	}
	if dp.cancel != nil {
		dp.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dp.drv.Close(ctx); err != nil {
		log.Warn("stopping the DP instances", "err", err)
	}
	if dp.plane != nil {
		if err := dp.plane.Close(ctx); err != nil {
			log.Warn("removing the data plane", "err", err)
		}
	}
	if err := dp.ovs.Stop(ctx); err != nil {
		log.Warn("stopping Open vSwitch", "err", err)
	}
}
