package local

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// Anticipate's horizon is per VNF: a slow boot of one VNF (a CP image)
// does not set another's, which keeps its own last boot; a VNF with none
// of its own yet uses the controller's last; an instance adopted at start
// (its Created is the cloud's, not a launch of ours) sets neither.
func TestAnticipateBootSeenPerVNF(t *testing.T) {
	cfg := Config{DC: "dc0", VNFs: []VNFConfig{
		{Name: "firewall", Capacity: 35000, Image: "fw", Flavor: "m1", Min: 1},
		{Name: "pcscf", Capacity: 35000, Image: "k", Flavor: "m1"},
		{Name: "ids", Capacity: 35000, Image: "i", Flavor: "m1"},
	}}
	e := newEnv(t, cfg, fake.Options{BootDelay: 10 * time.Second})
	e.seconds(11) // the firewall's Min instance: 10 s
	c := e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	fw, cp, ids := c.vnfs["firewall"], c.vnfs["pcscf"], c.vnfs["ids"]
	if got := c.bootLocked(fw); got != 10*time.Second {
		t.Fatalf("firewall boot %v, want 10s", got)
	}
	if got := c.bootLocked(cp); got != 10*time.Second {
		t.Fatalf("pcscf boot %v before one of its own, want the controller's 10s", got)
	}
	now := c.clk.Now()
	slow := &inst{Instance: Instance{ID: "dc0-pcscf-9", VNF: "pcscf", State: StateBooting, CloudState: drivers.StateBooting, Created: now.Add(-40 * time.Second)}}
	c.insts[slow.ID] = slow
	c.activateLocked(slow)
	if got := c.bootLocked(cp); got != 40*time.Second {
		t.Fatalf("pcscf boot %v, want its own 40s", got)
	}
	if got := c.bootLocked(fw); got != 10*time.Second {
		t.Fatalf("firewall boot %v after a slow pcscf boot, want its own 10s", got)
	}
	old := &inst{Instance: Instance{ID: "dc0-ids-9", VNF: "ids", State: StateBooting, CloudState: drivers.StateBooting,
		Created: now.Add(-time.Hour), Why: "found in the cloud"}, adopted: true}
	c.insts[old.ID] = old
	c.activateLocked(old)
	if got := c.bootLocked(ids); got != 40*time.Second {
		t.Fatalf("ids boot %v after adopting an hour-old instance, want the controller's last (40s)", got)
	}
}
