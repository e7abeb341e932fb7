package sipptest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// testdata/stat.csv: the first five periods of a real SIPp 3.6.1 caller
// (e2e/sip TestSIPRounds, -fd 1).
func TestParseStatsOfARealRun(t *testing.T) {
	b, err := os.ReadFile("testdata/stat.csv")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sipptest.ParseStats(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rows) != 5 {
		t.Fatalf("%d rows, want 5", len(st.Rows))
	}
	created := []int{0, 7, 9, 8, 8}
	ok := []int{0, 5, 8, 8, 8}
	for i, r := range st.Rows {
		if r.Created != created[i] || r.OK != ok[i] || r.Failed != 0 {
			t.Errorf("row %d: %+v, want created %d ok %d failed 0", i, r, created[i], ok[i])
		}
	}
	if want := time.Unix(1796551977, 955441000); !st.Rows[1].At.Equal(want) {
		t.Errorf("row 1 at %v, want %v", st.Rows[1].At, want)
	}
	if st.Created != 32 || st.OK != 29 || st.Failed != 0 || st.Retrans != 0 {
		t.Errorf("cumulative %+v, want created 32 ok 29", st)
	}
	if want := time.Unix(1796551976, 948499000); !st.Start.Equal(want) {
		t.Errorf("start %v, want %v", st.Start, want)
	}
	// 29 calls completed from the start to the end of the last period
	// (1796551980.967714): 4.019215 s
	if got, want := st.CompletedRate(), 29/4.019215; math.Abs(got-want) > 1e-9 {
		t.Errorf("completed rate %v, want %v", got, want)
	}
}

// CompletedRate counts the calls completed up to the last period in which
// one completed: periods after it (SIPp still waiting for failed calls)
// do not dilute the rate, calls completing late stretch the span.
func TestCompletedRate(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	for name, c := range map[string]struct {
		st   sipptest.Stats
		want float64
	}{
		"no call completed": {sipptest.Stats{Start: start, Rows: []sipptest.Row{{At: at(200), Created: 4}}}, 0},
		"no row":            {sipptest.Stats{Start: start}, 0},
		"even": {sipptest.Stats{Start: start, OK: 40, Rows: []sipptest.Row{
			{At: at(1000), Created: 20, OK: 18}, {At: at(2000), Created: 20, OK: 22}}}, 20},
		"quiet periods at the end": {sipptest.Stats{Start: start, OK: 40, Rows: []sipptest.Row{
			{At: at(1000), OK: 18}, {At: at(2000), OK: 22}, {At: at(3000), Failed: 1}, {At: at(4000)}}}, 20},
		"completions stretched": {sipptest.Stats{Start: start, OK: 40, Rows: []sipptest.Row{
			{At: at(1000), OK: 10}, {At: at(2000), OK: 10}, {At: at(3000), OK: 10}, {At: at(4000), OK: 10}}}, 10},
		"period at the start": {sipptest.Stats{Start: start, OK: 1, Rows: []sipptest.Row{{At: start, OK: 1}}}, 0},
	} {
		if got := c.st.CompletedRate(); got != c.want {
			t.Errorf("%s: %v calls/s, want %v", name, got, c.want)
		}
	}
}

func TestParseStatsErrors(t *testing.T) {
	b, err := os.ReadFile("testdata/stat.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	for name, c := range map[string]struct{ in, want string }{
		"empty":          {"", "0 rows"},
		"header only":    {lines[0], "1 rows"},
		"column missing": {strings.Replace(string(b), "FailedCall(C)", "Other(C)", 1), "column FailedCall(C) missing"},
		"rows cut short": {lines[0] + "1;2;3\n", "no complete period row"},
	} {
		if _, err := sipptest.ParseStats([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
	// a last row SIPp was still writing is skipped
	st, err := sipptest.ParseStats([]byte(string(b) + "2026-12-06\t10:13:01.9\t1796551981.9;0;0\n"))
	if err != nil || len(st.Rows) != 5 || st.Created != 32 {
		t.Errorf("with a cut last row: %+v %v", st, err)
	}
}

func TestParseRTTs(t *testing.T) {
	in := "Date_ms;response_time_ms;rtd_no\n1000.5;12.25;1\n1001;3;2\nbad;1;1\n2000;-1;1\n3000;7;1\n"
	got := sipptest.ParseRTTs([]byte(in), 1)
	want := []sipptest.RTT{{End: 1000500 * time.Microsecond, Took: 12250 * time.Microsecond}, {End: 3 * time.Second, Took: 7 * time.Millisecond}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func FuzzParseStats(f *testing.F) {
	b, err := os.ReadFile("testdata/stat.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("CurrentTime;OutgoingCall(P)\n1;2\n"))
	f.Add([]byte("\"unterminated;x\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := sipptest.ParseStats(in)
		if err == nil && len(st.Rows) == 0 {
			t.Fatal("no error and no row")
		}
	})
}

func FuzzParseRTTs(f *testing.F) {
	f.Add([]byte("Date_ms;response_time_ms;rtd_no\n1000.5;12.25;1\n"), 1)
	f.Add([]byte("1e300;1e300;1\nNaN;1;1\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, rtd int) {
		for _, m := range sipptest.ParseRTTs(in, rtd) {
			if m.End < 0 || m.Took < 0 {
				t.Fatalf("negative measure %+v", m)
			}
		}
	})
}

// A real SIPp caller places 5 calls straight to a real SIPp callee (no
// proxy; 127.0.0.201-202, used by no other test): the statistics, the
// response times and the exit are what the runner reports, and a killed
// callee is reaped.
func TestRealSIPp(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp missing (scripts/ci-kamailio.sh installs it)")
	}
	machinelocktest.SIP.Hold(t) // fixed addresses
	scen := sipptest.Scenarios(t)
	uas, err := sipptest.Start(t.TempDir(), sipptest.Options{}, "-sf", filepath.Join(scen, "uas.xml"), "-i", "127.0.0.201", "-p", "5080")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(uas.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uac, err := sipptest.Start(t.TempDir(), sipptest.Options{Stats: true, RTTFreq: 1}, "127.0.0.201:5080", "-sf", filepath.Join(scen, "uac.xml"),
		"-s", "callee", "-key", "caller", "caller", "-i", "127.0.0.202", "-p", "5070", "-r", "10", "-m", "5", "-d", "10", "-timeout", "50")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(uac.Kill)
	if err := uac.Wait(ctx); err != nil {
		t.Fatalf("caller: %v\n%s", err, uac.Output(2000))
	}
	st, err := uac.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Created != 5 || st.OK != 5 || st.Failed != 0 {
		t.Errorf("caller statistics %+v, want 5 created and ok", st)
	}
	rtts, err := uac.ResponseTimes(1)
	if err != nil || len(rtts) != 5 {
		t.Errorf("%d response times (%v), want 5", len(rtts), err)
	}
	for _, m := range rtts {
		if m.End <= 0 || m.End > time.Minute || m.Took < 0 || m.Took > m.End {
			t.Errorf("response time %+v outside the run", m)
		}
	}
	if e := uac.Errors(100); e != "" {
		t.Errorf("errors logged with no failed call: %q", e)
	}

	pid := uas.Pid()
	uas.Kill()
	select {
	case <-uas.Exited():
	default:
		t.Fatal("Kill returned before the process was reaped")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("callee pid %d after Kill: %v, want ESRCH", pid, err)
	}
	uas.Kill() // once more: nothing to signal
	if err := uas.Wait(ctx); err == nil {
		t.Error("a killed SIPp exited 0")
	}
}

// The callee scenario takes a retransmitted INVITE that arrives while it
// waits for the ACK, and the call goes on to its BYE: the proxy before a
// callee retransmits the INVITE every 500 ms until it has read the 180, which
// on a loaded host takes longer (drivers/local TestKamailioChain at load 30:
// the callee aborted such calls as "unexpected message", so the caller's BYE
// was never answered). What uas.xml does with the copies: none gets a
// response of its own — the first is taken by its optional <recv
// request="INVITE">, later identical ones by SIPp's own retransmission check,
// which sends nothing here (SIPp 3.6.1, measured: four copies 150 ms apart
// got no response; the 200 came again only on its retrans="500" timer,
// 504 ms after the first). The 200 is re-sent on that timer until the ACK.
// That is what RFC 6026 §7.1 asks of a UAS (updating RFC 3261 §17.2.1): in
// the "Accepted" state a retransmitted INVITE is absorbed by the
// transaction, and the 2xx is retransmitted by the UAS core on its T1 timer
// until the ACK (RFC 3261 §13.3.1.4), which covers a lost 200. So the test
// checks that after the copies the 200 still comes again (the timer: a real
// event, waited for within 5 s), that nothing but the INVITE's 200 (never a
// 180 again, an error, or a response to another request) arrives between the
// first 200 and the BYE's 200, and that the BYE is answered. Whether a copy
// gets no answer of its own is not asserted: that would be a timing window
// against the 500 ms timer. A raw UDP caller on 127.0.0.204 talks to a real
// SIPp callee on 127.0.0.203 (fixed addresses: under the real-SIP lock).
func TestRealUASAnswersAnINVITERetransmission(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp missing (scripts/ci-kamailio.sh installs it)")
	}
	machinelocktest.SIP.Hold(t)
	scen := sipptest.Scenarios(t)
	uas, err := sipptest.Start(t.TempDir(), sipptest.Options{}, "-sf", filepath.Join(scen, "uas.xml"), "-i", "127.0.0.203", "-p", "5080")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(uas.Kill)
	la, _ := net.ResolveUDPAddr("udp", "127.0.0.204:5070")
	ra, _ := net.ResolveUDPAddr("udp", "127.0.0.203:5080")
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(msg string) {
		t.Helper()
		if _, err := c.WriteToUDP([]byte(strings.ReplaceAll(msg, "\n", "\r\n")), ra); err != nil {
			t.Fatal(err)
		}
	}
	// await returns the first response whose status line starts with
	// status and whose CSeq ends with method, within limit (the callee
	// needs a moment to start listening: requests are re-sent by the caller)
	await := func(status, method string, limit time.Duration, resend string) (msg string, before []string) {
		t.Helper()
		end := time.Now().Add(limit)
		buf := make([]byte, 65535)
		var got []string // status line and CSeq of each response
		for time.Now().Before(end) {
			if resend != "" {
				send(resend)
			}
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				continue
			}
			m := string(buf[:n])
			if strings.HasPrefix(m, "SIP/2.0 "+status) && strings.Contains(m, " "+method+"\r\n") {
				return m, got
			}
			got = append(got, strings.SplitN(m, "\r\n", 2)[0]+" / "+cseq(m))
		}
		t.Fatalf("no %s to the %s within %v; got %q\ncallee errors: %s", status, method, limit, got, uas.Output(2000))
		return "", nil
	}
	const hdr = "Via: SIP/2.0/UDP 127.0.0.204:5070;branch=z9hG4bKretr%s\nFrom: <sip:caller@127.0.0.204:5070>;tag=c1\n" +
		"To: <sip:callee@127.0.0.203:5080>%s\nCall-ID: retr1@127.0.0.204\nCSeq: %s\nContact: <sip:caller@127.0.0.204:5070>\nMax-Forwards: 70\nContent-Length: 0\n\n"
	invite := "INVITE sip:callee@127.0.0.203:5080 SIP/2.0\n" + fmt.Sprintf(hdr, "inv", "", "1 INVITE")
	await("18", "INVITE", 10*time.Second, invite) // re-sent until the callee listens
	ok, _ := await("200", "INVITE", 5*time.Second, "")
	toTag := ""
	for _, l := range strings.Split(ok, "\r\n") {
		if strings.HasPrefix(l, "To:") {
			_, toTag, _ = strings.Cut(l, ">")
		}
	}
	send(invite) // two retransmissions after the 200, before the ACK
	send(invite)
	_, between := await("200", "INVITE", 5*time.Second, "") // re-sent until the ACK
	send("ACK sip:127.0.0.203:5080 SIP/2.0\n" + fmt.Sprintf(hdr, "ack", toTag, "1 ACK"))
	_, more := await("200", "BYE", 5*time.Second, "BYE sip:127.0.0.203:5080 SIP/2.0\n"+fmt.Sprintf(hdr, "bye", toTag, "2 BYE"))
	between = append(between, more...)
	for _, r := range between {
		if r != "SIP/2.0 200 OK / 1 INVITE" {
			t.Errorf("after the 200 and the INVITE's two copies the callee sent %q, want only the INVITE's 200 again (all: %q)", r, between)
		}
	}
	t.Logf("between the first 200 and the BYE's 200: %q", between)
}

// cseq returns the CSeq header's value of SIP message m ("" without one).
func cseq(m string) string {
	for _, l := range strings.Split(m, "\r\n") {
		if v, ok := strings.CutPrefix(l, "CSeq:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
