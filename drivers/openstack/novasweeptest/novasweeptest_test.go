package novasweeptest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A run id names this host and process; processGone tells a run of this
// host whose process ended from a live one, and says nothing of another
// host's.
func TestRunNamesHostAndProcess(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	run := Run()
	if !strings.HasPrefix(run, fmt.Sprintf("%s-%d-", host, os.Getpid())) || Run() != run {
		t.Fatalf("Run() = %q, want %s-%d-<start>, the same each call", run, host, os.Getpid())
	}
	if processGone(run) {
		t.Fatalf("processGone(%q) of this process: true", run)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	ended := fmt.Sprintf("%s-%d-1", host, cmd.Process.Pid)
	if !processGone(ended) {
		t.Fatalf("processGone(%q) of an ended process: false", ended)
	}
	for _, r := range []string{fmt.Sprintf("another-%s-%d-1", host, cmd.Process.Pid), "an-earlier-run", "x", ""} {
		if processGone(r) {
			t.Errorf("processGone(%q): true, want false (not this host's, or not a run id)", r)
		}
	}
}
