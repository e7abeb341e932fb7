package sipchaos

// A real Kamailio P-CSCF (the template with the media hook) between Go UDP
// user agents, with a media hook that answers only when the test lets it:
// what the caller is told about the callee's media while the hook is slow,
// when the 200 is retransmitted, and when a 200 reaches a P-CSCF that has no
// transaction for it (a replacement on a failed P-CSCF's address).

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
)

// addresses of the focused P-CSCF test: a block of its own
const (
	guardCaller = "127.68.0.1:5070" // the UE (caller)
	guardPCSCF  = "127.68.0.2"      // the P-CSCF under test, port 5060
	guardNext   = "127.68.0.3:5080" // its next hop (plays S-CSCF and callee)
	guardProbe  = "127.68.0.4:5090" // readiness OPTIONS
	guardEntry  = "10.200.200.200"  // the DC's entry address the P-CSCF writes
	calleeMIP   = "10.100.0.95"     // the callee's real media address
	// bound on real events (Kamailio starting, a datagram crossing it)
	guardLimit = 20 * time.Second
)

// slowHook is the controller's media hook, answering /start only once the
// test releases it; every post is recorded in order.
type slowHook struct {
	mu      sync.Mutex
	posts   []string // path?form
	entered chan string
	release chan struct{}
}

func (h *slowHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	p := r.URL.Path + "?" + r.Form.Encode()
	h.mu.Lock()
	h.posts = append(h.posts, p)
	h.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/start") {
		h.entered <- p
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// udpUA is a Go SIP endpoint: every datagram it receives goes to got.
type udpUA struct {
	conn *net.UDPConn
	got  chan string
}

func listenUA(t *testing.T, addr string) *udpUA {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	u := &udpUA{conn: conn, got: make(chan string, 64)}
	t.Cleanup(func() { _ = conn.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				close(u.got)
				return
			}
			u.got <- string(buf[:n])
		}
	}()
	return u
}

func (u *udpUA) send(t *testing.T, to, msg string) {
	t.Helper()
	if _, err := u.conn.WriteToUDPAddrPort([]byte(msg), netip.MustParseAddrPort(to)); err != nil {
		t.Fatal(err)
	}
}

// next waits (bounded) for the next datagram accepted by want.
func (u *udpUA) next(t *testing.T, what string, want func(string) bool) string {
	t.Helper()
	deadline := time.After(guardLimit)
	for {
		select {
		case m, ok := <-u.got:
			if !ok {
				t.Fatalf("%s: socket closed", what)
			}
			if want(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: nothing within %v", what, guardLimit)
		}
	}
}

// sipHeaders returns the values of the header name (full name) in m, in order.
func sipHeaders(m, name string) []string {
	head, _, _ := strings.Cut(m, "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(head, "\r\n")[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// sdpConn returns the c= addresses of m's body.
func sdpConn(m string) []string {
	_, body, _ := strings.Cut(m, "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(body, "\r\n") {
		if a, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			out = append(out, strings.TrimSpace(a))
		}
	}
	return out
}

func sdpBody(ip string, port int) string {
	return fmt.Sprintf("v=0\r\no=ue 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", ip, ip, port)
}

// reply builds a response to req (its Vias, Record-Route, From, To, Call-ID,
// CSeq) with the given status line, To tag and SDP body ("" for none).
func reply(req, status, tag, body string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, v := range sipHeaders(req, "Via") {
		b.WriteString("Via: " + v + "\r\n")
	}
	for _, v := range sipHeaders(req, "Record-Route") {
		b.WriteString("Record-Route: " + v + "\r\n")
	}
	b.WriteString("From: " + sipHeaders(req, "From")[0] + "\r\n")
	to := sipHeaders(req, "To")[0]
	if tag != "" {
		to += ";tag=" + tag
	}
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Call-ID: " + sipHeaders(req, "Call-ID")[0] + "\r\n")
	b.WriteString("CSeq: " + sipHeaders(req, "CSeq")[0] + "\r\n")
	b.WriteString("Contact: <sip:callee@" + guardNext + ">\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func invite(callID string) string {
	body := sdpBody("10.100.1.1", 40000)
	return "INVITE sip:callee@ims.test SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + guardCaller + ";branch=z9hG4bK-" + callID + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:caller@ims.test>;tag=caller-" + callID + "\r\n" +
		"To: <sip:callee@ims.test>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + guardCaller + ">\r\n" +
		"Content-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}

func isStatus(code, callID string) func(string) bool {
	return func(m string) bool {
		return strings.HasPrefix(m, "SIP/2.0 "+code+" ") && len(sipHeaders(m, "Call-ID")) > 0 && sipHeaders(m, "Call-ID")[0] == callID
	}
}

// startGuardPCSCF renders the P-CSCF template with the hook at hookURL and
// runs a real Kamailio on guardPCSCF:5060 with two workers; the hook's HTTP
// timeout is raised so the test's slow hook is slow for as long as the test
// needs (the template's 1 s is the production bound, not what is tested).
func startGuardPCSCF(t *testing.T, hookURL string) {
	t.Helper()
	dir := t.TempDir()
	addr := netip.MustParseAddr(guardPCSCF)
	td := localdrv.TemplateData{ID: "guard", Role: localdrv.RolePCSCF, DC: "dc0", Addr: addr, Children: 2,
		CtlSock: "udp:" + guardPCSCF + ":2049", RPCSock: "udp:" + guardPCSCF + ":8090",
		NextHop: "sip:" + guardNext, DNSMaxTTL: 1, FRTimerMS: 2000,
		MediaHook: hookURL, MediaEntryIP: netip.MustParseAddr(guardEntry)}
	cfg, err := localdrv.Render(kamfiles.Files, kamfiles.Template, td)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = `modparam("http_client", "connection_timeout", 1)`
	if !bytes.Contains(cfg, []byte(timeout)) {
		t.Fatalf("rendered P-CSCF config lacks %s", timeout)
	}
	cfg = bytes.Replace(cfg, []byte(timeout), []byte(`modparam("http_client", "connection_timeout", 60)`), 1)
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kamailio", "-DD", "-E", "-f", cfgPath, "-l", "udp:"+guardPCSCF+":5060",
		"-n", "2", "-m", "64", "-M", "8", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: all its processes end with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		// as drivers/local terminates an instance: SIGTERM, then after a
		// grace SIGKILL to the process group (Kamailio's TCP main process
		// may outlive its parent); the group is gone before the dir is removed
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		for gone := time.Now().Add(guardLimit); syscall.Kill(-cmd.Process.Pid, 0) == nil; { // members not reaped yet (ppid 1)
			if time.Now().After(gone) {
				t.Errorf("kamailio's process group %d still there %v after SIGKILL", cmd.Process.Pid, guardLimit)
				break
			}
			time.Sleep(10 * time.Millisecond) // waiting for init to reap real processes
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("kamailio.log:\n%s", b)
		}
	})
	// ready when it answers an OPTIONS to itself (polling a starting process)
	probe := listenUA(t, guardProbe)
	opt := "OPTIONS sip:" + guardPCSCF + " SIP/2.0\r\nVia: SIP/2.0/UDP " + guardProbe + ";branch=z9hG4bK-probe\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@ims.test>;tag=p\r\nTo: <sip:" + guardPCSCF + ">\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	deadline := time.Now().Add(guardLimit)
	for {
		probe.send(t, guardPCSCF+":5060", opt)
		select {
		case m := <-probe.got:
			if strings.HasPrefix(m, "SIP/2.0 200 ") {
				return
			}
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("kamailio exited at start:\n%s", b)
		case <-time.After(200 * time.Millisecond): // a real process starting
		}
		if time.Now().After(deadline) {
			t.Fatalf("P-CSCF not answering OPTIONS within %v", guardLimit)
		}
	}
}

// TestPCSCFNeverRelaysUnrewrittenSDP: a caller must never be told the
// callee's own media address by its P-CSCF (its media would go around the
// firewall chain). Over one real P-CSCF with two workers and a media hook
// that answers only when the test lets it, in this order, each step waiting
// for its outcome:
//   - a 183 with SDP (early media) of the call;
//   - the call's 200: the hook's /start holds one worker;
//   - meanwhile a 200 with SDP for a transaction this P-CSCF never had (what
//     a replacement on a failed P-CSCF's address gets: the INVITE passed
//     the failed process), then a 180 without SDP (stateless too) that
//     marks that the free worker has handled it: the 200 must have been
//     relayed (with the entry address);
//   - the hook answers; then a re-INVITE of the caller (the callee's 200
//     with SDP comes back) and one of the callee (its SDP goes to the caller).
//
// Every SDP the caller receives must point at the entry address.
func TestPCSCFNeverRelaysUnrewrittenSDP(t *testing.T) {
	if err := localdrv.Available(); err != nil {
		if os.Getenv("CI") == "true" && os.Getenv("IMS_SIP_CHAOS") == "1" {
			t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
	sipptest.LockSIP(t)
	hook := &slowHook{entered: make(chan string, 8), release: make(chan struct{})}
	srv := httptest.NewServer(hook)
	released := false
	releaseHook := func() {
		if !released {
			released = true
			close(hook.release)
		}
	}
	t.Cleanup(func() { releaseHook(); srv.Close() })
	startGuardPCSCF(t, srv.URL+"/media/v1/dc/0")
	caller, next := listenUA(t, guardCaller), listenUA(t, guardNext)
	pcscf := guardPCSCF + ":5060"
	var got []string // everything the caller received
	await := func(what string, want func(string) bool) string {
		t.Helper()
		m := caller.next(t, what, func(m string) bool { got = append(got, m); return want(m) })
		return m
	}

	// the call: INVITE through the P-CSCF; the next hop answers 100, 183 with SDP
	caller.send(t, pcscf, invite("call-a"))
	inv := next.next(t, "INVITE at the next hop", func(m string) bool { return strings.HasPrefix(m, "INVITE ") })
	next.send(t, pcscf, reply(inv, "100 Trying", "", ""))
	next.send(t, pcscf, reply(inv, "183 Session Progress", "callee-a", sdpBody(calleeMIP, 50000)))
	await("the 183 at the caller", isStatus("183", "call-a"))

	// the 200 (with an S-CSCF's Record-Route above the P-CSCF's, as in the
	// chain: the caller's route set goes on past the P-CSCF)
	ok := reply(inv, "200 OK", "callee-a", sdpBody(calleeMIP, 50000))
	ok = strings.Replace(ok, "\r\nRecord-Route: ", "\r\nRecord-Route: <sip:"+guardNext+";lr>\r\nRecord-Route: ", 1)
	next.send(t, pcscf, ok)
	var first string
	select {
	case first = <-hook.entered:
	case <-time.After(guardLimit):
		t.Fatalf("the 200 did not reach the media hook within %v", guardLimit)
	}
	if !strings.Contains(first, "role=caller") || !strings.Contains(first, "ip=10.100.1.1") || !strings.Contains(first, "port=40000") {
		t.Fatalf("first hook post %q, want /start role=caller ip=10.100.1.1 port=40000", first)
	}

	// one worker waits in the hook: the other handles, in order, a 200 with
	// SDP of a transaction it never saw (Vias: this P-CSCF with a branch of
	// another process, then the caller) and a stateless 180, the marker
	stray := func(callID, status, body string) string {
		return strings.Replace(strings.Replace(reply(inv, status, "callee-x", body), "call-a", callID, -1),
			";branch=z9hG4bK", ";branch=z9hG4bKdead", 1)
	}
	next.send(t, pcscf, stray("call-b", "200 OK", sdpBody(calleeMIP, 50002)))
	next.send(t, pcscf, stray("call-m", "180 Ringing", ""))
	await("the stateless 180 marker at the caller", isStatus("180", "call-m"))
	if !slices.ContainsFunc(got, isStatus("200", "call-b")) {
		// relayed with the entry address: the failed P-CSCF may have reported
		// the call, and a dropped 200 would fail it (the caller has its 100)
		t.Errorf("the 200 with SDP of no transaction here was not relayed to the caller")
	}

	releaseHook()
	ok200 := await("the call's 200 at the caller", isStatus("200", "call-a"))

	// the caller's re-INVITE along its route set (the P-CSCF, then the
	// "S-CSCF"): the callee's 200 with SDP comes back through the P-CSCF
	rr := sipHeaders(ok200, "Record-Route")
	if len(rr) != 2 {
		t.Fatalf("the caller's 200 has Record-Route %q, want the S-CSCF's and the P-CSCF's", rr)
	}
	body := sdpBody("10.100.1.1", 40000)
	reinv := "INVITE sip:callee@" + guardNext + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + guardCaller + ";branch=z9hG4bK-reinv-a\r\n" +
		"Route: " + rr[1] + "\r\nRoute: " + rr[0] + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:caller@ims.test>;tag=caller-call-a\r\nTo: <sip:callee@ims.test>;tag=callee-a\r\n" +
		"Call-ID: call-a\r\nCSeq: 2 INVITE\r\nContact: <sip:caller@" + guardCaller + ">\r\nContent-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	caller.send(t, pcscf, reinv)
	reinvAt := next.next(t, "the caller's re-INVITE at the next hop", func(m string) bool {
		return strings.HasPrefix(m, "INVITE ") && strings.Contains(m, "CSeq: 2 INVITE")
	})
	next.send(t, pcscf, reply(reinvAt, "200 OK", "", sdpBody(calleeMIP, 50000)))
	await("the 200 to the caller's re-INVITE", func(m string) bool {
		return isStatus("200", "call-a")(m) && sipHeaders(m, "CSeq")[0] == "2 INVITE"
	})

	// the callee's re-INVITE toward the caller (Route: the P-CSCF's record)
	body = sdpBody(calleeMIP, 50000)
	next.send(t, pcscf, "INVITE sip:caller@"+guardCaller+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardNext+";branch=z9hG4bK-reinv-b\r\n"+
		"Route: "+rr[1]+"\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=callee-a\r\nTo: <sip:caller@ims.test>;tag=caller-call-a\r\n"+
		"Call-ID: call-a\r\nCSeq: 1 INVITE\r\nContact: <sip:callee@"+guardNext+">\r\nContent-Type: application/sdp\r\n"+
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	await("the callee's re-INVITE at the caller", func(m string) bool { return strings.HasPrefix(m, "INVITE ") })

	for _, m := range got {
		line, _, _ := strings.Cut(m, "\r\n")
		t.Logf("caller got %q (Call-ID %v, CSeq %v) c=%v", line, sipHeaders(m, "Call-ID"), sipHeaders(m, "CSeq"), sdpConn(m))
		for _, c := range sdpConn(m) {
			if c != guardEntry {
				t.Errorf("caller got %q (Call-ID %v, CSeq %v) with c=IN IP4 %s, want only the entry %s: its media would go around the chain",
					line, sipHeaders(m, "Call-ID"), sipHeaders(m, "CSeq"), c, guardEntry)
			}
		}
	}
	hook.mu.Lock()
	t.Logf("hook posts: %q", hook.posts)
	hook.mu.Unlock()
}
