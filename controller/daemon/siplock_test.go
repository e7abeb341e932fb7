package daemon

import (
	"testing"

	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
)

// lockSIP takes the real-SIP lock (sipptest.LockSIP) for the rest of the
// test: the daemon's driver-local tests bring DC 0 up on 127.10.x.x and its
// DNS on 127.10.0.53:53, the addresses the SIP chaos serve test uses too.
func lockSIP(t *testing.T) {
	t.Helper()
	sipptest.LockSIP(t)
}
