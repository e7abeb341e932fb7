package sipchaos

// SIPp processes of the chaos test: one per traffic kind and P-CSCF, each
// with its own statistics and per-call response times.

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
func scenarios(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := kamfiles.WriteSIPpScenarios(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sippProc is one running SIPp.
type sippProc struct {
	name string
	dir  string
	cmd  *exec.Cmd
	done chan error
	// started is when SIPp was started: its response-time file counts
	// milliseconds from its own start.
	started time.Time
}

// startSIPp runs sipp with args in a fresh dir (statistics and response
// times of every call written there).
func startSIPp(t *testing.T, name string, args ...string) *sippProc {
	t.Helper()
	dir := t.TempDir()
	args = append(args, "-nostdin", "-buff_size", "4194304", "-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", "1",
		"-trace_err", "-trace_rtt", "-rtt_freq", "1")
	cmd := exec.Command("sipp", args...)
	cmd.Dir = dir
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sippProc{name: name, dir: dir, cmd: cmd, done: make(chan error, 1), started: time.Now()}
	go func() { p.done <- cmd.Wait(); out.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// sippResult sums one SIPp caller run.
type sippResult struct {
	Name                string
	Created, OK, Failed int
	Retrans             int
	// Calls are the successful calls' first response-time measures (rtd 1):
	// when the call started and how long the measured exchange took.
	Calls  []callTiming
	Errors string
}

type callTiming struct {
	Start time.Time
	Took  time.Duration
}

// wait waits (bounded by ctx) for the caller to finish and reads its results.
func (p *sippProc) wait(ctx context.Context) (sippResult, error) {
	res := sippResult{Name: p.name}
	select {
	case <-p.done: // SIPp exits 1 when some call failed: the counts tell
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.done <- nil // for the cleanup
	stat, err := os.ReadFile(filepath.Join(p.dir, "stat.csv"))
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(p.dir, "out.log"))
		return res, fmt.Errorf("%s: no statistics: %v\n%s", p.name, err, b)
	}
	r := csv.NewReader(strings.NewReader(string(stat)))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return res, fmt.Errorf("%s: statistics: %v (%d rows)", p.name, err, len(rows))
	}
	col := func(name string) int {
		i := slices.Index(rows[0], name)
		if i < 0 {
			return 0
		}
		v, _ := strconv.Atoi(rows[len(rows)-1][i])
		return v
	}
	res.Created, res.OK, res.Failed, res.Retrans = col("TotalCallCreated"), col("SuccessfulCall(C)"), col("FailedCall(C)"), col("Retransmissions(C)")
	rtts, _ := filepath.Glob(filepath.Join(p.dir, "*_rtt.csv"))
	for _, f := range rtts {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// date_ms (when the measure ended, ms since SIPp started);response_time_ms;rtd_no
			f := strings.Split(strings.TrimSpace(sc.Text()), ";")
			if len(f) < 3 || f[2] != "1" {
				continue
			}
			end, err1 := strconv.ParseFloat(f[0], 64)
			took, err2 := strconv.ParseFloat(f[1], 64)
			if err1 != nil || err2 != nil {
				continue
			}
			endT := p.started.Add(time.Duration(end * float64(time.Millisecond)))
			d := time.Duration(took * float64(time.Millisecond))
			res.Calls = append(res.Calls, callTiming{Start: endT.Add(-d), Took: d})
		}
		fh.Close()
	}
	slices.SortFunc(res.Calls, func(a, b callTiming) int { return a.Start.Compare(b.Start) })
	if res.Failed > 0 {
		errs, _ := filepath.Glob(filepath.Join(p.dir, "*_errors.log"))
		for _, f := range errs {
			b, _ := os.ReadFile(f)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			res.Errors += string(b)
		}
	}
	return res, nil
}
