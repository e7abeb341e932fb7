package system

import (
	"reflect"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/global"
)

// The declared profile's prior plans over the next interval, and with a
// plan horizon over half an interval plus the horizon (the window the
// simulator's prior always had); the interval and call duration default;
// fields the caller set stay.
func TestProfilePriorWindow(t *testing.T) {
	p := profilePrior(global.ProfilePrior{}, 50*time.Second, 0)
	if p.Window != 50*time.Second || p.Interval != 50*time.Second || p.CallDuration != global.DefaultProfileCallDuration {
		t.Fatalf("no horizon: %+v", p)
	}
	if p := profilePrior(global.ProfilePrior{}, 50*time.Second, 1.3); p.Window != 90*time.Second {
		t.Fatalf("horizon 1.3: window %v, want 90s (0.5 + 1.3 intervals)", p.Window)
	}
	set := global.ProfilePrior{Interval: 20 * time.Second, Window: 7 * time.Second, CallDuration: 2 * time.Minute}
	if p := profilePrior(set, 50*time.Second, 1.3); !reflect.DeepEqual(p, set) {
		t.Fatalf("set fields changed: %+v", p)
	}
}
