package local

import (
	"testing"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

func TestManualScale(t *testing.T) {
	e := newEnv(t, fwConfig(2), fake.Options{})
	if got, err := e.c.Scale("firewall", -1, "maintenance"); err != nil || got != 2 {
		t.Fatalf("scale in below min: target %d, err %v; want kept at min 2", got, err)
	}
	if got, err := e.c.Scale("firewall", 3, ""); err != nil || got != 5 {
		t.Fatalf("scale out: %d %v", got, err)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 5 {
		t.Fatalf("working %d, want 5", w)
	}
	if n := len(e.actions(KindCreate, ReasonManual)); n != 3 {
		t.Fatalf("%d manual creates, want 3", n)
	}
	if _, err := e.c.Scale("firewall", -2, "less traffic"); err != nil {
		t.Fatal(err)
	}
	if b := len(e.c.Buffer("firewall")); b != 2 || len(e.actions(KindBuffer, ReasonManual)) != 2 {
		t.Fatalf("buffered %d, manual buffer actions %d, want 2 and 2", b, len(e.actions(KindBuffer, ReasonManual)))
	}
	// scaling out again takes the buffer tail before launching
	launches := len(e.drv.Launches())
	if _, err := e.c.Scale("firewall", 3, ""); err != nil {
		t.Fatal(err)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 6 || len(e.actions(KindReuse, ReasonManual)) != 2 || len(e.drv.Launches()) != launches+1 {
		t.Fatalf("working %d, manual reuses %d, launches +%d; want 6, 2, +1", w, len(e.actions(KindReuse, ReasonManual)), len(e.drv.Launches())-launches)
	}
	if _, err := e.c.Scale("nope", 1, ""); err == nil {
		t.Fatal("unknown VNF accepted")
	}
}
