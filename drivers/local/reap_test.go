package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A Kamailio left running by a killed daemon (its pid file in a run dir of
// BaseDir, its command line that run dir's config) is stopped when a new
// driver starts; an unrelated process behind another pid file is not.
func TestReapStaleKamailio(t *testing.T) {
	base := t.TempDir()
	bin := t.TempDir()
	fake := filepath.Join(bin, "kamailio")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nsleep 60 & wait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(run string, argv ...string) *exec.Cmd {
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		c := exec.Command(argv[0], argv[1:]...)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL); _ = c.Wait() })
		if err := os.WriteFile(filepath.Join(run, "kamailio.pid"), []byte(strconv.Itoa(c.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ours := filepath.Join(base, "dc0-pcscf-1")
	kam := start(ours, fake, "-DD", "-f", filepath.Join(ours, "kamailio.cfg"))
	other := filepath.Join(base, "not-ours")
	stranger := start(other, "sleep", "60")
	exited := make(chan error, 1)
	go func() { exited <- kam.Wait() }()

	stopped := reapStale(base, 2*time.Second)
	if len(stopped) != 1 || stopped[0] != kam.Process.Pid {
		t.Fatalf("stopped %v, want only %d", stopped, kam.Process.Pid)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the stale Kamailio is still running")
	}
	if _, err := os.Stat(filepath.Join(ours, "kamailio.pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
	if err := syscall.Kill(stranger.Process.Pid, 0); err != nil {
		t.Fatalf("an unrelated process was signalled: %v", err)
	}
}
