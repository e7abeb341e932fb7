package local_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/discovery"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// needRealSIP skips a test when Kamailio, SIPp or DNS discovery (root) are
// absent, and fails it instead when CI=true: CI installs them, so their
// absence there is a broken install step, not a reason to pass.
func needRealSIP(t *testing.T) {
	t.Helper()
	err := local.Available()
	if err == nil {
		err = local.DNSAvailable()
	}
	if err == nil {
		machinelocktest.SIP.Hold(t) // real Kamailio on loopback, DNS on 127.0.0.53
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
	}
	t.Skipf("real SIP parts absent: %v", err)
}

// sipReq builds the lines of a request (without Content-Length).
func sipReq(method, ruri, via, branch, from, to, callID string, cseq int, more ...string) []string {
	return append([]string{
		fmt.Sprintf("%s %s SIP/2.0", method, ruri),
		fmt.Sprintf("Via: SIP/2.0/%s;branch=%s", via, branch),
		"Max-Forwards: 70",
		"From: " + from, "To: " + to, "Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
	}, more...)
}

// answer builds a response to req, copying Via, Record-Route, From, To
// (adding toTag), Call-ID and CSeq.
func answer(req rawMsg, status, toTag string, more ...string) []string {
	out := []string{"SIP/2.0 " + status}
	for _, v := range req.Hdr["via"] {
		out = append(out, "Via: "+v)
	}
	for _, v := range req.Hdr["record-route"] {
		out = append(out, "Record-Route: "+v)
	}
	to := req.Get("to")
	if toTag != "" && !strings.Contains(to, "tag=") {
		to += ";tag=" + toTag
	}
	out = append(out, "From: "+req.Get("from"), "To: "+to, "Call-ID: "+req.Get("call-id"), "CSeq: "+req.Get("cseq"))
	return append(out, more...)
}

// viaTarget is where a response to req goes: the sent-by of its top Via.
func viaTarget(t *testing.T, req rawMsg) string {
	t.Helper()
	v := req.Hdr["via"]
	if len(v) == 0 {
		t.Fatalf("no Via in %q", req.First)
	}
	top, _, _ := strings.Cut(v[0], ",")
	f := strings.Fields(top)
	if len(f) < 2 {
		t.Fatalf("bad Via %q", top)
	}
	host, _, _ := strings.Cut(f[1], ";")
	if !strings.Contains(host, ":") {
		host += ":5060"
	}
	return host
}

// TestKamailioRFCBehaviour checks, on real Kamailio instances launched by the
// driver (a P-CSCF finding its S-CSCF by DNS SRV), what a SIP proxy must do
// (issue 15): OPTIONS addressed to the P-CSCF answered 200 with Allow, Accept
// and Supported, over UDP and TCP, and not forwarded; a CANCEL that arrives
// after the P-CSCF restarted (no transaction) still reaches the callee and the
// caller gets the INVITE's 487; the dialog of a cut call (no BYE) expires;
// exactly one final response, 503 + Retry-After, when the S-CSCF pool is
// empty or its only member does not answer; SIPp calls over TCP. ~25 s.
func TestKamailioRFCBehaviour(t *testing.T) {
	needRealSIP(t)
	const dcName, dcIdx = "dc45", 45 // 127.55.x.x; harness on 127.0.0.8x
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scen := scenarios(t)
	zone := local.Zone(dcIdx, "ims.local")
	disc, err := discovery.New(discovery.Options{Zone: zone, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	nsAddr, _ := local.DNSAddr(dcIdx)
	if _, err := disc.ListenAndServe(nsAddr.String()); err != nil {
		t.Fatal(err)
	}
	defer disc.Close()
	d, err := local.New(local.Config{BaseDir: t.TempDir(), Children: 2, ShmMB: 64, Grace: 2 * time.Second,
		DialogTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close(context.Background()) }()
	evs := newEventLog(d)
	launch := func(id, vnf string) local.Runtime {
		t.Helper()
		if _, err := d.Launch(ctx, drivers.Spec{ID: id, DC: dcName, VNF: vnf}); err != nil {
			t.Fatal(err)
		}
		evs.wait(t, id, drivers.StateActive, 10*time.Second)
		rt, _ := d.Runtime(id)
		return rt
	}
	stat := func(rt local.Runtime, name string) int64 {
		t.Helper()
		c := kamrpc.New(rt.RPC)
		c.Timeout = 3 * time.Second
		st, err := c.Stats(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return st[name]
	}

	s1 := launch("s1", "S-CSCF")
	if err := disc.SetRecords("scscf", []netip.AddrPort{s1.SIP}); err != nil {
		t.Fatal(err)
	}
	p1 := launch("p1", "P-CSCF")
	pAddr := p1.SIP.String()
	pHost := p1.SIP.Addr().String()

	callee := newRawUA(t, "127.0.0.81:5090")
	caller := newRawUA(t, "127.0.0.82:5090")
	calleeAOR := "<sip:rfc-callee@" + pHost + ">"

	// register the callee through the P-CSCF (Path = P-CSCF)
	m := callee.mark()
	callee.send(pAddr, sipReq("REGISTER", "sip:"+pHost, "UDP "+callee.local(), "z9hG4bKreg1",
		calleeAOR+";tag=r1", calleeAOR, "reg1@rfc", 1, "Contact: <sip:rfc-callee@"+callee.local()+">", "Expires: 600")...)
	if r, _ := callee.wait(m, 5*time.Second, "200 to REGISTER", final("reg1@rfc", "REGISTER")); r.Status() != 200 {
		t.Fatalf("REGISTER: %s", r.First)
	}

	// --- 1. OPTIONS keep-alives addressed to the P-CSCF: answered by it, not forwarded
	optsAtS := stat(s1, "core:rcv_requests_options")
	from := "<sip:ka@127.0.0.82>;tag=ka"
	for i, ruri := range []string{"sip:" + pAddr, "sip:" + pHost, "sip:pcscf." + zone} {
		id := fmt.Sprintf("ka%d@rfc", i)
		m := caller.mark()
		caller.send(pAddr, sipReq("OPTIONS", ruri, "UDP "+caller.local(), fmt.Sprintf("z9hG4bKka%d", i), from, "<"+ruri+">", id, 1)...)
		r, idx := caller.wait(m, 3*time.Second, "answer to OPTIONS "+ruri, final(id, "OPTIONS"))
		if r.Status() != 200 || r.Get("allow") == "" || r.Get("accept") == "" || r.Get("supported") == "" {
			t.Fatalf("OPTIONS %s: %s, Allow %q Accept %q Supported %q; want 200 with all three\n%s",
				ruri, r.First, r.Get("allow"), r.Get("accept"), r.Get("supported"), r.Raw)
		}
		if !strings.Contains(r.Get("allow"), "INVITE") {
			t.Fatalf("OPTIONS %s: Allow %q lacks INVITE", ruri, r.Get("allow"))
		}
		time.Sleep(200 * time.Millisecond) // a second final response would arrive well within this
		if n := caller.count(idx, final(id, "OPTIONS")); n != 1 {
			t.Fatalf("OPTIONS %s: %d final responses, want 1", ruri, n)
		}
	}
	// over TCP (RFC 3261 §18)
	caller.dialTCP(pAddr)
	m = caller.mark()
	caller.send("tcp", sipReq("OPTIONS", "sip:"+pAddr+";transport=tcp", "TCP "+caller.tcp.LocalAddr().String(), "z9hG4bKkatcp", from, "<sip:"+pAddr+">", "katcp@rfc", 1)...)
	if r, _ := caller.wait(m, 3*time.Second, "answer to OPTIONS over TCP", final("katcp@rfc", "OPTIONS")); r.Status() != 200 || r.Get("allow") == "" {
		t.Fatalf("OPTIONS over TCP: %s\n%s", r.First, r.Raw)
	}
	if n := stat(s1, "core:rcv_requests_options") - optsAtS; n != 0 {
		t.Fatalf("the S-CSCF received %d of the OPTIONS addressed to the P-CSCF", n)
	}
	t.Logf("OPTIONS to the P-CSCF (3 R-URIs over UDP, 1 over TCP): 200 with Allow/Accept/Supported, none forwarded")

	// --- 2. CANCEL after a P-CSCF restart: no transaction there, forwarded statelessly
	ruri := "sip:rfc-callee@" + pHost
	ctag := "<sip:caller@127.0.0.82>;tag=c1"
	m, cm := caller.mark(), callee.mark()
	inv := sipReq("INVITE", ruri, "UDP "+caller.local(), "z9hG4bKinv1", ctag, "<"+ruri+">", "inv1@rfc", 1,
		"Contact: <sip:caller@"+caller.local()+">")
	caller.send(pAddr, inv...)
	in, _ := callee.wait(cm, 5*time.Second, "INVITE at the callee", func(m rawMsg) bool { return m.Method() == "INVITE" })
	callee.send(viaTarget(t, in), answer(in, "180 Ringing", "cl1", "Contact: <sip:rfc-callee@"+callee.local()+">")...)
	caller.wait(m, 5*time.Second, "180 at the caller", func(m rawMsg) bool { return m.Status() == 180 })
	if err := d.Terminate(ctx, dcName, "p1"); err != nil {
		t.Fatal(err)
	}
	p1 = launch("p1b", "P-CSCF") // the lowest free address: the same one
	if p1.SIP.String() != pAddr {
		t.Fatalf("restarted P-CSCF on %v, want %s", p1.SIP, pAddr)
	}
	m, cm = caller.mark(), callee.mark()
	caller.send(pAddr, sipReq("CANCEL", ruri, "UDP "+caller.local(), "z9hG4bKinv1", ctag, "<"+ruri+">", "inv1@rfc", 1)...)
	cn, _ := callee.wait(cm, 5*time.Second, "CANCEL at the callee (forwarded without transaction)", func(m rawMsg) bool { return m.Method() == "CANCEL" })
	callee.send(viaTarget(t, cn), answer(cn, "200 OK", "cl1")...)
	callee.send(viaTarget(t, in), answer(in, "487 Request Terminated", "cl1")...)
	caller.wait(m, 5*time.Second, "200 to CANCEL at the caller", final("inv1@rfc", "CANCEL"))
	if r, _ := caller.wait(m, 5*time.Second, "final response to the INVITE", final("inv1@rfc", "INVITE")); r.Status() != 487 {
		t.Fatalf("INVITE after CANCEL: %s, want 487", r.First)
	}
	t.Logf("CANCEL after a P-CSCF restart: reached the callee, caller got 200 (CANCEL) and 487 (INVITE)")

	// --- 3. a cut call's dialog expires (DialogTimeout 2 s): no BYE ever comes
	base := stat(p1, "dialog:active_dialogs")
	m, cm = caller.mark(), callee.mark()
	caller.send(pAddr, sipReq("INVITE", ruri, "UDP "+caller.local(), "z9hG4bKinv2", "<sip:caller@127.0.0.82>;tag=c2", "<"+ruri+">", "inv2@rfc", 1,
		"Contact: <sip:caller@"+caller.local()+">")...)
	in, _ = callee.wait(cm, 5*time.Second, "INVITE 2 at the callee", func(m rawMsg) bool { return m.Method() == "INVITE" && m.Get("call-id") == "inv2@rfc" })
	callee.send(viaTarget(t, in), answer(in, "200 OK", "cl2", "Contact: <sip:rfc-callee@"+callee.local()+">")...)
	caller.wait(m, 5*time.Second, "200 to INVITE 2", final("inv2@rfc", "INVITE"))
	if n := stat(p1, "dialog:active_dialogs"); n <= base {
		t.Fatalf("P-CSCF active dialogs %d after the call was set up, want > %d", n, base)
	}
	cut := time.Now()
	for stat(p1, "dialog:active_dialogs") > base {
		if time.Since(cut) > 8*time.Second {
			t.Fatalf("the cut call's dialog still active %v after it was set up (dialog timeout 2 s)", time.Since(cut))
		}
		time.Sleep(100 * time.Millisecond) // polling a real process
	}
	t.Logf("cut call's dialog expired %v after set-up (DialogTimeout 2 s)", time.Since(cut).Round(10*time.Millisecond))

	// --- 4. SIPp calls over TCP between the caller and the P-CSCF
	startUAS(t, scen, "127.0.0.84", 5080)
	register(t, scen, pAddr, "127.0.0.83", "callee", "127.0.0.84:5080")
	res, err := runUAC(ctx, scen, pAddr, "127.0.0.85", 5070, 20, 40, 100*time.Millisecond, "-t", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 40 || res.OK != 40 {
		t.Fatalf("SIPp calls over TCP: %v\n%s", res, res.Errors)
	}
	t.Logf("SIPp over TCP: %v", res)

	// --- 5. exactly one final response, 503 + Retry-After, without S-CSCFs
	oneFinal503 := func(what, id string, wait time.Duration) {
		t.Helper()
		m := caller.mark()
		caller.send(pAddr, sipReq("INVITE", ruri, "UDP "+caller.local(), "z9hG4bK"+id, "<sip:caller@127.0.0.82>;tag="+id, "<"+ruri+">", id, 1,
			"Contact: <sip:caller@"+caller.local()+">")...)
		r, idx := caller.wait(m, wait, what, final(id, "INVITE"))
		if r.Status() != 503 || r.Get("retry-after") == "" {
			t.Fatalf("%s: %s (Retry-After %q), want 503 with Retry-After\n%s", what, r.First, r.Get("retry-after"), r.Raw)
		}
		// ACK it (hop by hop, RFC 3261 §17.1.1.3), or the proxy retransmits it
		caller.send(pAddr, sipReq("ACK", ruri, "UDP "+caller.local(), "z9hG4bK"+id, "<sip:caller@127.0.0.82>;tag="+id, r.Get("to"), id, 1)...)
		time.Sleep(700 * time.Millisecond)
		// a second, different final response (another To tag or status: tm's and
		// then sl's) is the bug; a retransmission of the same one is not
		if n := caller.count(idx, func(m rawMsg) bool {
			return final(id, "INVITE")(m) && (m.Status() != r.Status() || m.Get("to") != r.Get("to"))
		}); n != 0 {
			t.Fatalf("%s: %d further different final responses (%v), want exactly 1", what, n, caller.firstLines()[idx:])
		}
	}
	// the only S-CSCF does not answer (its process group stopped): tm's timer expires (8 s)
	if err := syscall.Kill(-s1.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	oneFinal503("INVITE while the only S-CSCF is stopped", "stopped@rfc", 12*time.Second)
	_ = syscall.Kill(-s1.Pid, syscall.SIGCONT)
	// the pool is empty in DNS (NXDOMAIN): refused at once
	if err := disc.SetRecords("scscf", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kamrpc.New(p1.RPC).Call(ctx, "dns.delete_all"); err != nil {
		t.Fatal(err)
	}
	oneFinal503("INVITE with no S-CSCF in DNS", "empty@rfc", 3*time.Second)
	t.Logf("no S-CSCF (stopped, then none in DNS): exactly one final response each, 503 with Retry-After")
}
