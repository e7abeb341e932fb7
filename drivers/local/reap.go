package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reapStale stops Kamailio processes a previous run of the driver left
// behind in baseDir (the daemon was killed before it could terminate them):
// they hold the loopback addresses the new instances need. A process is
// stopped only when its pid file is in a run dir of baseDir and its command
// line is Kamailio running that run dir's config, so nothing else is ever
// signalled. It returns the pids stopped.
func reapStale(baseDir string, grace time.Duration) []int {
	files, _ := filepath.Glob(filepath.Join(baseDir, "*", "kamailio.pid"))
	type victim struct{ pid, target int }
	var vs []victim
	for _, pf := range files {
		b, err := os.ReadFile(pf)
		_ = os.Remove(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 || !isOurKamailio(pid, filepath.Join(filepath.Dir(pf), "kamailio.cfg")) {
			continue
		}
		target := pid
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			target = -pid // its workers too
		}
		vs = append(vs, victim{pid, target})
	}
	// all at once: each Kamailio takes 1-2 s to stop
	for _, v := range vs {
		_ = syscall.Kill(v.target, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		left := false
		for _, v := range vs {
			left = left || alive(v.pid)
		}
		if !left {
			break
		}
		time.Sleep(20 * time.Millisecond) // foreign processes' exits: nothing to wait on but polling
	}
	stopped := make([]int, 0, len(vs))
	for _, v := range vs {
		if alive(v.pid) {
			_ = syscall.Kill(v.target, syscall.SIGKILL)
		}
		stopped = append(stopped, v.pid)
	}
	return stopped
}

// isOurKamailio reports whether pid runs "kamailio ... cfg ...".
func isOurKamailio(pid int, cfg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	kam, hasCfg := false, false
	for _, a := range args {
		s := string(a)
		if filepath.Base(s) == "kamailio" {
			kam = true
		}
		if s == cfg {
			hasCfg = true
		}
	}
	return kam && hasCfg
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
