package daemon

import (
	"testing"

	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// lockSIP takes the real-SIP machine lock (machinelocktest.SIP) for the
// rest of the test: the daemon's driver-local tests bring DC 0 up on
// 127.10.x.x and its DNS on 127.10.0.53:53, the addresses the SIP chaos
// serve test uses too. A test that also runs the real data plane takes
// machinelocktest.OVS first, a test on the real OpenStack lockOpenStack.
func lockSIP(t *testing.T) {
	t.Helper()
	machinelocktest.SIP.Hold(t)
}

// lockOpenStack takes the real-OpenStack machine lock
// (machinelocktest.OpenStack) for the rest of the test: the loopback
// OpenStack of scripts/ci-openstack.sh is one for the machine. It comes
// before the SIP lock (lockSIP).
func lockOpenStack(t *testing.T) {
	t.Helper()
	machinelocktest.OpenStack.Hold(t)
}
