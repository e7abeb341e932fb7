// Package netnstest holds the test helpers of the network-namespace data
// plane (drivers/netns): the DP forwarder binary built once per test
// process into a content-addressed cache. Tests only import it
// (scripts/check-pure.sh).
package netnstest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// binPrefix names the installed forwarders: binPrefix + the first 16
	// hex digits of the binary's SHA-256.
	binPrefix = "ims-dpfwd-"
	// tmpPrefix names a build in progress (renamed when complete).
	tmpPrefix = ".ims-dpfwd-build-"
	// staleBin: an installed forwarder no test process used for this long
	// is removed (another checkout's or an older source's build).
	staleBin = 7 * 24 * time.Hour
	// staleTmp: a build left by a killed test process.
	staleTmp = time.Hour
)

var fwdBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Forwarder returns the forwarder command for tests (netns.DriverConfig and
// dataplane.Config Forwarder): cmd/ims-dpfwd built once per test process
// (go build, cached) into cacheDir, named by its content.
//
// Nothing is created per process that a cleanup hook would have to remove,
// so a killed test (go test -timeout, SIGKILL) leaves nothing behind: the
// cache holds one binary per distinct build (identical builds from
// concurrent or later test processes share one file), and builds unused for
// a week are pruned. The trade: a few MB stay in the user's cache dir
// between runs instead of one temporary dir leaking per test process.
func Forwarder(t testing.TB) []string {
	t.Helper()
	fwdBuild.once.Do(func() {
		dir, err := cacheDir()
		if err != nil {
			fwdBuild.err = err
			return
		}
		fwdBuild.path, fwdBuild.out, fwdBuild.err = install(dir, time.Now())
	})
	if fwdBuild.err != nil {
		t.Fatalf("building the DP forwarder: %v\n%s", fwdBuild.err, fwdBuild.out)
	}
	return []string{fwdBuild.path}
}

// cacheDir is where Forwarder installs the forwarder: ims-orch/testbin in
// the user's cache dir (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache, the
// Go build cache's parent), or without one ims-orch-testbin in the
// temporary dir (one fixed dir, not one per process); created if missing.
func cacheDir() (string, error) {
	dir := filepath.Join(os.TempDir(), "ims-orch-testbin")
	if root, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(root, "ims-orch", "testbin")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("the DP forwarder's cache dir: %w", err)
	}
	return dir, nil
}

// install builds cmd/ims-dpfwd into dir (a temporary name, then renamed to
// binPrefix + its content hash: atomic, so concurrent test processes never
// see a partial binary and identical builds share the file), prunes what
// is stale at now and returns the binary's path and go build's output.
func install(dir string, now time.Time) (string, []byte, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", nil, err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // a no-op once renamed
	out, err := exec.Command("go", "build", "-o", tmp, "github.com/ims-orch/ims-orch/cmd/ims-dpfwd").CombinedOutput()
	if err != nil {
		return "", out, err
	}
	sum, err := fileSHA256(tmp)
	if err != nil {
		return "", out, err
	}
	path := filepath.Join(dir, binPrefix+sum[:16])
	if err := os.Rename(tmp, path); err != nil {
		return "", out, err
	}
	// the rename keeps the build's mtime (now): this binary is in use
	_ = os.Chtimes(path, now, now)
	prune(dir, path, now)
	return path, out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// prune removes from dir the forwarders (but keep) unused for staleBin and
// the builds older than staleTmp (left by killed processes). Errors are
// ignored: another test process may be pruning the same dir.
func prune(dir, keep string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var age time.Duration
		switch {
		case p == keep:
			continue
		case strings.HasPrefix(e.Name(), binPrefix):
			age = staleBin
		case strings.HasPrefix(e.Name(), tmpPrefix):
			age = staleTmp
		default:
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > age {
			_ = os.Remove(p)
		}
	}
}
