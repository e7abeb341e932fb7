package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// serve --driver local: real Kamailio P-CSCFs (one per DC) and the S-CSCF,
// published in each DC's discovery DNS, with statistics agents feeding the
// local controllers; at shutdown no Kamailio process is left.
// With the real data plane, besides checkMediaCall's call: a delayed offer
// and a re-INVITE moving the caller's media (session 16), early media from
// a reliable 183 and UPDATEs moving each side's media (session 17).
func TestServeDriverLocal(t *testing.T) {
	serveDriverLocal(t, nil, checkDelayedOfferCall, checkReinviteCall, checkUpdateCall)
}

// The same on a cluster node (raft, one voter) that runs every DC's local
// controller (role.locals) and the engine, reaching its own local
// controllers over the HTTP protocol (issue 13: the cluster brings up the
// real data plane of its local DCs exactly as a single node does: one
// composition path).
func TestServeDriverLocalCluster(t *testing.T) {
	serveDriverLocal(t, func(cfg *Config, url string) {
		token := filepath.Join(t.TempDir(), "protocol-token")
		if err := os.WriteFile(token, []byte("test-protocol-token-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Node = NodeConfig{ID: "n1", RaftBind: "127.0.0.1:0", RaftDir: t.TempDir(), Bootstrap: true}
		cfg.API.URL = url
		cfg.Role = RoleConfig{Global: true, Locals: cfg.dcNames(), ProtocolTokenFile: token, LocalEndpoints: map[string]string{}}
		for _, dc := range cfg.dcNames() {
			cfg.Role.LocalEndpoints[dc] = url
		}
		cfg.Traffic = nil
	})
}

func serveDriverLocal(t *testing.T, mutate func(cfg *Config, url string), mediaChecks ...func(*testing.T, *Daemon)) {
	if err := localdrv.Available(); err != nil {
		t.Skipf("Kamailio/SIPp absent (%v): scripts/ci-kamailio.sh installs them", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the discovery DNS listens on port 53 (Kamailio resolves on no other)")
	}
	if ovs.Available() == nil {
		// the real data plane runs: the real Open vSwitch tests' machine
		// lock first, then the SIP lock (the order everywhere)
		machinelocktest.OVS.Hold(t)
	}
	lockSIP(t) // DC 0's fixed addresses are the SIP chaos test's too
	cfg := DefaultConfig()
	cfg.Driver.Kind = DriverLocal
	cfg.Driver.KamailioDir = t.TempDir()
	ln := listen(t)
	if mutate != nil {
		mutate(cfg, "http://"+ln.Addr().String())
		if err := cfg.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	opt := Options{Listener: ln, Logger: discard(), ShutdownTimeout: 20 * time.Second}
	if ovs.Available() == nil {
		opt.DPForwarder = netnstest.Forwarder(t)
	}
	d, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if d.localDrv == nil || d.sip == nil {
		t.Fatal("driver local did not start its Kamailio driver and discovery DNS")
	}
	// newcomer's path: GET /datacenters says where each DC's discovery is
	apiDCs, _ := d.Backend().Datacenters(context.Background())
	for i, dc := range apiDCs {
		want := localdrv.Zone(i, "ims.local")
		if dc.Discovery == nil || dc.Discovery.Zone != want || dc.Discovery.DNSServer == "" || dc.Discovery.PCSCFSRV != "_sip._udp.pcscf."+want {
			t.Errorf("datacenter %s: discovery %+v, want zone %s with its DNS server and SRV names", dc.Name, dc.Discovery, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(40 * time.Second):
			t.Error("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() }) // the Kamailio processes stop even when the test fails
	dcs := cfg.dcNames()
	t.Cleanup(func() {
		if t.Failed() {
			for i, dc := range dcs {
				for _, in := range d.locals[dc].Instances() {
					t.Logf("%s %s %s %s cloud=%s %s", dc, in.ID, in.VNF, in.State, in.CloudState, in.FailReason)
				}
				t.Logf("%s DNS P %v S %v", dc, d.sip.servers[i].Records(sipglue.ServicePCSCF), d.sip.servers[i].Records(sipglue.ServiceSCSCF))
			}
		}
	})
	eventually(t, 20*time.Second, "a P-CSCF and the S-CSCF in every DC's DNS", func() bool {
		for i := range dcs {
			s := d.sip.servers[i]
			if len(s.Records(sipglue.ServicePCSCF)) == 0 || len(s.Records(sipglue.ServiceSCSCF)) == 0 {
				return false
			}
		}
		return true
	})
	eventually(t, 30*time.Second, "agents' statistics of the Kamailio instances at the local controllers", func() bool {
		for _, dc := range dcs {
			seen := false
			for _, in := range d.locals[dc].Instances() {
				if in.VNF == cfg.Topology.PCSCF.Name && in.State == local.StateNormal && !in.Last.At.IsZero() {
					seen = true
				}
			}
			if !seen {
				return false
			}
		}
		return true
	})
	dpGone := checkDataPlane(t, d)
	if d.dp != nil {
		checkMediaCall(t, d)
		for _, check := range mediaChecks {
			check(t, d)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dpGone()
	if ins, err := d.localDrv.List(context.Background(), ""); err != nil || len(ins) != 0 {
		t.Fatalf("Kamailio instances left after shutdown: %v %v", ins, err)
	}
}
