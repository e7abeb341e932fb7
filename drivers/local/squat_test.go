package local_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// A Kamailio that dies while booting may have died of its address: here
// another process holds its SIP port (a real "bind: Address already in
// use" exit). Its replacement, and a launch after it, get other addresses
// and serve; once the other process let go, the address is handed out
// again and serves. Before the fix every launch got the same lowest free
// address again and died of it, a crash loop no backoff ends (real
// Kamailio 5.6, 127.60.x.x).
func TestBootDeathAddressNotHandedOutAgain(t *testing.T) {
	if err := local.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(t) // real Kamailio on loopback

	const dc = "dc50" // 127.60.x.x
	squatted, _ := local.InstanceAddr(50, local.RoleSCSCF, 1)
	sq, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(squatted, local.SIPPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	launches := newLaunchLog()
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 1, ShmMB: 64, Grace: 2 * time.Second, Starter: launches})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkAllGone(t, d, launches) })
	evs := newEventLog(d)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	launch := func(id, replaces string) *realProc {
		t.Helper()
		n := len(launches.all())
		if _, err := d.Launch(ctx, drivers.Spec{ID: id, DC: dc, VNF: "S-CSCF", Replaces: replaces}); err != nil {
			t.Fatal(err)
		}
		all := launches.all()
		if len(all) != n+1 {
			t.Fatalf("%s: %d processes started, want 1", id, len(all)-n)
		}
		return all[n]
	}

	p1 := launch("sq1", "")
	evs.wait(t, "sq1", drivers.StateGone, 10*time.Second)
	<-p1.exited
	log, _ := os.ReadFile(filepath.Join(p1.dir, "kamailio.log"))
	if p1.addr != squatted || !bytes.Contains(log, []byte("Address already in use")) {
		t.Fatalf("sq1 on %s (want %s) exited (%v), not of its address; log:\n%s", p1.addr, squatted, p1.exitErr, log)
	}
	for _, c := range []struct {
		id, replaces string
		free         bool // the other process let go of the address
	}{{"sq2", "sq1", false}, {"sq3", "", false}, {"sq4", "", true}} {
		if c.free {
			_ = sq.Close()
		}
		p := launch(c.id, c.replaces)
		if (p.addr == squatted) != c.free {
			t.Fatalf("%s (replaces %q) got %s; the address %s its predecessor died of is held: %v", c.id, c.replaces, p.addr, squatted, !c.free)
		}
		evs.wait(t, c.id, drivers.StateActive, 15*time.Second)
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := kamrpc.New(netip.AddrPortFrom(p.addr, local.RPCPort)).Version(rctx)
		rcancel()
		if err != nil || p.done() {
			t.Fatalf("%s on %s active but its process does not answer (exited %v): %v", c.id, p.addr, p.done(), err)
		}
	}
}
