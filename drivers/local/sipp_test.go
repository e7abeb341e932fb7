package local_test

// SIPp harness for the integration test and the benchmark: the project's
// scenarios from deploy/kamailio/sipp, callers and callees on 127.0.0.x
// (sipptest runs them).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
)

// scenarios copies the embedded SIPp scenarios into a temp dir.
func scenarios(t testing.TB) string { return sipptest.Scenarios(t) }

// startUAS runs a SIPp callee on addr:port until the test ends.
func startUAS(t testing.TB, scen, addr string, port int) {
	t.Helper()
	stop, _ := startUASProc(t, scen, addr, port)
	t.Cleanup(stop)
}

// startUASProc runs a SIPp callee on addr:port until the returned stop is called.
func startUASProc(t testing.TB, scen, addr string, port int) (stop func(), pid int) {
	t.Helper()
	p, err := sipptest.Start(t.TempDir(), sipptest.Options{}, "-sf", filepath.Join(scen, "uas.xml"), "-i", addr, "-ci", addr, "-p", strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	return p.Kill, p.Pid()
}

// register registers AOR aor with contact at registrar via (ip:port), from local addr.
func register(t testing.TB, scen, via, local, aor, contact string) {
	t.Helper()
	if err := sipptest.Register(context.Background(), scen, t.TempDir(), via, aor, contact, local, 5090, 8*time.Second); err != nil {
		t.Fatal(err)
	}
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
// "-key", "caller", NAME; with "-l", N (at most N calls open at once) the
// rate follows what the proxies carry, so SIPp's own run timeout is 10
// times the nominal run. ctx bounds the run: SIPp is killed when it ends.
func runUAC(ctx context.Context, scen, via, local string, port, rate, n int, hold time.Duration, extra ...string) (callResult, error) {
	dir, err := os.MkdirTemp("", "uac")
	if err != nil {
		return callResult{}, err
	}
	defer os.RemoveAll(dir)
	secs := n/max(rate, 1) + 1
	if slices.Contains(extra, "-l") {
		secs *= 10
	}
	args := []string{via, "-sf", filepath.Join(scen, "uac.xml"), "-s", "callee",
		"-i", local, "-ci", local, "-p", strconv.Itoa(port), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(n),
		"-d", strconv.Itoa(int(hold / time.Millisecond)), "-timeout", strconv.Itoa(secs + 20), "-recv_timeout", "8000"}
	args = append(args, extra...)
	if !slices.Contains(extra, "caller") {
		args = append(args, "-key", "caller", "caller")
	}
	start := time.Now()
	p, err := sipptest.Start(dir, sipptest.Options{Stats: true, RTTFreq: 10}, args...)
	if err != nil {
		return callResult{}, err
	}
	runErr := p.Wait(ctx)
	res := callResult{Wall: time.Since(start)}
	// SIPp exits 1 when some call failed: the counts tell how many
	st, err := p.Stats()
	if err != nil {
		return res, fmt.Errorf("sipp uac: %v (%v)\n%s", runErr, err, p.Output(2000))
	}
	res.Calls, res.OK, res.Failed, res.Retrans = st.Created, st.OK, st.Failed, st.Retrans
	rtts, _ := p.ResponseTimes(1)
	for _, m := range rtts {
		res.SetupMS = append(res.SetupMS, float64(m.Took)/float64(time.Millisecond))
	}
	slices.Sort(res.SetupMS)
	if res.Failed > 0 {
		res.Errors = p.Errors(2000)
	}
	if res.Calls == 0 {
		return res, fmt.Errorf("sipp uac placed no call: %v\n%s", runErr, p.Output(2000))
	}
	return res, nil
}
