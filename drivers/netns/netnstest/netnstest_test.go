package netnstest

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A test process that uses the forwarder leaves nothing in the temporary
// dir (it once left an ims-dpfwd* dir per process), the binary is named by
// its content and lives in the user's cache dir, and it is built without
// the checkout's paths or VCS state (so any checkout shares it).
func TestForwarderLeavesNothingInTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	cmd := new(cache).forwarder(t, time.Now())
	if len(cmd) != 1 {
		t.Fatalf("forwarder command %q: want one path", cmd)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the temporary dir: %s", e.Name())
	}
	if want := filepath.Join(xdg, "ims-orch", "testbin"); filepath.Dir(cmd[0]) != want {
		t.Errorf("forwarder %s: want it in %s", cmd[0], want)
	}
	sum, err := fileSHA256(cmd[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := binPrefix + sum[:16]; filepath.Base(cmd[0]) != want {
		t.Errorf("forwarder %s: want the content-addressed name %s", cmd[0], want)
	}
	info, err := buildinfo.ReadFile(cmd[0])
	if err != nil {
		t.Fatal(err)
	}
	trimmed := false
	for _, s := range info.Settings {
		if s.Key == "-trimpath" && s.Value == "true" {
			trimmed = true
		}
		if strings.HasPrefix(s.Key, "vcs") {
			t.Errorf("forwarder built with %s=%s: the hash would differ per checkout state", s.Key, s.Value)
		}
	}
	if !trimmed {
		t.Errorf("forwarder built without -trimpath: the hash would differ per checkout dir")
	}
}

// Without a usable user cache dir (none, or it cannot be created) the
// forwarder goes to one dir per user in the temporary dir, mode 0700; no
// test fails for it.
func TestForwarderFallsBackToTempUserDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t *testing.T)
	}{
		{"cache dir cannot be created", func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("XDG_CACHE_HOME", file) // mkdir under a file fails, even for root
		}},
		{"no HOME", func(t *testing.T) {
			t.Setenv("XDG_CACHE_HOME", "")
			t.Setenv("HOME", "")
			os.Unsetenv("HOME") // t.Setenv restores it
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keepGoEnv(t)
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			tc.env(t)
			cmd := new(cache).forwarder(t, time.Now())
			dir := filepath.Join(tmp, fmt.Sprintf("ims-orch-testbin-%d", os.Geteuid()))
			if filepath.Dir(cmd[0]) != dir {
				t.Errorf("forwarder %s: want it in %s", cmd[0], dir)
			}
			info, err := os.Lstat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !info.IsDir() || info.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %s, want a dir with 0700", dir, info.Mode())
			}
		})
	}
}

// The per-user dir in the shared temporary dir is refused unless it is a
// real dir owned by this user that no one else can write; then each test
// builds into its own temporary dir, removed when the test ends.
func TestTempUserDirRefused(t *testing.T) {
	bad := map[string]func(t *testing.T, dir string){
		"a symlink": func(t *testing.T, dir string) {
			target := t.TempDir()
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		},
		"writable by others": func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		},
		"a file": func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"another user's": func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, plant := range bad {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			plant(t, filepath.Join(tmp, fmt.Sprintf("ims-orch-testbin-%d", os.Geteuid())))
			if dir, err := tempUserDir(); err == nil {
				t.Errorf("tempUserDir accepted %s", dir)
			}
		})
	}
	// the forwarder itself: neither shared dir usable
	var path string
	t.Run("forwarder", func(t *testing.T) {
		keepGoEnv(t)
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		t.Setenv("XDG_CACHE_HOME", "")
		t.Setenv("HOME", "")
		os.Unsetenv("HOME")
		if err := os.Symlink(t.TempDir(), filepath.Join(tmp, fmt.Sprintf("ims-orch-testbin-%d", os.Geteuid()))); err != nil {
			t.Fatal(err)
		}
		path = new(cache).forwarder(t, time.Now())[0]
		if strings.HasPrefix(path, tmp+string(filepath.Separator)) {
			t.Errorf("forwarder %s: in the refused dir", path)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("forwarder: %v", err)
		}
	})
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the test's own forwarder %s after the test: %v, want removed", path, err)
	}
}

// A forwarder removed from the cache (pruned by another process) is
// installed again rather than returned missing.
func TestForwarderReinstallsMissing(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var c cache
	first := c.forwarder(t, time.Now())[0]
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	second := c.forwarder(t, time.Now())[0]
	if _, err := os.Stat(second); err != nil {
		t.Errorf("forwarder after its file was removed: %v", err)
	}
}

// install reuses one file for identical builds and prunes stale builds and
// the temporaries of killed processes, keeping recently used ones.
func TestInstallSharesAndPrunes(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := now.Add(-staleBin - time.Hour)
	seed := map[string]time.Time{
		binPrefix + "0000000000000000": old,                      // another build, unused for over a week
		binPrefix + "1111111111111111": now.Add(-24 * time.Hour), // another build, used yesterday
		tmpPrefix + "killed":           now.Add(-staleTmp - time.Minute),
		tmpPrefix + "running":          now.Add(-time.Minute), // a concurrent build
		"unrelated":                    old,
	}
	for name, mtime := range seed {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	first, out, err := install(dir, now)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	second, out, err := install(dir, now)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if first != second {
		t.Errorf("identical builds installed as %s and %s: want one file", first, second)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{filepath.Base(first), binPrefix + "1111111111111111", tmpPrefix + "running", "unrelated"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("cache dir holds %s, want %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

// keepGoEnv pins go build's caches (which default to the user's cache and
// home dirs) before a test takes those dirs away.
func keepGoEnv(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	v := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(v) != 3 {
		t.Fatalf("go env: %q", out)
	}
	t.Setenv("GOCACHE", v[0])
	t.Setenv("GOMODCACHE", v[1])
	t.Setenv("GOPATH", v[2])
}
