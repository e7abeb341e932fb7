package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/drivers"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"

	"golang.org/x/sys/unix"
)

// checkDataPlane: with Open vSwitch installed and root, serve --driver
// local runs every DP stage as a network namespace instance on its DC's
// bridge; it returns a check that, after shutdown, nothing of it is left.
func checkDataPlane(t *testing.T, d *Daemon) (after func()) {
	t.Helper()
	if ovs.Available() != nil {
		if d.dp != nil {
			t.Fatal("no Open vSwitch, yet a real data plane")
		}
		t.Log("Open vSwitch absent: the data plane stays simulated")
		return func() {}
	}
	if !ovsLockHeld(t) {
		t.Fatalf("a real data plane runs, but %s is free: the real Open vSwitch tests' machine lock is not held", machinelocktest.OVS.Path)
	}
	if d.dp == nil || d.dp.plane == nil {
		t.Fatal("Open vSwitch installed and root, but serve --driver local did not start the real data plane")
	}
	// the DP workload comes from each DC's switch, not from the fluid model
	if len(d.sys.Meters) != len(d.cfg.dcNames()) || d.pump != nil {
		t.Fatalf("real data plane: %d DP meters for %d DCs, simulated pump %v", len(d.sys.Meters), len(d.cfg.dcNames()), d.pump != nil)
	}
	prefix := d.dp.ovs.Prefix()
	stages := d.cfg.Topology.Chain
	eventually(t, 60*time.Second, "an active DP instance of every stage in every DC", func() bool {
		ins, _ := d.dp.drv.List(context.Background(), "")
		have := map[string]bool{}
		for _, in := range ins {
			if in.State == drivers.StateActive {
				have[in.DC+"/"+in.VNF] = true
			}
		}
		for _, dc := range d.cfg.dcNames() {
			for _, s := range stages {
				if !have[dc+"/"+s.Name] {
					return false
				}
			}
		}
		return true
	})
	brs, err := d.dp.ovs.OurBridges(context.Background())
	if err != nil || len(brs) != len(d.cfg.dcNames()) {
		t.Fatalf("bridges %v %v, want one per DC", brs, err)
	}
	// every DC's unreadable learned rules are a metric (none here)
	if sk := d.backend.MetricsSnapshot().SkippedLearned; len(sk) != len(d.cfg.dcNames()) || slices.ContainsFunc(sk, func(s metrics.SkippedLearned) bool { return s.N != 0 }) {
		t.Fatalf("skipped learned rules in the metrics: %+v, want 0 for each of %v", sk, d.cfg.dcNames())
	}
	// and its learned-rule monitor's restarts (a count per DC, any value)
	if mr := d.backend.MetricsSnapshot().MonitorRestarts; len(mr) != len(d.cfg.dcNames()) {
		t.Fatalf("learned-rule monitor restarts in the metrics: %+v, want one per DC of %v", mr, d.cfg.dcNames())
	}
	return func() {
		if ns, _ := ovs.Netns(context.Background(), prefix); len(ns) != 0 {
			t.Fatalf("namespaces left after shutdown: %v", ns)
		}
		if d.dp.ovs.VswitchdAlive() {
			t.Fatal("ovs-vswitchd still runs after shutdown")
		}
	}
}

// serve --driver local failing after the data plane came up (here: the
// first DC's discovery DNS address is taken) leaves no Open vSwitch daemon,
// namespace or media hook of its own behind.
func TestDriverLocalFailureLeavesNoDataPlane(t *testing.T) {
	if err := localdrv.Available(); err != nil {
		t.Skipf("Kamailio/SIPp absent (%v)", err)
	}
	ovstest.Require(t)
	lockSIP(t) // no other real-SIP run is on DC 0's addresses while the test holds the lock
	a, err := localdrv.DNSAddr(0)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.ListenPacket("udp", a.String())
	if err != nil {
		t.Fatalf("%s is in use although this test holds the real-SIP lock (a leaked process, or a run without the lock): %v", a, err)
	}
	defer busy.Close()
	cfg := DefaultConfig()
	cfg.Driver.Kind = DriverLocal
	cfg.Driver.KamailioDir = t.TempDir()
	dir, _ := filepath.Abs(filepath.Join(cfg.Driver.KamailioDir, "dataplane"))
	if _, err := New(cfg, Options{Listener: listen(t), Logger: discard(), DPForwarder: netnstest.Forwarder(t)}); err == nil {
		t.Fatal("New succeeded with the discovery DNS address taken")
	}
	if ns, _ := ovs.Netns(context.Background(), dpPrefix(dir)); len(ns) != 0 {
		t.Fatalf("namespaces left: %v", ns)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vswitchd.pid")); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && syscall.Kill(pid, 0) == nil {
			t.Fatalf("ovs-vswitchd %d of the failed start still runs", pid)
		}
	}
}

// ovsLockHeld reports whether the real Open vSwitch tests' machine lock is
// held (by this run or an ancestor's flock(1)): a non-blocking flock(2) on
// an open file of its own would wait.
func ovsLockHeld(t *testing.T) bool {
	t.Helper()
	f, err := os.Open(machinelocktest.OVS.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}
