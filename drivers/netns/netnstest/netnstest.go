// Package netnstest holds the test helpers of the network-namespace data
// plane (drivers/netns): the DP forwarder binary built once per test
// process. Tests only import it (scripts/check-pure.sh).
package netnstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var fwdBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Forwarder returns the forwarder command for tests (netns.DriverConfig and
// dataplane.Config Forwarder): cmd/ims-dpfwd built once per test process
// (go build, cached) into a temporary dir.
func Forwarder(t testing.TB) []string {
	t.Helper()
	fwdBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "ims-dpfwd")
		if err != nil {
			fwdBuild.err = err
			return
		}
		fwdBuild.path = filepath.Join(dir, "ims-dpfwd")
		cmd := exec.Command("go", "build", "-o", fwdBuild.path, "github.com/ims-orch/ims-orch/cmd/ims-dpfwd")
		fwdBuild.out, fwdBuild.err = cmd.CombinedOutput()
	})
	if fwdBuild.err != nil {
		t.Fatalf("building the DP forwarder: %v\n%s", fwdBuild.err, fwdBuild.out)
	}
	return []string{fwdBuild.path}
}
