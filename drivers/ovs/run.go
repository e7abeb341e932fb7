package ovs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tools are the binaries this package runs.
var Tools = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "ethtool"}

// Available reports whether every binary of Tools is on PATH (or in /usr/sbin).
func Available() error {
	var missing []string
	for _, t := range Tools {
		if _, err := lookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("open vswitch: %s not installed (scripts/ci-ovs.sh installs them)", strings.Join(missing, ", "))
	}
	return nil
}

// Usable reports why the real data plane cannot run in this process:
// Available's error, or not root (network namespaces, veths); nil when it can.
func Usable() error {
	if err := Available(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veths)")
	}
	return nil
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", name)
}

// run executes name with args, stdin (may be nil) and the OVS environment
// of dir; it returns stdout, or an error carrying stderr.
func run(ctx context.Context, dir string, stdin io.Reader, name string, args ...string) (string, error) {
	cmd, err := command(ctx, dir, name, args...)
	if err != nil {
		return "", err
	}
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// command is name with args and the OVS environment of dir ("" = the
// process's), not started.
func command(ctx context.Context, dir, name string, args ...string) (*exec.Cmd, error) {
	p, err := lookPath(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	if dir != "" {
		cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_LOGDIR="+dir, "OVS_DBDIR="+dir)
	}
	return cmd, nil
}

// IP runs `ip args...`.
func IP(ctx context.Context, args ...string) (string, error) { return run(ctx, "", nil, "ip", args...) }

// InNetns runs a command inside network namespace ns (ip netns exec).
func InNetns(ctx context.Context, ns string, name string, args ...string) (string, error) {
	p, err := lookPath(name)
	if err != nil {
		return "", err
	}
	return IP(ctx, append([]string{"netns", "exec", ns, p}, args...)...)
}

// Netns lists the network namespaces whose name starts with prefix.
func Netns(ctx context.Context, prefix string) ([]string, error) {
	out, err := IP(ctx, "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// DeleteNetns deletes the network namespaces whose name starts with prefix
// (their veth ends go with them) and returns how many it deleted.
func DeleteNetns(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, errors.New("netns prefix: empty prefix would match every namespace")
	}
	names, err := Netns(ctx, prefix)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, n := range names {
		if err := KillNetnsPids(ctx, n); err != nil {
			errs = append(errs, err)
		}
		if _, err := IP(ctx, "netns", "del", n); err != nil {
			errs = append(errs, err)
		}
	}
	return len(names), errors.Join(errs...)
}

// KillNetnsPids SIGKILLs every process inside network namespace ns (a DP
// instance's forwarder; a namespace with a process in it outlives its name
// and keeps its interfaces).
func KillNetnsPids(ctx context.Context, ns string) error {
	out, err := IP(ctx, "netns", "pids", ns)
	if err != nil {
		if strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "Invalid argument") {
			return nil
		}
		return err
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

// pidFromFile reads a pid file and returns the pid when that process is alive
// and its command line mentions dir (so a recycled pid is never signalled).
func pidFromFile(file, dir string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
		return 0
	}
	return pid
}

// stopPid sends SIGTERM, waits up to wait for the process to go, then SIGKILL.
func stopPid(pid int, wait time.Duration) {
	if pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs: it exists and is not a zombie (a detached
// daemon's parent may be a PID 1 that does not reap).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// InNetnsStdin runs a command inside network namespace ns with stdin.
func InNetnsStdin(ctx context.Context, ns string, stdin io.Reader, name string, args ...string) (string, error) {
	p, err := lookPath(name)
	if err != nil {
		return "", err
	}
	return run(ctx, "", stdin, "ip", append([]string{"netns", "exec", ns, p}, args...)...)
}
