package local_test

// A raw SIP endpoint for the RFC behaviour tests: it sends hand-written
// requests and records every message it receives, so a test can count the
// responses where they arrive (exactly one final response, a CANCEL that
// reached the callee, the headers of a 200 to OPTIONS).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawMsg is one received SIP message.
type rawMsg struct {
	First string              // request or status line
	Hdr   map[string][]string // lower-case name → values, in order
	Raw   string
}

// Status is the status code of a response (0 for a request).
func (m rawMsg) Status() int {
	if !strings.HasPrefix(m.First, "SIP/2.0 ") {
		return 0
	}
	f := strings.Fields(m.First)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Method is the method of a request ("" for a response).
func (m rawMsg) Method() string {
	if strings.HasPrefix(m.First, "SIP/2.0 ") {
		return ""
	}
	return strings.Fields(m.First)[0]
}

// Get returns the first value of header name ("" when absent).
func (m rawMsg) Get(name string) string {
	if v := m.Hdr[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func parseRawSIP(raw []byte) (rawMsg, error) {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	if len(lines) == 0 || lines[0] == "" {
		return rawMsg{}, fmt.Errorf("empty SIP message")
	}
	m := rawMsg{First: lines[0], Hdr: map[string][]string{}, Raw: string(raw)}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		m.Hdr[k] = append(m.Hdr[k], strings.TrimSpace(v))
	}
	return m, nil
}

// rawUA is a SIP endpoint on one UDP socket (and optionally one TCP
// connection) that records what it receives.
type rawUA struct {
	t    testing.TB
	udp  *net.UDPConn
	tcp  net.Conn
	mu   sync.Mutex
	msgs []rawMsg
	ch   chan struct{}
}

func newRawUA(t testing.TB, addr string) *rawUA {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(mustAddrPort(t, addr)))
	if err != nil {
		t.Fatal(err)
	}
	ua := &rawUA{t: t, udp: c, ch: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			ua.got(buf[:n])
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		if ua.tcp != nil {
			_ = ua.tcp.Close()
		}
	})
	return ua
}

func mustAddrPort(t testing.TB, s string) (ap netip.AddrPort) {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func (ua *rawUA) got(b []byte) {
	m, err := parseRawSIP(b)
	if err != nil {
		return
	}
	ua.mu.Lock()
	ua.msgs = append(ua.msgs, m)
	ua.mu.Unlock()
	select {
	case ua.ch <- struct{}{}:
	default:
	}
}

// dialTCP opens the UA's TCP connection to addr (from the UA's own IP) and
// records every message arriving on it.
func (ua *rawUA) dialTCP(addr string) {
	ua.t.Helper()
	local := &net.TCPAddr{IP: ua.udp.LocalAddr().(*net.UDPAddr).IP}
	c, err := (&net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}).Dial("tcp", addr)
	if err != nil {
		ua.t.Fatal(err)
	}
	ua.tcp = c
	go func() {
		r := bufio.NewReader(c)
		for {
			var head bytes.Buffer
			clen := 0
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(l)
				if l == "\r\n" {
					break
				}
				if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "content-length") {
					clen, _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
			body := make([]byte, clen)
			if _, err := io.ReadFull(r, body); err != nil {
				return
			}
			ua.got(append(head.Bytes(), body...))
		}
	}()
}

// local returns the UA's UDP address "ip:port".
func (ua *rawUA) local() string { return ua.udp.LocalAddr().String() }

// send sends msg (lines joined with CRLF, Content-Length added) to addr over
// UDP, or over the UA's TCP connection when addr is "tcp".
func (ua *rawUA) send(addr string, lines ...string) {
	ua.t.Helper()
	msg := strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
	var err error
	if addr == "tcp" {
		_, err = ua.tcp.Write([]byte(msg))
	} else {
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(addr); err == nil {
			_, err = ua.udp.WriteToUDPAddrPort([]byte(msg), ap)
		}
	}
	if err != nil {
		ua.t.Fatal(err)
	}
}

// wait returns the first message received (from index from on) that match
// accepts, or fails the test after limit.
func (ua *rawUA) wait(from int, limit time.Duration, what string, match func(rawMsg) bool) (rawMsg, int) {
	ua.t.Helper()
	end := time.NewTimer(limit)
	defer end.Stop()
	for {
		ua.mu.Lock()
		for i := from; i < len(ua.msgs); i++ {
			if match(ua.msgs[i]) {
				m := ua.msgs[i]
				ua.mu.Unlock()
				return m, i
			}
		}
		ua.mu.Unlock()
		select {
		case <-ua.ch:
		case <-end.C:
			ua.t.Fatalf("%s: not received within %v; got %v", what, limit, ua.firstLines())
		}
	}
}

// count returns how many messages received from index from on match.
func (ua *rawUA) count(from int, match func(rawMsg) bool) int {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	n := 0
	for i := from; i < len(ua.msgs); i++ {
		if match(ua.msgs[i]) {
			n++
		}
	}
	return n
}

// mark is the number of messages received so far (a "from" for wait/count).
func (ua *rawUA) mark() int {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	return len(ua.msgs)
}

func (ua *rawUA) firstLines() []string {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	out := make([]string, len(ua.msgs))
	for i, m := range ua.msgs {
		out[i] = m.First
	}
	return out
}

// final matches a final response (≥ 200) to the request with Call-ID callID and CSeq method.
func final(callID, method string) func(rawMsg) bool {
	return func(m rawMsg) bool {
		return m.Status() >= 200 && m.Get("call-id") == callID && strings.HasSuffix(m.Get("cseq"), " "+method)
	}
}
