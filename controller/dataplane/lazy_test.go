package dataplane

import (
	"slices"
	"testing"

	"github.com/ims-orch/ims-orch/controller/local"
)

// recordingSink records the Forget calls it gets.
type recordingSink struct{ forgot []string }

func (r *recordingSink) SetInstances(string, []local.RoutableInstance) {}
func (r *recordingSink) Forget(vnf, id string)                         { r.forgot = append(r.forgot, vnf+"/"+id) }

// Lazy's sink passes a gone instance on to the sink it wraps, also before
// the plane is set: in the daemon the chain is lazySink → sipglue's DNS sink
// → dcroute.Router, and local.ForgetIn's silent type assertion would stop
// the event at a wrapper without Forget (the router would never free a
// destroyed instance's index again).
func TestLazySinkPassesForgetOn(t *testing.T) {
	l := NewLazy([]string{"dc0"})
	rec := &recordingSink{}
	local.ForgetIn(l.Sink("dc0", rec), "ids", "x")
	local.ForgetIn(l.Sink("other", rec), "ids", "y") // not a DC of the plane: still passed on
	if want := []string{"ids/x", "ids/y"}; !slices.Equal(rec.forgot, want) {
		t.Fatalf("the wrapped sink got Forget %v, want %v", rec.forgot, want)
	}
}
