package sipchaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api/client"
)

// The daemon under test: `ims-orch serve --driver local` as a user runs it.
const (
	serveAPI = "127.0.0.94:8415" // the harness's loopback range (127.0.0.x), under the SIP lock
	// kamailioDir is fixed: the local driver reaps what a killed earlier
	// run left there (stale Kamailios on the plan's addresses)
	kamailioDir = "ims-orch-chaos-serve"
)

// vnfName maps the test's short names to the daemon's VNF names.
var vnfName = map[string]string{"pcscf": "P-CSCF", "scscf": "S-CSCF"}

// serveConfig: one DC (index 0 by its position: 127.10.x.x, DNS
// 127.10.0.53), N+1 P-CSCFs and S-CSCFs that never overload (this test is
// about failures), one simulated-or-OVS firewall stage. Its faults are
// independent, yet a victim may be a young replacement (of an earlier
// victim, or of an instance failed for silence on a loaded host before the
// faults: seen at load 25, a 10.8 s recovery): the crash-loop backoff
// (tested in controller/local and controller/daemon) is off, else it would
// hold that replacement back 10 s as the second quick failure of its slot.
const serveConfig = `node: {id: chaos}
api: {listen: "` + serveAPI + `", allowUnauthenticated: true}
role: {global: true}
driver: {kind: local, kamailioDir: "KAMDIR"}
topology:
  datacenters: [{name: dc0, group: a}]
  delaysMs: [[0]]
  scscfDC: dc0
  pcscf: {name: P-CSCF, capacity: 1000, min: 2, max: 2, thresholds: {cpu: 99, mem: 99, pktRate: 1000000}}
  scscf: {name: S-CSCF, capacity: 1000, min: 2, max: 2, thresholds: {cpu: 99, mem: 99, pktRate: 1000000}}
  chain:
    - {name: firewall, capacity: 35000, min: 1}
policy: {intervalSeconds: 10, tau: 3, delayBoundMs: 100, predictor: ar1, strategy: hybrid, crashLoopBackoff: {initial: off}}
`

type served struct {
	log    string
	dir    string
	client *client.Client
}

// startServe builds ims-orch, starts `serve --driver local` on serveConfig
// and waits until its API answers; the cleanup stops it by its PID
// (SIGTERM: the daemon terminates its Kamailio processes) and waits.
func startServe(t *testing.T, ctx context.Context) *served {
	t.Helper()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "ims-orch")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ims-orch/ims-orch/cmd/ims-orch")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ims-orch: %v\n%s", err, out)
	}
	kam := filepath.Join(os.TempDir(), kamailioDir)
	cfg := filepath.Join(tmp, "serve.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(serveConfig, "KAMDIR", kam)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &served{log: filepath.Join(tmp, "serve.log"), dir: kam}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg, "--driver", "local")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			t.Errorf("ims-orch serve did not stop within 40 s of SIGTERM; killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	if s.client, err = client.New("http://"+serveAPI, client.WithTimeout(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := s.client.State(ctx); err == nil {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(s.log)
			t.Fatalf("ims-orch serve exited: %v\n%s", exitErr, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("ims-orch serve: API not up within 60 s\n%s", b)
		}
		time.Sleep(100 * time.Millisecond) // a real process is starting
	}
	return s
}

// pid is the PID of an instance's Kamailio (its pid file in the run dir
// the daemon's local driver made); Kamailio leads its process group.
func (s *served) pid(t *testing.T, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, id, "kamailio.pid"))
	if err != nil {
		t.Fatalf("pid file of %s: %v", id, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 1 {
		t.Fatalf("pid file of %s: %q", id, b)
	}
	return n
}
