package local_test

// A minimal SIP caller over UDP for latency measurement: SIPp's response
// times are quantized to its scheduler tick (several ms), this one times
// INVITE → 200 with the monotonic clock. One call at a time: INVITE, (1xx),
// 200, ACK along the Record-Route set, BYE, 200.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

type miniUAC struct {
	conn  *net.UDPConn
	local string // ip:port
	proxy *net.UDPAddr
	seq   int
	buf   []byte
}

func newMiniUAC(local, proxy string) (*miniUAC, error) {
	la, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return nil, err
	}
	pa, err := net.ResolveUDPAddr("udp", proxy)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	return &miniUAC{conn: c, local: c.LocalAddr().String(), proxy: pa, buf: make([]byte, 65535)}, nil
}

func (u *miniUAC) Close() error { return u.conn.Close() }

type sipMsg struct {
	code    int
	cseq    string
	toTag   string
	contact string
	rr      []string
}

func parseSIP(b []byte) (sipMsg, error) {
	var m sipMsg
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	f := strings.Fields(lines[0])
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return m, fmt.Errorf("not a response: %q", lines[0])
	}
	m.code, _ = strconv.Atoi(f[1])
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "cseq":
			m.cseq = v
		case "to", "t":
			if i := strings.Index(v, "tag="); i >= 0 {
				m.toTag = strings.FieldsFunc(v[i+4:], func(r rune) bool { return r == ';' || r == '>' || r == ' ' })[0]
			}
		case "contact", "m":
			if i, j := strings.Index(v, "<"), strings.Index(v, ">"); i >= 0 && j > i {
				m.contact = v[i+1 : j]
			}
		case "record-route":
			for _, r := range strings.Split(v, ",") {
				m.rr = append(m.rr, strings.TrimSpace(r))
			}
		}
	}
	return m, nil
}

// await reads responses until a final one for method.
func (u *miniUAC) await(method string, deadline time.Time) (sipMsg, error) {
	for {
		_ = u.conn.SetReadDeadline(deadline)
		n, _, err := u.conn.ReadFromUDP(u.buf)
		if err != nil {
			return sipMsg{}, err
		}
		m, err := parseSIP(u.buf[:n])
		if err != nil || !strings.HasSuffix(m.cseq, method) || m.code < 200 {
			continue
		}
		return m, nil
	}
}

// call places one call to aor and returns the INVITE → 200 time.
func (u *miniUAC) call(aor string, timeout time.Duration) (time.Duration, error) {
	u.seq++
	id := fmt.Sprintf("%d-%d@%s", time.Now().UnixNano(), u.seq, u.local)
	tag := strconv.Itoa(u.seq)
	sdp := "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
	ruri := "sip:" + aor + "@" + u.proxy.String()
	req := func(method, uri string, cseq int, toTag string, routes []string, body string) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s%s%d\r\nMax-Forwards: 70\r\n", method, uri, u.local, tag, method, time.Now().UnixNano())
		fmt.Fprintf(&b, "From: <sip:caller@%s>;tag=%s\r\nTo: <sip:%s@%s>", u.local, tag, aor, u.proxy)
		if toTag != "" {
			b.WriteString(";tag=" + toTag)
		}
		fmt.Fprintf(&b, "\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:caller@%s>\r\n", id, cseq, method, u.local)
		for _, r := range routes {
			b.WriteString("Route: " + r + "\r\n")
		}
		if body != "" {
			b.WriteString("Content-Type: application/sdp\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		return []byte(b.String())
	}
	deadline := time.Now().Add(timeout)
	start := time.Now()
	if _, err := u.conn.WriteToUDP(req("INVITE", ruri, 1, "", nil, sdp), u.proxy); err != nil {
		return 0, err
	}
	ok, err := u.await("INVITE", deadline)
	setup := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("INVITE: %w", err)
	}
	if ok.code != 200 {
		return 0, fmt.Errorf("INVITE: %d", ok.code)
	}
	routes := make([]string, len(ok.rr))
	for i, r := range ok.rr { // the caller's route set is the Record-Route in reverse
		routes[len(ok.rr)-1-i] = r
	}
	if _, err := u.conn.WriteToUDP(req("ACK", ok.contact, 1, ok.toTag, routes, ""), u.proxy); err != nil {
		return 0, err
	}
	if _, err := u.conn.WriteToUDP(req("BYE", ok.contact, 2, ok.toTag, routes, ""), u.proxy); err != nil {
		return 0, err
	}
	bye, err := u.await("BYE", deadline)
	if err != nil {
		return 0, fmt.Errorf("BYE: %w", err)
	}
	if bye.code != 200 {
		return 0, fmt.Errorf("BYE: %d", bye.code)
	}
	return setup, nil
}
