package netns

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

// ForwarderForTest returns the forwarder command for tests: cmd/ims-dpfwd
// built once per test process (go build, cached) into a temporary dir.
func ForwarderForTest(t testing.TB) []string {
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
