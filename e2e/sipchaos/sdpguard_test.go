package sipchaos

// A real Kamailio P-CSCF (the template with the media hook) between Go UDP
// user agents, with a media hook that answers only when the test lets it:
// what the user is told about the other party's media while the hook is
// slow, when a 200 reaches a P-CSCF that has no transaction for it (a
// replacement on a failed P-CSCF's address), when the offer is in the 200 and
// the answer in the ACK, and when the SDP carries ICE candidates or sits in a
// multipart body.

import (
	"bytes"
	"fmt"
	"maps"
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
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
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
// test releases it; every post is recorded in order. An /update is answered
// 204 unless updateAnswers holds statuses for its "role port" (used in
// order): a failing daemon (500) or one older than session 16 (400);
// startAnswers does the same for a /start.
type slowHook struct {
	mu            sync.Mutex
	posts         []string // path?form
	entered       chan string
	release       chan struct{}
	updateAnswers map[string][]int
	startAnswers  map[string][]int // the same for /start (session 17)
}

func (h *slowHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	p := r.URL.Path + "?" + r.Form.Encode()
	h.mu.Lock()
	h.posts = append(h.posts, p)
	key := r.Form.Get("role") + " " + r.Form.Get("port")
	status := http.StatusNoContent
	if a := h.updateAnswers[key]; len(a) > 0 && strings.HasSuffix(r.URL.Path, "/update") {
		status, h.updateAnswers[key] = a[0], a[1:]
	}
	if a := h.startAnswers[key]; len(a) > 0 && strings.HasSuffix(r.URL.Path, "/start") {
		status, h.startAnswers[key] = a[0], a[1:]
	}
	h.mu.Unlock()
	switch status {
	case http.StatusBadRequest: // a daemon older than session 16: the P-CSCF's call must go on
		http.Error(w, `path: operation "update" is not start or end`, status)
		return
	case http.StatusInternalServerError: // the rules could not be installed: the next message posts again
		http.Error(w, "ovs-ofctl: timed out", status)
		return
	}
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

// calleeSDP is the callee's SDP with ICE candidates: its own address in c=,
// a=rtcp, a=candidate and a=remote-candidates.
func calleeSDP(port int) string {
	return sdpBody(calleeMIP, port) + fmt.Sprintf("a=rtcp:%d IN IP4 %s\r\na=candidate:1 1 UDP 2130706431 %s %d typ host\r\na=remote-candidates:1 %s %d\r\n",
		port+1, calleeMIP, calleeMIP, port, calleeMIP, port)
}

// multipartBoundary marks a body as multipart/mixed for reply and request.
const multipartBoundary = "--guard"

// multipartSDP is a multipart/mixed body with the callee's SDP as one part.
func multipartSDP(port int) string {
	return multipartBoundary + "\r\nContent-Type: application/sdp\r\n\r\n" + sdpBody(calleeMIP, port) +
		multipartBoundary + "\r\nContent-Type: application/pidf+xml\r\n\r\n<presence/>\r\n" + multipartBoundary + "--\r\n"
}

// contentType is the Content-Type header line of a body ("" for none).
func contentType(body string) string {
	switch {
	case body == "":
		return ""
	case strings.HasPrefix(body, multipartBoundary):
		return "Content-Type: multipart/mixed;boundary=" + strings.TrimPrefix(multipartBoundary, "--") + "\r\n"
	}
	return "Content-Type: application/sdp\r\n"
}

// leaks returns the lines of m's body that tell the receiver another address
// to send media to than the entry: a c= not the entry's, or any line naming
// the callee's own media address (a=rtcp, ICE candidates) but o= (the
// session's origin) and a=oldmediaip (which fix_nated_sdp adds with the
// address it replaced: no user agent sends media there).
func leaks(m string) []string {
	_, body, _ := strings.Cut(m, "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(body, "\r\n") {
		informative := strings.HasPrefix(l, "o=") || strings.HasPrefix(l, "a=oldmediaip:")
		if a, ok := strings.CutPrefix(l, "c=IN IP4 "); ok && strings.TrimSpace(a) != guardEntry ||
			!informative && strings.Contains(l, calleeMIP) {
			out = append(out, l)
		}
	}
	return out
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
	b.WriteString(contentType(body))
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// invite is the caller's INVITE with body (its SDP offer, or "": the offer
// then comes in the 200).
func invite(callID, body string) string {
	return "INVITE sip:callee@ims.test SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + guardCaller + ";branch=z9hG4bK-" + callID + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:caller@ims.test>;tag=caller-" + callID + "\r\n" +
		"To: <sip:callee@ims.test>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + guardCaller + ">\r\n" + contentType(body) +
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

// TestPCSCFNeverRelaysUnrewrittenSDP: a user must never be told another
// party's own media address by its P-CSCF (its media would go around the
// firewall chain). Over one real P-CSCF with two workers and a media hook
// that answers only when the test lets it, in this order, each step waiting
// for its outcome:
//   - a 183 with SDP (early media) of the call, the first reply (a 100 sent
//     just before it could take the second worker, waiting for the call's
//     transaction behind the hook);
//   - the call's 200: the hook's /start holds one worker;
//   - meanwhile, handled in order by the one free worker: a 200 with SDP for
//     a transaction this P-CSCF never had (what a replacement on a failed
//     P-CSCF's address gets: the INVITE passed the failed process), a 200
//     whose SDP is a part of a multipart body, and a 180 without SDP
//     (stateless too) that marks that both were handled: the first must
//     have been relayed (with the entry address), the second dropped;
//   - the call's 200 again (a retransmission while the hook holds);
//   - the hook answers; the caller's ACK carries SDP from another port (an
//     ACK of an INVITE with SDP has no answer: no post); a re-INVITE of the
//     caller from another port (the callee's 200 with SDP comes back;
//     /update, answered 500 by this hook: not stored), a hold (c=0.0.0.0,
//     no post), the resume from that port (posted again, 204) and a
//     re-INVITE with its media unchanged (no post);
//   - forged ACKs and re-INVITEs with the P-CSCF's Route for a Call-ID it
//     has no dialog of, ftag equal to the From tag and not: relayed,
//     rewritten, no post (the role comes from the dialog, revSD HIGH-1);
//   - a re-INVITE of the callee (its SDP goes to the caller, whose 200
//     answers from yet another port: /update), one of the callee with a
//     multipart body (488, not relayed), and one the caller answers with
//     its media unchanged (no post);
//   - a call whose INVITE has no SDP: the offer comes in the 200
//     (rewritten), the caller's answer in the ACK (/start role=caller); a
//     second ACK with other SDP posts nothing (the mark was cleared);
//   - a call to the user (the terminating leg, pre-loaded Route) without
//     SDP: the user's 200 carries the offer (/start role=callee), the
//     answer comes in the ACK, which reaches the user rewritten; then the
//     user's re-INVITE from another port (/update role=callee, which this
//     hook answers 400 as a session-15 daemon does: the 200 goes on);
//   - a call to the user with SDP in a multipart body (488, not relayed).
//
// The callee's SDP carries ICE candidates and a=rtcp. Every SDP the user
// receives must name only the entry address, and the hook gets exactly
// each side's media as that side's messages showed it.
func TestPCSCFNeverRelaysUnrewrittenSDP(t *testing.T) {
	if err := localdrv.Available(); err != nil {
		if os.Getenv("CI") == "true" && os.Getenv("IMS_SIP_CHAOS") == "1" {
			t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(t)
	hook := &slowHook{entered: make(chan string, 8), release: make(chan struct{}),
		updateAnswers: map[string][]int{"caller 40010": {http.StatusInternalServerError}, "callee 40016": {http.StatusBadRequest}}}
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
	var got []string // everything the caller (the P-CSCF's user) received
	await := func(what string, want func(string) bool) string {
		t.Helper()
		m := caller.next(t, what, func(m string) bool { got = append(got, m); return want(m) })
		return m
	}
	hookPosts := func() []string {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return slices.Clone(hook.posts)
	}
	t.Cleanup(func() {
		if t.Failed() { // a stall shows as one /start (one worker held) or two
			t.Logf("hook posts: %q", hookPosts())
		}
	})
	atNext := func(what string, want func(string) bool) string {
		t.Helper()
		return next.next(t, what, want)
	}
	isRequest := func(method, callID string) func(string) bool {
		return func(m string) bool {
			return strings.HasPrefix(m, method+" ") && slices.Contains(sipHeaders(m, "Call-ID"), callID)
		}
	}

	// the call: INVITE through the P-CSCF; the next hop's first reply is a
	// 183 with SDP
	caller.send(t, pcscf, invite("call-a", sdpBody("10.100.1.1", 40000)))
	inv := atNext("INVITE at the next hop", isRequest("INVITE", "call-a"))
	next.send(t, pcscf, reply(inv, "183 Session Progress", "callee-a", calleeSDP(50000)))
	await("the 183 at the caller", isStatus("183", "call-a"))

	// the 200 (with an S-CSCF's Record-Route above the P-CSCF's, as in the
	// chain: the caller's route set goes on past the P-CSCF)
	ok := reply(inv, "200 OK", "callee-a", calleeSDP(50000))
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
	// another process, then the caller), one with SDP in a multipart body,
	// and a stateless 180, the marker
	stray := func(callID, status, body string) string {
		return strings.Replace(strings.Replace(reply(inv, status, "callee-x", body), "call-a", callID, -1),
			";branch=z9hG4bK", ";branch=z9hG4bKdead", 1)
	}
	next.send(t, pcscf, stray("call-b", "200 OK", calleeSDP(50002)))
	next.send(t, pcscf, stray("call-c", "200 OK", multipartSDP(50004)))
	next.send(t, pcscf, stray("call-m", "180 Ringing", ""))
	await("the stateless 180 marker at the caller", isStatus("180", "call-m"))
	if !slices.ContainsFunc(got, isStatus("200", "call-b")) {
		// relayed with the entry address: the failed P-CSCF may have reported
		// the call, and a dropped 200 would fail it (the caller has its 100)
		t.Errorf("the 200 with SDP of no transaction here was not relayed to the caller")
	}
	if slices.ContainsFunc(got, isStatus("200", "call-c")) {
		t.Errorf("the 200 with SDP in a multipart body reached the caller (it is not rewritten: it must be dropped)")
	}

	// the callee retransmits its 200 while the hook still holds the first:
	// the free worker either posts /start again or waits for the first
	next.send(t, pcscf, ok)
	releaseHook()
	ok200 := await("the call's 200 at the caller", isStatus("200", "call-a"))

	// the caller's re-INVITE along its route set (the P-CSCF, then the
	// "S-CSCF"): the callee's 200 with SDP comes back through the P-CSCF
	rr := sipHeaders(ok200, "Record-Route")
	if len(rr) != 2 {
		t.Fatalf("the caller's 200 has Record-Route %q, want the S-CSCF's and the P-CSCF's", rr)
	}
	callerReinv := func(cseq int, body string) string {
		return "INVITE sip:callee@" + guardNext + " SIP/2.0\r\n" +
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-reinv-a%d\r\n", guardCaller, cseq) +
			"Route: " + rr[1] + "\r\nRoute: " + rr[0] + "\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:caller@ims.test>;tag=caller-call-a\r\nTo: <sip:callee@ims.test>;tag=callee-a\r\n" +
			fmt.Sprintf("Call-ID: call-a\r\nCSeq: %d INVITE\r\nContact: <sip:caller@%s>\r\n", cseq, guardCaller) + contentType(body) +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	// callerReinvDone sends the caller's re-INVITE, the next hop accepts it
	// (the callee's 200 with SDP comes back through the P-CSCF)
	callerReinvDone := func(cseq int, body, what string) {
		t.Helper()
		caller.send(t, pcscf, callerReinv(cseq, body))
		cs := fmt.Sprintf("CSeq: %d INVITE", cseq)
		at := atNext(what+" at the next hop", func(m string) bool { return strings.HasPrefix(m, "INVITE ") && strings.Contains(m, cs) })
		next.send(t, pcscf, reply(at, "200 OK", "", calleeSDP(50000)))
		await("the 200 to "+what, func(m string) bool {
			return isStatus("200", "call-a")(m) && sipHeaders(m, "CSeq")[0] == fmt.Sprintf("%d INVITE", cseq)
		})
	}
	// the caller's ACK of its 200 carries SDP from another port: an ACK
	// carries no answer after an INVITE with SDP (no post)
	ackBody := sdpBody("10.100.1.1", 40020)
	caller.send(t, pcscf, "ACK sip:callee@"+guardNext+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardCaller+";branch=z9hG4bK-ack-a\r\n"+
		"Route: "+rr[1]+"\r\nRoute: "+rr[0]+"\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:caller@ims.test>;tag=caller-call-a\r\nTo: <sip:callee@ims.test>;tag=callee-a\r\n"+
		"Call-ID: call-a\r\nCSeq: 1 ACK\r\nContent-Type: application/sdp\r\n"+
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(ackBody), ackBody))
	atNext("the caller's ACK at the next hop", isRequest("ACK", "call-a"))
	// its media moves to another port: /update, which this hook answers 500
	// the first time (not stored: the next message with it posts again)
	callerReinvDone(2, sdpBody("10.100.1.1", 40010), "the caller's re-INVITE")
	// a hold in RFC 2543's way (c= 0.0.0.0) moves no media: no post
	callerReinvDone(3, sdpBody("0.0.0.0", 40010), "the caller's hold")
	// the resume from 40010: posted again (the 500 was not stored), 204
	callerReinvDone(4, sdpBody("10.100.1.1", 40010), "the caller's resume")
	// the same media again: nothing changed, no post
	callerReinvDone(5, sdpBody("10.100.1.1", 40010), "the caller's re-INVITE with its media unchanged")

	// forged in-dialog requests (a To tag and the P-CSCF's Route, for a
	// dialog this P-CSCF does not have): relayed, SDP rewritten, no post,
	// whatever the rr ftag says (the role comes from the stored dialog)
	forged := func(method string, n int, fromTag string, body string) string {
		return fmt.Sprintf("%s sip:callee@%s SIP/2.0\r\n", method, guardNext) +
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-forged%d\r\n", guardCaller, n) +
			"Route: " + rr[1] + "\r\nRoute: " + rr[0] + "\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:caller@ims.test>;tag=" + fromTag + "\r\nTo: <sip:callee@ims.test>;tag=victim-to\r\n" +
			fmt.Sprintf("Call-ID: victim-call\r\nCSeq: %d %s\r\nContact: <sip:caller@%s>\r\n", n, method, guardCaller) + contentType(body) +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	for i, tag := range []string{"caller-call-a", "attacker"} { // ftag = From tag, then not
		caller.send(t, pcscf, forged("ACK", 10+i, tag, sdpBody("10.100.1.1", 40660+i)))
		atNext("a forged ACK at the next hop", func(m string) bool {
			return isRequest("ACK", "victim-call")(m) && strings.Contains(m, fmt.Sprintf("CSeq: %d ACK", 10+i))
		})
		caller.send(t, pcscf, forged("INVITE", 20+i, tag, sdpBody("10.100.1.1", 40670+i)))
		fr := atNext("a forged re-INVITE at the next hop", func(m string) bool {
			return isRequest("INVITE", "victim-call")(m) && strings.Contains(m, fmt.Sprintf("CSeq: %d INVITE", 20+i))
		})
		next.send(t, pcscf, reply(fr, "200 OK", "", calleeSDP(50000)))
		await("the 200 to a forged re-INVITE", func(m string) bool {
			return isStatus("200", "victim-call")(m) && sipHeaders(m, "CSeq")[0] == fmt.Sprintf("%d INVITE", 20+i)
		})
	}

	// the callee's re-INVITEs toward the caller (Route: the P-CSCF's record):
	// SDP, then SDP in a multipart body (refused: 488 back to the callee)
	calleeReinv := func(cseq int, body string) string {
		return "INVITE sip:caller@" + guardCaller + " SIP/2.0\r\n" +
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-reinv-b%d\r\n", guardNext, cseq) +
			"Route: " + rr[1] + "\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=callee-a\r\nTo: <sip:caller@ims.test>;tag=caller-call-a\r\n" +
			fmt.Sprintf("Call-ID: call-a\r\nCSeq: %d INVITE\r\nContact: <sip:callee@%s>\r\n", cseq, guardNext) + contentType(body) +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	next.send(t, pcscf, calleeReinv(1, sdpBody(calleeMIP, 50000))) // without ICE: nothing to remove
	reinvB := await("the callee's re-INVITE at the caller", isRequest("INVITE", "call-a"))
	// the caller answers it from yet another port: its 200 goes to the core
	caller.send(t, pcscf, strings.Replace(reply(reinvB, "200 OK", "", sdpBody("10.100.1.1", 40012)),
		"<sip:callee@"+guardNext+">", "<sip:caller@"+guardCaller+">", 1))
	atNext("the caller's answer at the next hop", func(m string) bool {
		return isStatus("200", "call-a")(m) && sipHeaders(m, "CSeq")[0] == "1 INVITE" && strings.Contains(m, "m=audio 40012 ")
	})
	next.send(t, pcscf, calleeReinv(2, multipartSDP(50000)))
	atNext("488 to the callee's multipart re-INVITE", func(m string) bool {
		return isStatus("488", "call-a")(m) && sipHeaders(m, "CSeq")[0] == "2 INVITE"
	})
	// the callee's next re-INVITE, answered with the same media: no post
	next.send(t, pcscf, calleeReinv(3, sdpBody(calleeMIP, 50000)))
	reinvB3 := await("the callee's third re-INVITE at the caller", func(m string) bool {
		return isRequest("INVITE", "call-a")(m) && sipHeaders(m, "CSeq")[0] == "3 INVITE"
	})
	caller.send(t, pcscf, strings.Replace(reply(reinvB3, "200 OK", "", sdpBody("10.100.1.1", 40012)),
		"<sip:callee@"+guardNext+">", "<sip:caller@"+guardCaller+">", 1))
	atNext("the caller's unchanged answer at the next hop", func(m string) bool {
		return isStatus("200", "call-a")(m) && sipHeaders(m, "CSeq")[0] == "3 INVITE"
	})

	// offer in the 200: an INVITE without SDP
	caller.send(t, pcscf, invite("call-n", ""))
	invN := atNext("the SDP-less INVITE at the next hop", isRequest("INVITE", "call-n"))
	okN := reply(invN, "200 OK", "callee-n", calleeSDP(50006))
	okN = strings.Replace(okN, "\r\nRecord-Route: ", "\r\nRecord-Route: <sip:"+guardNext+";lr>\r\nRecord-Route: ", 1)
	next.send(t, pcscf, okN)
	okN = await("the 200 with the offer at the caller", isStatus("200", "call-n"))
	// the caller's answer comes in the ACK, along the route set: the
	// caller's media, reported as the ACK passes (/start)
	rrN := sipHeaders(okN, "Record-Route")
	if len(rrN) != 2 {
		t.Fatalf("the caller's 200 of call-n has Record-Route %q, want the S-CSCF's and the P-CSCF's", rrN)
	}
	ackN := func(branch string, port int) {
		t.Helper()
		body := sdpBody("10.100.1.1", port)
		caller.send(t, pcscf, "ACK sip:callee@"+guardNext+" SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP "+guardCaller+";branch=z9hG4bK-"+branch+"\r\n"+
			"Route: "+rrN[1]+"\r\nRoute: "+rrN[0]+"\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:caller@ims.test>;tag=caller-call-n\r\nTo: <sip:callee@ims.test>;tag=callee-n\r\n"+
			"Call-ID: call-n\r\nCSeq: 1 ACK\r\nContent-Type: application/sdp\r\n"+
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
		atNext("the caller's ACK with the answer at the next hop", func(m string) bool {
			return isRequest("ACK", "call-n")(m) && strings.Contains(m, branch)
		})
	}
	ackN("ack-n", 40004)
	// another ACK with other SDP: the mark was cleared at the first, no post
	ackN("ack-n2", 40006)

	// terminating leg: the "S-CSCF" sends the user an INVITE without SDP
	// along the user's Path (pre-loaded Route); the user's 200 carries the
	// offer, the ACK the answer, which goes to the user through the P-CSCF
	next.send(t, pcscf, "INVITE sip:caller@"+guardCaller+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardNext+";branch=z9hG4bK-term-t\r\n"+
		"Route: <sip:"+guardPCSCF+";lr>\r\n"+
		"Record-Route: <sip:"+guardNext+";lr>\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=callee-t\r\nTo: <sip:caller@ims.test>\r\n"+
		"Call-ID: call-t\r\nCSeq: 1 INVITE\r\nContact: <sip:callee@"+guardNext+">\r\nContent-Length: 0\r\n\r\n")
	invT := await("the terminating INVITE at the user", isRequest("INVITE", "call-t"))
	okTSent := strings.Replace(reply(invT, "200 OK", "caller-t", sdpBody("10.100.1.1", 40002)),
		"<sip:callee@"+guardNext+">", "<sip:caller@"+guardCaller+">", 1)
	caller.send(t, pcscf, okTSent)
	okT := atNext("the user's 200 at the next hop", isStatus("200", "call-t"))
	rrT := sipHeaders(okT, "Record-Route")
	if len(rrT) != 2 {
		t.Fatalf("the user's 200 has Record-Route %q, want the P-CSCF's and the S-CSCF's", rrT)
	}
	body := calleeSDP(50008)
	next.send(t, pcscf, "ACK sip:caller@"+guardCaller+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardNext+";branch=z9hG4bK-term-ack\r\n"+
		"Route: "+rrT[0]+"\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=callee-t\r\nTo: <sip:caller@ims.test>;tag=caller-t\r\n"+
		"Call-ID: call-t\r\nCSeq: 1 ACK\r\nContent-Type: application/sdp\r\n"+
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	await("the ACK with the answer at the user", isRequest("ACK", "call-t"))
	// the user, the callee of call-t, moves its media with re-INVITEs along
	// its route set (the P-CSCF, then the "S-CSCF"): /update role=callee
	// once the 200 accepts one
	userReinvT := func(cseq, port int) {
		t.Helper()
		body := sdpBody("10.100.1.1", port)
		caller.send(t, pcscf, "INVITE sip:callee@"+guardNext+" SIP/2.0\r\n"+
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-reinv-t%d\r\n", guardCaller, cseq)+
			"Route: "+rrT[0]+"\r\nRoute: "+rrT[1]+"\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:caller@ims.test>;tag=caller-t\r\nTo: <sip:callee@ims.test>;tag=callee-t\r\n"+
			fmt.Sprintf("Call-ID: call-t\r\nCSeq: %d INVITE\r\nContact: <sip:caller@%s>\r\nContent-Type: application/sdp\r\n", cseq, guardCaller)+
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
		cs := fmt.Sprintf("%d INVITE", cseq)
		reinvT := atNext("the user's re-INVITE at the next hop", func(m string) bool {
			return isRequest("INVITE", "call-t")(m) && sipHeaders(m, "CSeq")[0] == cs
		})
		next.send(t, pcscf, reply(reinvT, "200 OK", "", calleeSDP(50008)))
		await("the 200 to the user's re-INVITE", func(m string) bool {
			return isStatus("200", "call-t")(m) && sipHeaders(m, "CSeq")[0] == cs
		})
	}
	userReinvT(1, 40014)
	// the user's first 200 again (a retransmission, its first media): it
	// must not overwrite what was reported since (a repeated /start only),
	// so the move back to 40002 is posted
	caller.send(t, pcscf, okTSent)
	atNext("the user's retransmitted 200 at the next hop", func(m string) bool {
		return isStatus("200", "call-t")(m) && strings.Contains(m, "m=audio 40002 ")
	})
	userReinvT(2, 40002)
	// a move this hook answers 400 like a session-15 daemon: the 200 goes on
	userReinvT(3, 40016)

	// a call to the user with SDP in a multipart body: refused (488)
	body = multipartSDP(50010)
	next.send(t, pcscf, "INVITE sip:caller@"+guardCaller+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardNext+";branch=z9hG4bK-term-u\r\n"+
		"Route: <sip:"+guardPCSCF+";lr>\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=callee-u\r\nTo: <sip:caller@ims.test>\r\n"+
		"Call-ID: call-u\r\nCSeq: 1 INVITE\r\nContact: <sip:callee@"+guardNext+">\r\n"+contentType(body)+
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	atNext("488 to the multipart INVITE to the user", isStatus("488", "call-u"))

	checkToUser(t, "caller", got)
	posts := hookPosts()
	t.Logf("hook posts: %q", posts)
	// each side's media as its user's message showed it, each once (call-a's
	// start twice when the retransmitted 200 posted again): call-a's
	// caller's start, its re-INVITE's new port (twice: the hook's 500 the
	// first time is not stored) and its answer's, call-n's caller's answer
	// in the ACK (delayed offer), call-t's callee's offer in its 200 (the
	// user answered a call without SDP; twice: its retransmission, which
	// shows the retransmitted 200 passed onreply_route[MEDIA_TERM]) and its
	// re-INVITEs' new ports: 40014, back to 40002 (posted only if the
	// retransmitted 200 did not overwrite 40014 as the last reported), 40016
	// (refused by this hook as by a session-15 daemon: the 200 went on).
	// Nothing for the ACK of an INVITE with SDP, a second ACK, unchanged
	// media, or the forged requests.
	want := map[string]int{
		"start role=caller call=call-a port=40000":  1,
		"update role=caller call=call-a port=40010": 2,
		"update role=caller call=call-a port=40012": 1,
		"start role=caller call=call-n port=40004":  1,
		"start role=callee call=call-t port=40002":  2,
		"update role=callee call=call-t port=40014": 1,
		"update role=callee call=call-t port=40002": 1,
		"update role=callee call=call-t port=40016": 1,
	}
	seen := postCounts(t, posts)
	if seen["start role=caller call=call-a port=40000"] == 2 { // the retransmitted 200's
		seen["start role=caller call=call-a port=40000"] = 1
	}
	if !maps.Equal(seen, want) {
		t.Errorf("hook posts %v, want %v", seen, want)
	}
}
