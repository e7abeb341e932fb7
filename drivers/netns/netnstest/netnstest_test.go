package netnstest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A test process that uses the forwarder leaves nothing in the temporary
// dir (it once left an ims-dpfwd* dir per process), and the binary is
// named by its content.
func TestForwarderLeavesNothingInTempDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cmd := Forwarder(t)
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
	sum, err := fileSHA256(cmd[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := binPrefix + sum[:16]; filepath.Base(cmd[0]) != want {
		t.Errorf("forwarder %s: want the content-addressed name %s", cmd[0], want)
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
