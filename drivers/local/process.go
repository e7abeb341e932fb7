package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Command is one process to start.
type Command struct {
	Path string
	Args []string // without Path
	Dir  string
	// LogFile receives the process's stdout and stderr.
	LogFile string
}

// Process is a started instance process. The driver only waits for it and
// signals it; tests substitute a fake.
type Process interface {
	Pid() int
	// Wait blocks until the process exits and returns how it ended.
	Wait() error
	// Signal signals the process; with group it signals its whole process
	// group (Kamailio's forked workers too).
	Signal(sig syscall.Signal, group bool) error
}

// Starter starts processes.
type Starter interface {
	Start(cmd Command) (Process, error)
}

// ExecStarter starts real processes, each in its own process group so that
// a SIGKILL reaches Kamailio's children as well as its main process.
type ExecStarter struct{}

// Start implements Starter.
func (ExecStarter) Start(c Command) (Process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child holds its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &execProcess{cmd: cmd}, nil
}

type execProcess struct{ cmd *exec.Cmd }

func (p *execProcess) Pid() int    { return p.cmd.Process.Pid }
func (p *execProcess) Wait() error { return p.cmd.Wait() }

func (p *execProcess) Signal(sig syscall.Signal, group bool) error {
	pid := p.cmd.Process.Pid
	if group {
		pid = -pid
	}
	err := syscall.Kill(pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // already gone
	}
	if err != nil {
		return fmt.Errorf("signal %v to %d: %w", sig, pid, err)
	}
	return nil
}

// GroupGone reports whether no process of the instance's process group is
// left (its workers included).
func (p *execProcess) GroupGone() bool {
	return errors.Is(syscall.Kill(-p.cmd.Process.Pid, 0), syscall.ESRCH)
}

// Available reports whether the real SIP parts are installed: kamailio and
// sipp on PATH (scripts/ci-kamailio.sh installs them). The embedded default
// uses the simulator when it returns an error.
func Available() error {
	var missing []error
	for _, bin := range []string{"kamailio", "sipp"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, fmt.Errorf("%s not found on PATH (run scripts/ci-kamailio.sh)", bin))
		}
	}
	return errors.Join(missing...)
}

// DNSAvailable reports whether P-CSCFs can resolve the S-CSCF pool through
// the DC's discovery server: Kamailio reads the nameserver from
// /etc/resolv.conf only, so each P-CSCF runs in a private mount namespace
// (unshare) with its own resolv.conf bind-mounted there, and the discovery
// server must listen on port 53. Both need root.
func DNSAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("P-CSCF DNS discovery needs root (mount namespace and port 53)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return errors.New("unshare (util-linux) not found on PATH")
	}
	return nil
}
