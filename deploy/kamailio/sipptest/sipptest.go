// Package sipptest runs SIPp for the real-SIP tests (drivers/local,
// e2e/sip, e2e/sipchaos): the project's scenarios (deploy/kamailio/sipp)
// written to a directory, a SIPp process started in a directory of its own
// with its output, statistics, response times and errors written there,
// stopped by its PID (never by name), and the reading of those files.
// One-shot registrations (reg.xml) are bounded by their context. The
// real-SIP machine lock that every run on the fixed loopback addresses
// holds is drivers/machinelocktest.SIP.
//
// It is a test helper: nothing outside tests imports it.
package sipptest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
)

// BufSize is the UDP socket buffer every SIPp gets (-buff_size): SIPp's
// default drops datagrams at the call rates of the tests.
const BufSize = "4194304"

// Scenarios writes the embedded SIPp scenarios into a new temp dir of t and
// returns it.
func Scenarios(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := kamfiles.WriteSIPpScenarios(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Options are what a SIPp run records besides its output.
type Options struct {
	// Stats: per-second statistics (-trace_stat, read by Stats) and the
	// error log (-trace_err, read by Errors).
	Stats bool
	// StatPeriod is the statistics file's period (-fd; 1 s when zero, at
	// least 1 ms).
	StatPeriod time.Duration
	// RTTFreq > 0: response times, one line per RTTFreq calls
	// (-trace_rtt -rtt_freq, read by ResponseTimes).
	RTTFreq int
}

// Proc is one running SIPp.
type Proc struct {
	// Dir is SIPp's working directory: out.log (stdout and stderr),
	// stat.csv and its *_errors.log and *_rtt.csv files are written there.
	Dir string
	// Started is when the process was started: SIPp's response-time file
	// counts milliseconds from its own start.
	Started time.Time

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's result, set before exited is closed
	kill   sync.Once
}

// Start runs sipp with args (scenario, target, addresses, rates) in dir,
// adding -nostdin and -buff_size, and the tracing flags of opt.
func Start(dir string, opt Options, args ...string) (*Proc, error) {
	args = append(slices.Clone(args), "-nostdin", "-buff_size", BufSize)
	if opt.Stats {
		fd := "1"
		if opt.StatPeriod > 0 {
			fd = strconv.FormatInt(max(opt.StatPeriod.Milliseconds(), 1), 10) + "ms"
		}
		args = append(args, "-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", fd, "-trace_err")
	}
	if opt.RTTFreq > 0 {
		args = append(args, "-trace_rtt", "-rtt_freq", strconv.Itoa(opt.RTTFreq))
	}
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("sipp", args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start sipp: %w", err)
	}
	p := &Proc{Dir: dir, Started: time.Now(), cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the SIPp process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit; if ctx ends first it is killed. The
// error is the process's exit status (SIPp exits 1 when a call failed:
// Stats tells how many) or ctx's error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.err
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
}

// Kill sends SIGKILL to the process by its PID, once, and waits until it
// has been reaped; after the process has exited it does nothing (no other
// process that got its PID is ever signalled).
func (p *Proc) Kill() {
	p.kill.Do(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill() // os.ErrProcessDone once Wait has reaped it
		}
	})
	<-p.exited
}

// Output returns the end (at most max bytes) of SIPp's stdout and stderr.
func (p *Proc) Output(max int) string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "out.log"))
	return tail(b, max)
}

// Stats reads the statistics file of a run started with Options.Stats.
func (p *Proc) Stats() (Stats, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir, "stat.csv"))
	if err != nil {
		return Stats{}, fmt.Errorf("sipp statistics: %w", err)
	}
	return ParseStats(b)
}

// Errors returns the end (at most max bytes per file) of SIPp's error log.
func (p *Proc) Errors(max int) string {
	files, _ := filepath.Glob(filepath.Join(p.Dir, "*_errors.log"))
	var s strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		s.WriteString(tail(b, max))
	}
	return s.String()
}

// ResponseTimes reads the response-time file of a run started with
// Options.RTTFreq: the measures of response-time rtd (the scenario's
// rtd="N"), in the file's order.
func (p *Proc) ResponseTimes(rtd int) ([]RTT, error) {
	files, _ := filepath.Glob(filepath.Join(p.Dir, "*_rtt.csv"))
	if len(files) == 0 {
		return nil, errors.New("sipp response times: no *_rtt.csv file")
	}
	var out []RTT
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return out, err
		}
		out = append(out, ParseRTTs(b, rtd)...)
	}
	return out, nil
}

// RTT is one response-time measure.
type RTT struct {
	// End is when the measure ended, from SIPp's start (Proc.Started).
	End time.Duration
	// Took is the measured time (e.g. INVITE → 200 for rtd 1 of uac.xml).
	Took time.Duration
}

// ParseRTTs parses a SIPp response-time file (lines
// "date_ms;response_time_ms;rtd_no") and returns the measures of rtd; the
// header and malformed lines are skipped.
func ParseRTTs(b []byte, rtd int) []RTT {
	var out []RTT
	want := strconv.Itoa(rtd)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ";")
		if len(f) < 3 || f[2] != want {
			continue
		}
		end, err1 := strconv.ParseFloat(f[0], 64)
		took, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || !(end >= 0 && end <= 1e12) || !(took >= 0 && took <= 1e12) {
			continue
		}
		out = append(out, RTT{End: time.Duration(end * float64(time.Millisecond)), Took: time.Duration(took * float64(time.Millisecond))})
	}
	return out
}

// Stats is a SIPp caller's statistics file.
type Stats struct {
	// Start is when SIPp started (its StartTime column).
	Start time.Time
	// Rows are the periods (-fd 1: seconds, -fd 200ms: 200 ms), in order.
	Rows []Row
	// Cumulative counts at the last row.
	Created, OK, Failed, Retrans int
}

// Row is one period of a SIPp statistics file.
type Row struct {
	// At is when the period closed (SIPp's CurrentTime).
	At time.Time
	// Calls created, completed and failed in the period.
	Created, OK, Failed int
}

// CompletedRate is the rate at which SIPp completed calls, in calls/s, by
// its own clock and count: the calls completed (OK) over the time from its
// start to the end of the last period in which a call completed. Its error
// is at most one period (-fd) over that span. 0 when no call completed.
func (s Stats) CompletedRate() float64 {
	for i := len(s.Rows) - 1; i >= 0; i-- {
		if s.Rows[i].OK > 0 {
			if span := s.Rows[i].At.Sub(s.Start).Seconds(); span > 0 {
				return float64(s.OK) / span
			}
			return 0
		}
	}
	return 0
}

// statColumns are the columns ParseStats reads.
var statColumns = []string{"StartTime", "CurrentTime", "OutgoingCall(P)", "SuccessfulCall(P)", "FailedCall(P)",
	"TotalCallCreated", "SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)"}

// ParseStats parses a SIPp statistics file (-trace_stat: ';'-separated,
// a header row, one row per period). A row cut short (SIPp was writing it)
// is skipped; a missing column or no row is an error naming it.
func ParseStats(b []byte) (Stats, error) {
	var out Stats
	r := csv.NewReader(strings.NewReader(string(b)))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	rows, err := r.ReadAll()
	if err != nil {
		return out, fmt.Errorf("sipp statistics: %w", err)
	}
	if len(rows) < 2 {
		return out, fmt.Errorf("sipp statistics: %d rows, want a header and at least one period", len(rows))
	}
	idx := make([]int, len(statColumns))
	for k, name := range statColumns {
		if idx[k] = slices.Index(rows[0], name); idx[k] < 0 {
			return out, fmt.Errorf("sipp statistics: column %s missing", name)
		}
	}
	last := slices.Max(idx)
	atoi := func(s string) int { v, _ := strconv.Atoi(strings.TrimSpace(s)); return v }
	// StartTime and CurrentTime are "YYYY-MM-DD\thh:mm:ss.uuuuuu\tEPOCH.uuuuuu"
	when := func(cell string) (time.Time, bool) {
		f := strings.Fields(cell)
		if len(f) == 0 {
			return time.Time{}, false
		}
		return epoch(f[len(f)-1])
	}
	for _, row := range rows[1:] {
		if len(row) <= last {
			continue
		}
		start, ok1 := when(row[idx[0]])
		at, ok2 := when(row[idx[1]])
		if !ok1 || !ok2 {
			continue
		}
		out.Start = start
		out.Rows = append(out.Rows, Row{At: at, Created: atoi(row[idx[2]]), OK: atoi(row[idx[3]]), Failed: atoi(row[idx[4]])})
		out.Created, out.OK, out.Failed, out.Retrans = atoi(row[idx[5]]), atoi(row[idx[6]]), atoi(row[idx[7]]), atoi(row[idx[8]])
	}
	if len(out.Rows) == 0 {
		return out, errors.New("sipp statistics: no complete period row")
	}
	return out, nil
}

// epoch parses "SECONDS.MICROS" (SIPp's epoch time) exactly.
func epoch(s string) (time.Time, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec < 0 || sec > 1e11 || len(frac) > 9 {
		return time.Time{}, false
	}
	ns := 0
	if frac != "" {
		v, err := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		if err != nil || v < 0 {
			return time.Time{}, false
		}
		ns = v
	}
	return time.Unix(sec, int64(ns)), true
}

// Register registers aor with contact ("ip:port") at via (a P-CSCF, whose
// Path the REGISTER gets, or a registrar), sending from local:localPort,
// with reg.xml of scen; SIPp runs in dir and gets timeout to answer.
func Register(ctx context.Context, scen, dir, via, aor, contact, local string, localPort int, timeout time.Duration) error {
	inf := filepath.Join(dir, "reg-"+aor+".csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+aor+";"+contact+"\n"), 0o644); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout+time.Second)
	defer cancel()
	secs := strconv.Itoa(max(1, int(timeout/time.Second)))
	cmd := exec.CommandContext(rctx, "sipp", via, "-sf", filepath.Join(scen, "reg.xml"), "-inf", inf,
		"-i", local, "-ci", local, "-p", strconv.Itoa(localPort), "-m", "1", "-nostdin", "-timeout", secs)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("register %s at %s: %v: %s", aor, via, err, tail(out, 500))
	}
	return nil
}

func tail(b []byte, max int) string {
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
