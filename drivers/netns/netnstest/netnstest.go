// Package netnstest holds the test helpers of the network-namespace data
// plane (drivers/netns): the DP forwarder binary built once per test
// process into a content-addressed cache shared by test processes. Tests only import it
// (scripts/check-pure.sh).
package netnstest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// fwd is the test process's forwarder (Forwarder).
var fwd cache

// cache is a test process's forwarder: the installed binary's path, or why
// no shared dir could hold one.
type cache struct {
	mu        sync.Mutex
	path      string // the installed binary, "" until installed
	sharedErr error  // no shared dir could hold it: build per test
}

// Forwarder returns the forwarder command for tests (netns.DriverConfig and
// dataplane.Config Forwarder): cmd/ims-dpfwd built (go build, cached) into
// a shared dir (sharedDirs), named by its content, once per test process,
// and again if the file went missing (pruned by another process).
//
// Nothing is created per process that a cleanup hook would have to remove,
// so a killed test (go test -timeout, SIGKILL) leaves nothing behind: the
// cache holds one binary per distinct build (identical builds from
// concurrent or later test processes, in any checkout, share one file), and
// builds unused for a week are pruned. The trade: a few MB stay in the
// user's cache dir between runs instead of one temporary dir leaking per
// test process. Only if no shared dir is usable is the forwarder built into
// each calling test's t.TempDir (removed when the test ends).
func Forwarder(t testing.TB) []string {
	t.Helper()
	return fwd.forwarder(t, time.Now())
}

func (c *cache) forwarder(t testing.TB, now time.Time) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path != "" {
		if _, err := os.Stat(c.path); err == nil {
			return []string{c.path}
		}
		c.path = "" // pruned by another process: install again
	}
	if c.sharedErr == nil {
		path, out, err := installShared(now)
		var be *buildError
		switch {
		case err == nil:
			c.path = path
			return []string{path}
		case errors.As(err, &be):
			t.Fatalf("building the DP forwarder: %v\n%s", err, out)
		}
		c.sharedErr = err
	}
	path, out, err := install(t.TempDir(), now)
	if err != nil {
		t.Fatalf("building the DP forwarder into the test's temporary dir (no shared dir: %v): %v\n%s", c.sharedErr, err, out)
	}
	return []string{path}
}

// buildError is go build's failure: no other dir would help.
type buildError struct{ err error }

func (e *buildError) Error() string { return "go build: " + e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// installShared installs the forwarder into the first of sharedDirs that
// can be created and written, returning its path and go build's output; a
// build failure is returned at once (a *buildError).
func installShared(now time.Time) (string, []byte, error) {
	var errs []error
	for _, dir := range sharedDirs() {
		d, err := dir()
		if err == nil {
			var path string
			var out []byte
			path, out, err = install(d, now)
			var be *buildError
			if err == nil || errors.As(err, &be) {
				return path, out, err
			}
		}
		errs = append(errs, err)
	}
	return "", nil, fmt.Errorf("no shared dir for the DP forwarder: %w", errors.Join(errs...))
}

// sharedDirs are where Forwarder installs the forwarder, in order:
// userCacheDir, then tempUserDir.
func sharedDirs() []func() (string, error) {
	return []func() (string, error){userCacheDir, tempUserDir}
}

// userCacheDir is ims-orch/testbin in the user's cache dir
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache, the Go build cache's
// parent), created if missing.
func userCacheDir() (string, error) {
	root, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "ims-orch", "testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("the DP forwarder's cache dir: %w", err)
	}
	return dir, nil
}

// tempUserDir is ims-orch-testbin-<euid> in the temporary dir (one fixed
// dir per user, not one per process), created mode 0700. The temporary
// dir is shared, and tests run the forwarder as root, so the dir is
// refused unless it is a real dir (not a symlink) owned by this user that
// no one else can write: otherwise another user could swap the binary.
func tempUserDir() (string, error) {
	euid := os.Geteuid()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("ims-orch-testbin-%d", euid))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("the DP forwarder's temporary cache dir: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case !info.IsDir():
		return "", fmt.Errorf("the DP forwarder's temporary cache dir %s: not a dir (%s)", dir, info.Mode().Type())
	case !ok || int(st.Uid) != euid:
		return "", fmt.Errorf("the DP forwarder's temporary cache dir %s: not owned by uid %d", dir, euid)
	case info.Mode().Perm()&0o022 != 0:
		return "", fmt.Errorf("the DP forwarder's temporary cache dir %s: writable by others (%s)", dir, info.Mode().Perm())
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
	// -trimpath -buildvcs=false: no checkout's paths or VCS state in the
	// binary, so identical sources in any checkout share one file
	out, err := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", tmp, "github.com/ims-orch/ims-orch/cmd/ims-dpfwd").CombinedOutput()
	if err != nil {
		return "", out, &buildError{err}
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
