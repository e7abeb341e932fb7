package local_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A REGISTER the S-CSCF answers with an error gets exactly one final
// response, and its retransmission that response again (RFC 3261 §17.2.2):
//   - one the registrar refuses (Contact "*" with a non-zero Expires: 400).
//     save() answers it through its transaction (t_newtran); the script's
//     sl_reply_error() then sent a second, stateless final response;
//   - one with a To tag and no Route (404 Not here): a stateless reply left
//     its transaction unanswered, so its retransmission got nothing;
//   - one whose To URI does not parse (400 Bad To URI). Registrar 5.6's save()
//     answers it with the code of the last REGISTER its process handled: 200
//     OK after the accepted REGISTER just before it, with nothing saved;
//   - one whose AOR is too long (the registrar's own 500);
//   - one whose request URI does not parse: tm takes no transaction for it,
//     so it was saved (200 OK) and counted once per copy; it gets
//     sl_reply_error's 479 now, once per copy.
//
// The S-CSCF runs one SIP worker (Children 1), which reads the next datagram
// only once the script of the one before ended: after the answer to an
// OPTIONS sent behind the request and its retransmission, every response to
// them is in. Real Kamailio; addresses of its own: dc55 (127.65.x.x), the UA
// on 127.0.0.155.
func TestSCSCFRegisterErrorsAnswerOnce(t *testing.T) {
	needRealSIP(t)
	const dc = "dc55"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s1 := oneSCSCF(ctx, t, dc, 1)
	ua := newRawUA(t, "127.0.0.155:5090")
	host := s1.SIP.Addr().String()
	aor := "<sip:once@" + host + ">"
	contact := "Contact: <sip:once@" + ua.local() + ">"
	ruri := "sip:" + host
	for i, c := range []struct {
		name   string
		status int
		ruri   string
		to     string
		more   []string
	}{
		{"refused by the registrar", 400, ruri, aor, []string{"Contact: *", "Expires: 600"}},
		{"with a To tag and no Route", 404, ruri, aor + ";tag=x", []string{contact, "Expires: 600"}},
		{"accepted", 200, ruri, aor, []string{contact, "Expires: 600"}},
		{"whose To URI does not parse", 400, ruri, "<sip:once@" + host + ":5x60>", []string{contact, "Expires: 600"}},
		{"whose AOR is too long", 500, ruri, "<sip:" + strings.Repeat("a", 300) + "@" + host + ">", []string{contact, "Expires: 600"}},
		{"whose request URI does not parse", 479, ruri + ":5x60", aor, []string{contact, "Expires: 600"}},
	} {
		callID := fmt.Sprintf("reg%d@once", i)
		req := sipReq("REGISTER", c.ruri, "UDP "+ua.local(), fmt.Sprintf("z9hG4bKonce%d", i), aor+";tag=o", c.to, callID, 1, c.more...)
		m := ua.mark()
		ua.send(s1.SIP.String(), req...)
		if r, _ := ua.wait(m, 5*time.Second, "final response to the REGISTER "+c.name, final(callID, "REGISTER")); r.Status() != c.status {
			t.Fatalf("REGISTER %s: %s, want %d", c.name, r.First, c.status)
		}
		ua.send(s1.SIP.String(), req...) // its retransmission
		probe := fmt.Sprintf("opt%d@once", i)
		ua.send(s1.SIP.String(), sipReq("OPTIONS", "sip:"+host, "UDP "+ua.local(), fmt.Sprintf("z9hG4bKonceo%d", i), aor+";tag=p", "<sip:"+host+">", probe, 1)...)
		ua.wait(m, 5*time.Second, "200 to the OPTIONS behind the REGISTER "+c.name, final(probe, "OPTIONS"))
		n := ua.count(m, final(callID, "REGISTER"))
		same := ua.count(m, func(r rawMsg) bool { return final(callID, "REGISTER")(r) && r.Status() == c.status })
		if n != 2 || same != 2 {
			t.Fatalf("REGISTER %s and its retransmission: %d final responses (%d of them %d), want %d twice (one each); got %q",
				c.name, n, same, c.status, c.status, ua.firstLines()[m:])
		}
	}
}
