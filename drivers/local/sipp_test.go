package local_test

// SIPp harness for the integration test and the benchmark: the project's
// scenarios from deploy/kamailio/sipp, callers and callees on 127.0.0.x.

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
)

// scenarios copies the embedded SIPp scenarios into a temp dir.
func scenarios(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := kamfiles.WriteSIPpScenarios(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startUAS runs a SIPp callee on addr:port until the test ends.
func startUAS(t testing.TB, scen, addr string, port int) {
	t.Helper()
	stop, _ := startUASProc(t, scen, addr, port)
	t.Cleanup(stop)
}

// startUASProc runs a SIPp callee on addr:port until the returned stop is called.
func startUASProc(t testing.TB, scen, addr string, port int) (stop func(), pid int) {
	t.Helper()
	cmd := exec.Command("sipp", "-sf", filepath.Join(scen, "uas.xml"), "-i", addr, "-ci", addr, "-p", strconv.Itoa(port),
		"-buff_size", "4194304", "-nostdin")
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, cmd.Process.Pid
}

// register registers AOR aor with contact at registrar via (ip:port), from local addr.
func register(t testing.TB, scen, via, local, aor, contact string) {
	t.Helper()
	dir := t.TempDir()
	inf := filepath.Join(dir, "reg.csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+aor+";"+contact+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", via, "-sf", filepath.Join(scen, "reg.xml"), "-inf", inf,
		"-i", local, "-ci", local, "-p", "5090", "-m", "1", "-nostdin", "-timeout", "8")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("register %s at %s: %v\n%s", aor, via, err, tail(out))
	}
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// callResult sums a SIPp caller run.
type callResult struct {
	Calls, OK, Failed, Retrans int
	SetupMS                    []float64 // INVITE → 200 per call (response time 1), sorted
	Wall                       time.Duration
	Errors                     string // the end of SIPp's error log when calls failed
}

func (r callResult) successRatio() float64 {
	if r.Calls == 0 {
		return 0
	}
	return float64(r.OK) / float64(r.Calls)
}

func (r callResult) pct(p float64) float64 {
	if len(r.SetupMS) == 0 {
		return 0
	}
	i := int(float64(len(r.SetupMS)) * p)
	if i >= len(r.SetupMS) {
		i = len(r.SetupMS) - 1
	}
	return r.SetupMS[i]
}

func (r callResult) String() string {
	return fmt.Sprintf("%d calls: %d ok, %d failed, %d retransmissions, setup p50 %.2f ms p99 %.2f ms",
		r.Calls, r.OK, r.Failed, r.Retrans, r.pct(0.5), r.pct(0.99))
}

// runUAC places n calls at rate calls/s to AOR "callee" through via, holding
// each for hold, from local:port; extra SIPp arguments (e.g. "-t", "t1" for
// TCP) are appended. The caller's user is "caller" unless extra holds
// "-key", "caller", NAME.
func runUAC(ctx context.Context, scen, via, local string, port, rate, n int, hold time.Duration, extra ...string) (callResult, error) {
	dir, err := os.MkdirTemp("", "uac")
	if err != nil {
		return callResult{}, err
	}
	defer os.RemoveAll(dir)
	secs := n/max(rate, 1) + 1
	cmd := exec.CommandContext(ctx, "sipp", via, "-sf", filepath.Join(scen, "uac.xml"), "-s", "callee",
		"-i", local, "-ci", local, "-p", strconv.Itoa(port), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(n),
		"-d", strconv.Itoa(int(hold/time.Millisecond)), "-buff_size", "4194304", "-nostdin",
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", "1",
		"-trace_rtt", "-rtt_freq", "10", "-trace_err", "-timeout", strconv.Itoa(secs+20), "-recv_timeout", "8000")
	cmd.Args = append(cmd.Args, extra...)
	if !slices.Contains(extra, "caller") {
		cmd.Args = append(cmd.Args, "-key", "caller", "caller")
	}
	cmd.Dir = dir
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	res := callResult{Wall: time.Since(start)}
	// SIPp exits 1 when some call failed: the counts tell how many
	stat, err := os.ReadFile(filepath.Join(dir, "stat.csv"))
	if err != nil {
		return res, fmt.Errorf("sipp uac: %v (no stats: %v)\n%s", runErr, err, tail(out))
	}
	r := csv.NewReader(strings.NewReader(string(stat)))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return res, fmt.Errorf("sipp uac stats: %v (%d rows)", err, len(rows))
	}
	col := func(name string) int {
		i := slices.Index(rows[0], name)
		if i < 0 {
			return 0
		}
		v, _ := strconv.Atoi(rows[len(rows)-1][i])
		return v
	}
	res.Calls, res.OK, res.Failed, res.Retrans = col("TotalCallCreated"), col("SuccessfulCall(C)"), col("FailedCall(C)"), col("Retransmissions(C)")
	rtts, _ := filepath.Glob(filepath.Join(dir, "uac_*_rtt.csv"))
	for _, f := range rtts {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			p := strings.Split(strings.TrimSpace(sc.Text()), ";")
			if len(p) < 3 || p[2] != "1" {
				continue
			}
			if v, err := strconv.ParseFloat(p[1], 64); err == nil {
				res.SetupMS = append(res.SetupMS, v)
			}
		}
		fh.Close()
	}
	slices.Sort(res.SetupMS)
	if res.Failed > 0 {
		errs, _ := filepath.Glob(filepath.Join(dir, "uac_*_errors.log"))
		for _, f := range errs {
			b, _ := os.ReadFile(f)
			res.Errors += tail(b)
		}
	}
	if res.Calls == 0 {
		return res, fmt.Errorf("sipp uac placed no call: %v\n%s", runErr, tail(out))
	}
	return res, nil
}
