package ovs

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procHandle signals one process through a pidfd: the signal reaches the
// process that was opened even if its PID is reused after it ends (ESRCH
// then), never a process group, never another process.
type procHandle struct {
	pid int
	fd  int
}

// openProc opens a pidfd on pid, refusing pid ≤ 1 (0 would signal the test's
// own process group — the test binary, go test, make — and 1 is init).
func openProc(pid int) (*procHandle, error) {
	if pid <= 1 {
		return nil, fmt.Errorf("pid %d: refusing to signal it (no process, our own group or init)", pid)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open(%d): %w", pid, err)
	}
	return &procHandle{pid: pid, fd: fd}, nil
}

func (p *procHandle) signal(sig syscall.Signal) error {
	if err := unix.PidfdSendSignal(p.fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %v to %d: %w", sig, p.pid, err)
	}
	return nil
}

func (p *procHandle) close() { _ = unix.Close(p.fd) }

// procState is the state letter of /proc/<pid>/stat ("T": stopped).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// openProc refuses the PIDs that would stop the test's own process group
// or init, and signals exactly the process it opened.
func TestOpenProcRefusesGroupAndInit(t *testing.T) {
	for _, pid := range []int{-1, 0, 1} {
		if p, err := openProc(pid); err == nil {
			p.close()
			t.Errorf("openProc(%d) succeeded: a SIGSTOP would stop the process group or init", pid)
		}
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	p, err := openProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); procState(cmd.Process.Pid) != "T"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("sleep not stopped after SIGSTOP: state %q", procState(cmd.Process.Pid))
		}
	}
	if err := p.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// reaped: the pidfd no longer reaches anything, whatever now has the PID
	if err := p.signal(syscall.SIGCONT); err == nil {
		t.Error("signal through the pidfd of a reaped process succeeded")
	}
}
