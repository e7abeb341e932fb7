package dpfwd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkForwarderCPU measures the forwarder's own CPU per frame — what
// the DP scaler reads as the instance's load — for real ims-dpfwd
// processes in a namespace of the benchmark's (veth in–inp, out–outp):
//   - pingpong: one frame in flight at a time (each finds the reader idle);
//   - paced: a frame every 200 µs (5000 frames/s, about 100 calls' RTP).
//
// The CPU is the run time of the process's threads from
// /proc/PID/task/*/schedstat (nanoseconds; -benchtime 20000x or more
// averages out the machine's noise). IMS_DPFWD_BINS lists the binaries to
// compare, name=path,... in the order run (rotate it between runs: the
// machine is shared); unset, the tree's cmd/ims-dpfwd is built. Every frame
// must arrive; there is no timing assertion. docs/dataplane.md has the
// numbers and the command.
func BenchmarkForwarderCPU(b *testing.B) {
	n := newFwdNet(b)
	tx := n.socket(b, "inp", 0)
	rx := n.socket(b, "outp", testEtherType)
	_ = unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	for _, bin := range forwarderBins(b) {
		name, path, _ := strings.Cut(bin, "=")
		b.Run(name+"/pingpong", func(b *testing.B) {
			pid := startForwarder(b, n.ns, path)
			c0 := procCPU(b, pid)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := send(tx, n.idx["inp"], "p"); err != nil {
					b.Fatal(err)
				}
				if _, err := recv(rx, "pong"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(procCPU(b, pid)-c0)/float64(time.Microsecond)/float64(b.N), "fwd-µs/frame")
		})
		b.Run(name+"/paced", func(b *testing.B) {
			pid := startForwarder(b, n.ns, path)
			got := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := recv(rx, "paced"); err != nil {
						got <- fmt.Errorf("frame %d of %d: %w", i+1, b.N, err)
						return
					}
				}
				got <- nil
			}()
			c0 := procCPU(b, pid)
			t0 := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for next := t0.Add(time.Duration(i) * 200 * time.Microsecond); time.Now().Before(next); {
				}
				if err := send(tx, n.idx["inp"], "q"); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-got; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := procCPU(b, pid) - c0
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "fwd-µs/frame")
			b.ReportMetric(100*float64(cpu)/float64(time.Since(t0)), "fwd-%core")
		})
	}
}

// forwarderBins is IMS_DPFWD_BINS's name=path list, or the tree's
// cmd/ims-dpfwd built into a temporary directory.
func forwarderBins(b *testing.B) []string {
	if v := os.Getenv("IMS_DPFWD_BINS"); v != "" {
		return strings.Split(v, ",")
	}
	path := filepath.Join(b.TempDir(), "ims-dpfwd")
	if out, err := exec.Command("go", "build", "-o", path, "../../../cmd/ims-dpfwd").CombinedOutput(); err != nil {
		b.Fatalf("build ims-dpfwd: %v\n%s", err, out)
	}
	return []string{"tree=" + path}
}

// startForwarder runs path (ims-dpfwd -in in -out out) in namespace ns
// (ip netns exec execs it: the pid is the forwarder's), waits for its ready
// line and kills it when b ends.
func startForwarder(b *testing.B, ns, path string) int {
	b.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, path, "-in", "in", "-out", "out")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", path, err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != ReadyLine {
		b.Fatalf("%s: first line %q (%v), want %q", path, line, err, ReadyLine)
	}
	return cmd.Process.Pid
}

// procCPU is the CPU time process pid's threads have run: the sum of
// their /proc/PID/task/TID/schedstat run times (nanoseconds; utime+stime
// of /proc/PID/stat count 10 ms ticks, too coarse for a few seconds of
// frames). A thread that exited is no longer counted: the forwarder's Go
// runtime keeps its threads.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	for _, t := range tasks {
		s, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited since the listing
		}
		if err != nil {
			b.Fatal(err)
		}
		var ns int64
		if _, err := fmt.Sscan(string(s), &ns); err != nil {
			b.Fatalf("%d/task/%s/schedstat %q: %v", pid, t.Name(), s, err)
		}
		sum += ns
	}
	return time.Duration(sum)
}
