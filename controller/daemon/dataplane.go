package daemon

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dataplane"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/mediahook"
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
	// media is the P-CSCFs' media hook (issue 13): calls set up through
	// Kamailio get their Table 1 mappings and flows in the plane.
	media    *mediahook.Hook
	mediaURL string // http://127.0.0.1:PORT/media/v1
	mediaSrv *mediahook.Server
}

// mediaPrefix is the media hook's URL path.
const mediaPrefix = "/media/v1"

// startMediaHook listens on an ephemeral loopback port for the P-CSCFs'
// media posts (docs/dataplane.md, "Calls from the IMS").
func (dp *dpParts) startMediaHook(n int, clk clock.Clock, log interface{ Warn(string, ...any) }) error {
	h, err := mediahook.New(mediahook.Config{DCs: n, EntryIP: dataplane.EntryIP, Clock: clk,
		OnError: func(err error) { log.Warn("media hook", "err", err) }})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("media hook: %w", err)
	}
	dp.media, dp.mediaURL = h, "http://"+ln.Addr().String()+mediaPrefix
	dp.mediaSrv = mediahook.Serve(ln, h, mediaPrefix)
	return nil
}

// mediaFor gives the P-CSCFs of DC index dc their hook and entry address.
func (dp *dpParts) mediaFor(dc int) (string, netip.Addr) {
	if dp == nil || dp.media == nil {
		return "", netip.Addr{}
	}
	return fmt.Sprintf("%s/dc/%d", dp.mediaURL, dc), dataplane.EntryIP(dc).Addr()
}

// dpPrefix names this run's objects: the same run dir gives the same prefix,
// so a killed run's leftovers are found and removed, and two daemons with
// different run dirs never touch each other's. It is "i" and 4 base-36
// digits of a hash of the dir (36⁴ ≈ 1.7 M values; tests' prefixes start
// with "t"): two run dirs that hash alike make the second daemon fail with
// ovs.ErrPrefixInUse, whose message names the first one's dir and PID.
func dpPrefix(dir string) string {
	h := fnv.New32a()
	h.Write([]byte(dir))
	s := strconv.FormatUint(uint64(h.Sum32()%(36*36*36*36)), 36)
	return "i" + strings.Repeat("0", 4-len(s)) + s
}

// dpForwarder is the command of each DP instance's process: Options.DPForwarder,
// else this binary's hidden "dp-forward" when it is ims-orch, else ims-dpfwd
// on PATH (a test binary must never be started as a forwarder).
func (d *Daemon) dpForwarder() ([]string, error) {
	if len(d.opt.DPForwarder) > 0 {
		return d.opt.DPForwarder, nil
	}
	if exe, err := os.Executable(); err == nil && strings.HasPrefix(filepath.Base(exe), "ims-orch") && !strings.HasSuffix(exe, ".test") {
		return []string{exe, "dp-forward"}, nil
	}
	if p, err := exec.LookPath("ims-dpfwd"); err == nil {
		return []string{p}, nil
	}
	return nil, errors.New("no DP forwarder: not running as ims-orch and no ims-dpfwd on PATH (Options.DPForwarder)")
}

// dpDCs are the datacenters whose data plane this node runs: every one on a
// single node, role.locals on a cluster node (the same composition: bridges,
// instances, rules and statistics of those DCs; links only between them).
func (d *Daemon) dpDCs() map[string]bool {
	out := map[string]bool{}
	if d.cfg.Clustered() {
		for _, dc := range d.cfg.Role.Locals {
			out[dc] = true
		}
		return out
	}
	for _, dc := range d.cfg.dcNames() {
		out[dc] = true
	}
	return out
}

// startDataPlane starts Open vSwitch and the DP instance driver when it can
// run here; otherwise it returns nil and the reason (the DP stays simulated).
func (d *Daemon) startDataPlane() (drivers.Driver, error) {
	local := d.dpDCs()
	if len(local) == 0 {
		return nil, errors.New("this cluster node runs no local controller (role.locals): no data plane of its own")
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
	od, err := ovs.Start(ctx, ovs.Config{Dir: dir, Prefix: dpPrefix(dir), Wait: 3 * time.Second}) // Wait: ovsclean may hold a dead run's prefix briefly
	if err != nil {
		return nil, err
	}
	names := d.cfg.dcNames()
	bridges := map[string]string{}
	for k, dc := range names {
		if !local[dc] {
			continue
		}
		br := dataplane.BridgeName(od.Prefix(), k)
		if err := od.EnsureBridge(ctx, br, k); err != nil {
			_ = od.Stop(ctx)
			return nil, err
		}
		bridges[dc] = br
	}
	fwd, err := d.dpForwarder()
	if err != nil {
		_ = od.Stop(ctx)
		return nil, err
	}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: od, Bridges: bridges, Forwarder: fwd})
	if err != nil {
		_ = od.Stop(ctx)
		return nil, err
	}
	d.dp = &dpParts{ovs: od, drv: drv, lazy: dataplane.NewLazy(names)}
	if err := d.dp.startMediaHook(len(names), d.clk, d.log); err != nil {
		_ = drv.Close(ctx) // its goroutines; it has no instances yet
		_ = od.Stop(ctx)
		d.dp = nil
		return nil, err
	}
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
// pair counter rules' counters, controller/dpmeter) whenever the real data plane
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

// attachDataPlane builds the plane over the routers once they exist and
// starts its failure watch and the DP statistics.
func (d *Daemon) attachDataPlane(routers map[string]*dcroute.Router) error {
	if d.dp == nil {
		return nil
	}
	names := d.cfg.dcNames()
	rs := make([]*dcroute.Router, len(names))
	local := d.dpDCs()
	for k, dc := range names {
		if local[dc] {
			rs[k] = routers[dc] // nil for another node's DC: no bridge here
		}
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
	d.dp.media.SetProgrammer(p)
	go p.Watch(ctx, 200*time.Millisecond)
	for k, dc := range names {
		if c := d.locals[dc]; c != nil && rs[k] != nil {
			// CPU, buffer, packets and the flows the switch pins to each
			// instance (local's draining and TrimEmpty rules need them)
			go func() {
				if err := p.SampleStats(ctx, k, c, time.Second); err != nil {
					d.log.Warn("data plane statistics", "dc", dc, "err", err)
				}
			}()
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
	if dp.mediaSrv != nil {
		// the running posts are answered, then every rule update still
		// running (installs of posts cut at the bound, the answered ends'
		// removals) ends: no install races the plane's removal below
		if err := dp.mediaSrv.Stop(context.Background()); err != nil {
			log.Warn("stopping the media hook", "err", err)
		}
	}
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
