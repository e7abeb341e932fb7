package sipchaos

// Session 17: offer/answer outside INVITE/200/ACK over the real P-CSCF of
// sdpguard_test.go (same harness, same addresses): a reliable 18x
// (RFC 3262) with SDP, a PRACK with the answer, UPDATE (RFC 3311) with
// SDP both ways, and forged UPDATEs.

import (
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/machinelocktest"
)

// inDialog is an in-dialog request: method to ruri from the UA at via
// along routes, with the dialog's tags, Call-ID, CSeq, extra header lines
// (each ending CRLF) and SDP body ("" for none).
func inDialog(method, ruri, via, branch string, routes []string, from, to, callID string, cseq int, extra, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\n", method, ruri, via, branch)
	for _, r := range routes {
		b.WriteString("Route: " + r + "\r\n")
	}
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:ua@%s>\r\n%s",
		from, to, callID, cseq, method, via, extra)
	b.WriteString(contentType(body))
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// reliable makes a provisional response m reliable (RFC 3262: Require:
// 100rel, RSeq).
func reliable(m string, rseq int) string {
	return strings.Replace(m, "\r\nCall-ID: ", fmt.Sprintf("\r\nRequire: 100rel\r\nRSeq: %d\r\nCall-ID: ", rseq), 1)
}

// TestPCSCFReportsReliable18xAndUPDATE: the media a user shows in a reliable
// 18x, a PRACK or an UPDATE (and its 2xx) is posted to the hook under the
// rules of session 16's re-INVITEs, and every SDP the user gets names only
// the entry. In order, each step waiting for its outcome:
//   - call-r (the user calls): the next hop's reliable 183 with SDP (its
//     answer; the 200 will have none) → the caller's /start at the 183,
//     before the 183 reaches the user; PRACK; the user's UPDATE with SDP
//     from 40110 in the early dialog (/update at its 200); the 200 without
//     SDP (no post); the callee's UPDATE toward the user, answered from
//     40120 (/update); the user's UPDATE with its media unchanged (no post);
//   - forged UPDATEs with the P-CSCF's Route for a Call-ID it has no dialog
//     of, from the user (ftag = From tag and not) and toward it (answered
//     with SDP): relayed, rewritten, no post;
//   - call-s (the user is called, INVITE with SDP): the user's reliable 183
//     with SDP from 40130 (/start role=callee), its 200 without SDP (no
//     post), its UPDATE from 40140 and its answer from 40150 to the other
//     side's UPDATE (/update role=callee each);
//   - call-d (the user calls without SDP): the reliable 183 carries the
//     offer (rewritten), the user's PRACK the answer from 40160 (the
//     caller's /start), the 200 without SDP (no post);
//   - (revSO) a second reliable 183 with the same answer on call-r and
//     call-s: no post; call-e: the caller's /start at the 183 answered 500,
//     posted again at the 200 without SDP; call-d2: reliable 180 and PRACK
//     without SDP, the offer in the 200, the answer from 40180 in the ACK
//     (one /start there); call-f: forked to two contacts of the user, fork
//     a's reliable 183 from 40190 (/start role=callee), fork b's 200 from
//     40191 (/update role=callee), fork a cancelled (487): no /end;
//     call-g: the user's /start at its reliable 183 answered 500, posted
//     again at its 200 without SDP.
func TestPCSCFReportsReliable18xAndUPDATE(t *testing.T) {
	if err := localdrv.Available(); err != nil {
		if os.Getenv("CI") == "true" && os.Getenv("IMS_SIP_CHAOS") == "1" {
			t.Fatalf("CI=true but the real SIP parts are missing: %v", err)
		}
		t.Skipf("real SIP parts absent: %v", err)
	}
	machinelocktest.SIP.Hold(t)
	hook := &slowHook{entered: make(chan string, 64), release: make(chan struct{}),
		startAnswers: map[string][]int{"caller 40170": {http.StatusInternalServerError}, "callee 40200": {http.StatusInternalServerError}}}
	close(hook.release) // this hook answers at once
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	startGuardPCSCF(t, srv.URL+"/media/v1/dc/0")
	user, next := listenUA(t, guardCaller), listenUA(t, guardNext)
	pcscf := guardPCSCF + ":5060"
	var got []string // everything the P-CSCF's user received
	await := func(what string, want func(string) bool) string {
		t.Helper()
		return user.next(t, what, func(m string) bool { got = append(got, m); return want(m) })
	}
	atNext := func(what string, want func(string) bool) string {
		t.Helper()
		return next.next(t, what, want)
	}
	hookPosts := func() []string {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return slices.Clone(hook.posts)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hook posts: %q", hookPosts())
		}
	})
	// is: a message with this start ("INVITE ", "SIP/2.0 200 ") and CSeq
	is := func(start, callID, cseq string) func(string) bool {
		return func(m string) bool {
			return strings.HasPrefix(m, start) && slices.Contains(sipHeaders(m, "Call-ID"), callID) && slices.Contains(sipHeaders(m, "CSeq"), cseq)
		}
	}
	userContact := func(m string) string { // a reply of the user names the user
		return strings.Replace(m, "<sip:callee@"+guardNext+">", "<sip:ua@"+guardCaller+">", 1)
	}
	withSCSCF := func(m string) string { // the S-CSCF's Record-Route above the P-CSCF's
		return strings.Replace(m, "\r\nRecord-Route: ", "\r\nRecord-Route: <sip:"+guardNext+";lr>\r\nRecord-Route: ", 1)
	}

	// call-r: the user calls with SDP; the answer comes in a reliable 183
	user.send(t, pcscf, invite("call-r", sdpBody("10.100.1.1", 40100)))
	invR := atNext("call-r's INVITE at the next hop", is("INVITE ", "call-r", "1 INVITE"))
	next.send(t, pcscf, withSCSCF(reliable(reply(invR, "183 Session Progress", "callee-r", calleeSDP(50100)), 1)))
	r183 := await("call-r's reliable 183 at the user", isStatus("183", "call-r"))
	if n := len(hookPosts()); n != 1 {
		t.Fatalf("%d hook posts before the reliable 183 reached the user, want the caller's /start: %q", n, hookPosts())
	}
	rr := sipHeaders(r183, "Record-Route")
	if len(rr) != 2 {
		t.Fatalf("call-r's 183 has Record-Route %q, want the S-CSCF's and the P-CSCF's", rr)
	}
	routeR := []string{rr[1], rr[0]}
	// a second reliable 18x with the same answer: the caller's /start is in
	// (204), no new post
	next.send(t, pcscf, withSCSCF(reliable(reply(invR, "183 Session Progress", "callee-r", calleeSDP(50100)), 2)))
	await("call-r's second reliable 183 at the user", isStatus("183", "call-r"))
	fromR, toR := "<sip:caller@ims.test>;tag=caller-call-r", "<sip:callee@ims.test>;tag=callee-r"
	// userReq sends the user's in-dialog request of call-r; the next hop
	// answers it 200 with body; the 200 reaches the user
	userReq := func(method string, cseq int, extra, body, answer string) {
		t.Helper()
		cs := fmt.Sprintf("%d %s", cseq, method)
		user.send(t, pcscf, inDialog(method, "sip:callee@"+guardNext, guardCaller, fmt.Sprintf("r-%s-%d", method, cseq), routeR, fromR, toR, "call-r", cseq, extra, body))
		at := atNext("call-r's "+cs+" at the next hop", is(method+" ", "call-r", cs))
		next.send(t, pcscf, reply(at, "200 OK", "", answer))
		await("the 200 to call-r's "+cs, is("SIP/2.0 200 ", "call-r", cs))
	}
	userReq("PRACK", 2, "RAck: 1 1 INVITE\r\n", "", "")
	userReq("UPDATE", 3, "", sdpBody("10.100.1.1", 40110), calleeSDP(50100))
	next.send(t, pcscf, withSCSCF(reply(invR, "200 OK", "callee-r", "")))
	await("call-r's 200 (no SDP) at the user", is("SIP/2.0 200 ", "call-r", "1 INVITE"))
	user.send(t, pcscf, inDialog("ACK", "sip:callee@"+guardNext, guardCaller, "r-ack", routeR, fromR, toR, "call-r", 1, "", ""))
	atNext("call-r's ACK at the next hop", is("ACK ", "call-r", "1 ACK"))
	// the callee's UPDATE toward the user, answered from 40120
	next.send(t, pcscf, inDialog("UPDATE", "sip:caller@"+guardCaller, guardNext, "r-cupd", []string{rr[1]},
		toR, fromR, "call-r", 2, "", sdpBody(calleeMIP, 50100)))
	updB := await("the callee's UPDATE at the user", is("UPDATE ", "call-r", "2 UPDATE"))
	user.send(t, pcscf, userContact(reply(updB, "200 OK", "", sdpBody("10.100.1.1", 40120))))
	atNext("the user's answer to the UPDATE at the next hop", is("SIP/2.0 200 ", "call-r", "2 UPDATE"))
	// the same media again: no post
	userReq("UPDATE", 4, "", sdpBody("10.100.1.1", 40120), calleeSDP(50100))

	// forged UPDATEs for a dialog this P-CSCF does not have
	for i, tag := range []string{"caller-call-r", "attacker"} {
		cs := fmt.Sprintf("%d UPDATE", 30+i)
		user.send(t, pcscf, inDialog("UPDATE", "sip:callee@"+guardNext, guardCaller, fmt.Sprintf("forged-%d", i), routeR,
			"<sip:caller@ims.test>;tag="+tag, "<sip:callee@ims.test>;tag=victim-to", "victim-call", 30+i, "", sdpBody("10.100.1.1", 40680+i)))
		fu := atNext("a forged UPDATE at the next hop", is("UPDATE ", "victim-call", cs))
		next.send(t, pcscf, reply(fu, "200 OK", "", calleeSDP(50100)))
		await("the 200 to a forged UPDATE", is("SIP/2.0 200 ", "victim-call", cs))
	}
	next.send(t, pcscf, inDialog("UPDATE", "sip:caller@"+guardCaller, guardNext, "forged-in", []string{rr[1]},
		"<sip:callee@ims.test>;tag=victim-to", "<sip:caller@ims.test>;tag=caller-call-r", "victim-call", 40, "", sdpBody(calleeMIP, 50100)))
	fin := await("a forged UPDATE toward the user", is("UPDATE ", "victim-call", "40 UPDATE"))
	user.send(t, pcscf, userContact(reply(fin, "200 OK", "", sdpBody("10.100.1.1", 40690))))
	atNext("the user's answer to a forged UPDATE at the next hop", is("SIP/2.0 200 ", "victim-call", "40 UPDATE"))

	// call-s: the user is called (pre-loaded Route, INVITE with SDP); its
	// answer comes in a reliable 183
	body := calleeSDP(50200)
	next.send(t, pcscf, "INVITE sip:caller@"+guardCaller+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardNext+";branch=z9hG4bK-term-s\r\n"+
		"Route: <sip:"+guardPCSCF+";lr>\r\n"+
		"Record-Route: <sip:"+guardNext+";lr>\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=other-s\r\nTo: <sip:caller@ims.test>\r\n"+
		"Call-ID: call-s\r\nCSeq: 1 INVITE\r\nContact: <sip:callee@"+guardNext+">\r\n"+contentType(body)+
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	invS := await("call-s's INVITE at the user", is("INVITE ", "call-s", "1 INVITE"))
	user.send(t, pcscf, userContact(reliable(reply(invS, "183 Session Progress", "user-s", sdpBody("10.100.1.1", 40130)), 1)))
	atNext("the user's reliable 183 at the next hop", isStatus("183", "call-s"))
	// its second reliable 18x with the same answer: no new post
	user.send(t, pcscf, userContact(reliable(reply(invS, "183 Session Progress", "user-s", sdpBody("10.100.1.1", 40130)), 2)))
	atNext("the user's second reliable 183 at the next hop", isStatus("183", "call-s"))
	user.send(t, pcscf, userContact(reply(invS, "200 OK", "user-s", "")))
	atNext("the user's 200 (no SDP) at the next hop", isStatus("200", "call-s"))
	rrS := sipHeaders(invS, "Record-Route") // the P-CSCF's, the S-CSCF's
	if len(rrS) != 2 {
		t.Fatalf("call-s's INVITE at the user has Record-Route %q, want the P-CSCF's and the S-CSCF's", rrS)
	}
	fromS, toS := "<sip:caller@ims.test>;tag=user-s", "<sip:callee@ims.test>;tag=other-s"
	user.send(t, pcscf, inDialog("UPDATE", "sip:callee@"+guardNext, guardCaller, "s-upd", rrS, fromS, toS, "call-s", 1, "", sdpBody("10.100.1.1", 40140)))
	updS := atNext("the user's UPDATE of call-s at the next hop", is("UPDATE ", "call-s", "1 UPDATE"))
	next.send(t, pcscf, reply(updS, "200 OK", "", calleeSDP(50200)))
	await("the 200 to the user's UPDATE of call-s", is("SIP/2.0 200 ", "call-s", "1 UPDATE"))
	next.send(t, pcscf, inDialog("UPDATE", "sip:caller@"+guardCaller, guardNext, "s-cupd", rrS[:1],
		toS, fromS, "call-s", 2, "", sdpBody(calleeMIP, 50200)))
	updS2 := await("the other side's UPDATE of call-s at the user", is("UPDATE ", "call-s", "2 UPDATE"))
	user.send(t, pcscf, userContact(reply(updS2, "200 OK", "", sdpBody("10.100.1.1", 40150))))
	atNext("the user's answer to the UPDATE of call-s at the next hop", is("SIP/2.0 200 ", "call-s", "2 UPDATE"))

	// call-d: the user calls without SDP; the offer comes in a reliable
	// 183, the user's answer in its PRACK
	user.send(t, pcscf, invite("call-d", ""))
	invD := atNext("call-d's INVITE at the next hop", is("INVITE ", "call-d", "1 INVITE"))
	next.send(t, pcscf, withSCSCF(reliable(reply(invD, "183 Session Progress", "callee-d", calleeSDP(50300)), 1)))
	d183 := await("call-d's reliable 183 (the offer) at the user", isStatus("183", "call-d"))
	rrD := sipHeaders(d183, "Record-Route")
	if len(rrD) != 2 {
		t.Fatalf("call-d's 183 has Record-Route %q, want the S-CSCF's and the P-CSCF's", rrD)
	}
	user.send(t, pcscf, inDialog("PRACK", "sip:callee@"+guardNext, guardCaller, "d-prack", []string{rrD[1], rrD[0]},
		"<sip:caller@ims.test>;tag=caller-call-d", "<sip:callee@ims.test>;tag=callee-d", "call-d", 2, "RAck: 1 1 INVITE\r\n", sdpBody("10.100.1.1", 40160)))
	prD := atNext("call-d's PRACK with the answer at the next hop", is("PRACK ", "call-d", "2 PRACK"))
	next.send(t, pcscf, reply(prD, "200 OK", "", ""))
	await("the 200 to call-d's PRACK", is("SIP/2.0 200 ", "call-d", "2 PRACK"))
	next.send(t, pcscf, withSCSCF(reply(invD, "200 OK", "callee-d", "")))
	await("call-d's 200 (no SDP) at the user", is("SIP/2.0 200 ", "call-d", "1 INVITE"))

	// call-e: the hook answers the caller's /start at the reliable 183 with
	// 500; the 200 without SDP posts it again
	user.send(t, pcscf, invite("call-e", sdpBody("10.100.1.1", 40170)))
	invE := atNext("call-e's INVITE at the next hop", is("INVITE ", "call-e", "1 INVITE"))
	next.send(t, pcscf, withSCSCF(reliable(reply(invE, "183 Session Progress", "callee-e", calleeSDP(50400)), 1)))
	await("call-e's reliable 183 at the user", isStatus("183", "call-e"))
	next.send(t, pcscf, withSCSCF(reply(invE, "200 OK", "callee-e", "")))
	await("call-e's 200 (no SDP) at the user", is("SIP/2.0 200 ", "call-e", "1 INVITE"))

	// call-d2: the user calls without SDP, a reliable 180 and the user's
	// PRACK without SDP, the offer in the 200, the answer from 40180 in the
	// ACK (the caller's /start there: the PRACK left the mark)
	user.send(t, pcscf, invite("call-d2", ""))
	invD2 := atNext("call-d2's INVITE at the next hop", is("INVITE ", "call-d2", "1 INVITE"))
	next.send(t, pcscf, withSCSCF(reliable(reply(invD2, "180 Ringing", "callee-d2", ""), 1)))
	d180 := await("call-d2's reliable 180 at the user", isStatus("180", "call-d2"))
	rrD2 := sipHeaders(d180, "Record-Route")
	if len(rrD2) != 2 {
		t.Fatalf("call-d2's 180 has Record-Route %q, want the S-CSCF's and the P-CSCF's", rrD2)
	}
	routeD2 := []string{rrD2[1], rrD2[0]}
	fromD2, toD2 := "<sip:caller@ims.test>;tag=caller-call-d2", "<sip:callee@ims.test>;tag=callee-d2"
	user.send(t, pcscf, inDialog("PRACK", "sip:callee@"+guardNext, guardCaller, "d2-prack", routeD2, fromD2, toD2, "call-d2", 2, "RAck: 1 1 INVITE\r\n", ""))
	prD2 := atNext("call-d2's PRACK (no SDP) at the next hop", is("PRACK ", "call-d2", "2 PRACK"))
	next.send(t, pcscf, reply(prD2, "200 OK", "", ""))
	await("the 200 to call-d2's PRACK", is("SIP/2.0 200 ", "call-d2", "2 PRACK"))
	next.send(t, pcscf, withSCSCF(reply(invD2, "200 OK", "callee-d2", calleeSDP(50500))))
	await("call-d2's 200 (the offer) at the user", is("SIP/2.0 200 ", "call-d2", "1 INVITE"))
	user.send(t, pcscf, inDialog("ACK", "sip:callee@"+guardNext, guardCaller, "d2-ack", routeD2, fromD2, toD2, "call-d2", 1, "", sdpBody("10.100.1.1", 40180)))
	atNext("call-d2's ACK (the answer) at the next hop", is("ACK ", "call-d2", "1 ACK"))

	// call-f: the S-CSCF forked the call to two contacts of the user here
	// (same Call-ID and From tag, two branches): fork a sends a reliable 183
	// from 40190, fork b answers 200 from 40191 (its media replaces the
	// callee's half: /update), fork a is cancelled and answers 487 (no
	// callee /end: the answered call keeps its rules)
	fork := func(branch string) string {
		return "INVITE sip:caller@" + guardCaller + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + guardNext + ";branch=z9hG4bK-" + branch + "\r\n" +
			"Route: <sip:" + guardPCSCF + ";lr>\r\n" +
			"Record-Route: <sip:" + guardNext + ";lr>\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=other-f\r\nTo: <sip:caller@ims.test>\r\n" +
			"Call-ID: call-f\r\nCSeq: 1 INVITE\r\nContact: <sip:callee@" + guardNext + ">\r\n" + contentType(body) +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	viaIs := func(branch string) func(string) bool {
		return func(m string) bool {
			return is("INVITE ", "call-f", "1 INVITE")(m) && strings.Contains(m, "z9hG4bK-"+branch)
		}
	}
	next.send(t, pcscf, fork("fork-a"))
	invFA := await("call-f's fork a at the user", viaIs("fork-a"))
	next.send(t, pcscf, fork("fork-b"))
	invFB := await("call-f's fork b at the user", viaIs("fork-b"))
	user.send(t, pcscf, userContact(reliable(reply(invFA, "183 Session Progress", "user-fa", sdpBody("10.100.1.1", 40190)), 1)))
	atNext("fork a's reliable 183 at the next hop", isStatus("183", "call-f"))
	user.send(t, pcscf, userContact(reply(invFB, "200 OK", "user-fb", sdpBody("10.100.1.1", 40191))))
	atNext("fork b's 200 at the next hop", isStatus("200", "call-f"))
	next.send(t, pcscf, "CANCEL sip:caller@"+guardCaller+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+guardNext+";branch=z9hG4bK-fork-a\r\n"+
		"Route: <sip:"+guardPCSCF+";lr>\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:callee@ims.test>;tag=other-f\r\nTo: <sip:caller@ims.test>\r\n"+
		"Call-ID: call-f\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n")
	await("fork a's CANCEL at the user", func(m string) bool { return strings.HasPrefix(m, "CANCEL ") })
	user.send(t, pcscf, userContact(reply(invFA, "487 Request Terminated", "user-fa", "")))
	atNext("fork a's 487 at the next hop", isStatus("487", "call-f"))

	// call-g: the user is called; the hook answers its /start at the
	// reliable 183 (from 40200) with 500; its 200 without SDP posts it again
	next.send(t, pcscf, strings.ReplaceAll(fork("term-g"), "call-f", "call-g"))
	invG := await("call-g's INVITE at the user", is("INVITE ", "call-g", "1 INVITE"))
	user.send(t, pcscf, userContact(reliable(reply(invG, "183 Session Progress", "user-g", sdpBody("10.100.1.1", 40200)), 1)))
	atNext("call-g's reliable 183 at the next hop", isStatus("183", "call-g"))
	user.send(t, pcscf, userContact(reply(invG, "200 OK", "user-g", "")))
	atNext("call-g's 200 (no SDP) at the next hop", isStatus("200", "call-g"))

	checkToUser(t, "user", got)
	posts := hookPosts()
	t.Logf("hook posts: %q", posts)
	want := map[string]int{
		"start role=caller call=call-r port=40100":  1,
		"update role=caller call=call-r port=40110": 1,
		"update role=caller call=call-r port=40120": 1,
		"start role=callee call=call-s port=40130":  1,
		"update role=callee call=call-s port=40140": 1,
		"update role=callee call=call-s port=40150": 1,
		"start role=caller call=call-d port=40160":  1,
		"start role=caller call=call-e port=40170":  2,
		"start role=caller call=call-d2 port=40180": 1,
		"start role=callee call=call-f port=40190":  1,
		"update role=callee call=call-f port=40191": 1,
		"start role=callee call=call-g port=40200":  2,
	}
	seen := postCounts(t, posts)
	if !maps.Equal(seen, want) {
		t.Errorf("hook posts %v, want %v", seen, want)
	}
}

// checkToUser: every message the P-CSCF's user (who) got names only the
// entry as media address, and none has a multipart body.
func checkToUser(t *testing.T, who string, got []string) {
	t.Helper()
	for _, m := range got {
		line, _, _ := strings.Cut(m, "\r\n")
		t.Logf("%s got %q (Call-ID %v, CSeq %v) c=%v", who, line, sipHeaders(m, "Call-ID"), sipHeaders(m, "CSeq"), sdpConn(m))
		if bad := leaks(m); len(bad) > 0 {
			t.Errorf("%s got %q (Call-ID %v, CSeq %v) with %q, want only the entry %s: its media would go around the chain",
				who, line, sipHeaders(m, "Call-ID"), sipHeaders(m, "CSeq"), bad, guardEntry)
		}
		if strings.Contains(m, "multipart/") {
			t.Errorf("%s got %q (Call-ID %v) with a multipart body", who, line, sipHeaders(m, "Call-ID"))
		}
	}
}

// postCounts counts the hook's posts as "OP role=R call=ID port=P" (the
// Call-ID decoded); a start or update must carry the user's address.
func postCounts(t *testing.T, posts []string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, p := range posts {
		path, q, _ := strings.Cut(p, "?")
		v, err := url.ParseQuery(q)
		id, _ := hex.DecodeString(v.Get("call"))
		if err != nil || v.Get("ip") != "10.100.1.1" && !strings.HasSuffix(path, "/end") {
			t.Errorf("hook post %q: not the user's media address", p)
		}
		seen[fmt.Sprintf("%s role=%s call=%s port=%s", path[strings.LastIndex(path, "/")+1:], v.Get("role"), id, v.Get("port"))]++
	}
	return seen
}
