// Package kamrpc is a minimal client for Kamailio's JSON-RPC over one UDP
// datagram (jsonrpcs module, transport 4): one request datagram, one reply
// datagram. drivers/local uses it for readiness (core.version) and drain
// checks; the statistics agent uses it for load counters (stats.fetch).
//
// Kamailio 5.6 answers stats.fetch with the statistic names written
// "group.name" and the values as strings:
//
//	{"jsonrpc":"2.0","result":{"tmx.active_transactions":"0",...},"id":1}
//
// ParseStats turns that into map["tmx:active_transactions"]int64.
package kamrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultTimeout bounds one call when the context has no earlier deadline.
const DefaultTimeout = time.Second

// Client calls one Kamailio instance's JSON-RPC datagram socket.
type Client struct {
	Addr netip.AddrPort
	// Timeout bounds one call (DefaultTimeout when zero).
	Timeout time.Duration
	id      atomic.Int64
}

// New returns a client for addr.
func New(addr netip.AddrPort) *Client { return &Client{Addr: addr} }

type request struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  []any  `json:"params,omitempty"`
	ID      int64  `json:"id"`
}

// Error is an error object returned by Kamailio.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("kamailio rpc error %d: %s", e.Code, e.Message) }

// Call sends method(params...) and returns the raw "result" of the reply.
//
// The timeout runs from the moment the request is sent, and a reply that
// reached the socket before the call looked at it counts even when the
// deadline has passed meanwhile: on a loaded host the calling goroutine can
// wait for the CPU longer than Kamailio takes to answer (seen: a reply 25 ms
// after the request, the read deadline 500 ms after it still missed), and a
// caller that judges an instance by its answers (the statistics agent, the
// readiness probe) must not blame it for its own lateness. Only a reply that
// never came is a missing one.
func (c *Client) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	id := c.id.Add(1)
	body, err := json.Marshal(request{JSONRPC: "2.0", Method: method, Params: params, ID: id})
	if err != nil {
		return nil, fmt.Errorf("kamrpc: %s: %w", method, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.Addr))
	if err != nil {
		return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(body); err != nil {
		return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, err)
	}
	afterSend(id)
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	if errors.Is(ctx.Err(), context.Canceled) { // cancelled before the deadline above was set
		return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, ctx.Err())
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, ctx.Err())
			}
			// the deadline passed: take a reply that is already there
			for {
				m, ok := pending(conn, buf)
				if !ok {
					break
				}
				if res, rid, perr := ParseReply(buf[:m]); perr == nil && rid == id {
					return res, nil
				}
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, ctx.Err())
			}
			return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, err)
		}
		res, rid, err := ParseReply(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("kamrpc: %s to %v: %w", method, c.Addr, err)
		}
		if rid != id {
			continue // a late reply to an earlier call
		}
		return res, nil
	}
}

// afterSend is a test hook: it runs once the request with id is sent.
var afterSend = func(id int64) {}

// pending returns a datagram already waiting in conn's receive queue,
// without waiting for one (ok false when the queue is empty).
func pending(conn *net.UDPConn, buf []byte) (n int, ok bool) {
	if conn.SetReadDeadline(time.Time{}) != nil {
		return 0, false
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, false
	}
	_ = rc.Read(func(fd uintptr) bool {
		m, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
		n, ok = m, err == nil
		return true // never wait
	})
	return n, ok
}

// Stats fetches statistics by "group:name" (stats.fetch) and returns them
// keyed "group:name".
func (c *Client) Stats(ctx context.Context, names ...string) (map[string]int64, error) {
	params := make([]any, len(names))
	for i, n := range names {
		params[i] = n
	}
	res, err := c.Call(ctx, "stats.fetch", params...)
	if err != nil {
		return nil, err
	}
	return ParseStats(res)
}

// Version calls core.version; it is the readiness probe.
func (c *Client) Version(ctx context.Context) (string, error) {
	res, err := c.Call(ctx, "core.version")
	if err != nil {
		return "", err
	}
	var v string
	if err := json.Unmarshal(res, &v); err != nil {
		return "", fmt.Errorf("kamrpc: core.version: result is not a string: %w", err)
	}
	return v, nil
}

// ParseReply decodes one JSON-RPC reply datagram into its result and id. A
// reply carrying an error object returns it as *Error.
func ParseReply(b []byte) (json.RawMessage, int64, error) {
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  json.RawMessage `json:"result"`
		Error   *Error          `json:"error"`
		ID      *int64          `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, 0, fmt.Errorf("reply: not a JSON-RPC object: %w", err)
	}
	if r.JSONRPC != "2.0" {
		return nil, 0, fmt.Errorf("reply: jsonrpc: %q, want \"2.0\"", r.JSONRPC)
	}
	if r.ID == nil {
		return nil, 0, errors.New("reply: id: missing")
	}
	if r.Error != nil {
		return nil, *r.ID, r.Error
	}
	if len(r.Result) == 0 {
		return nil, *r.ID, errors.New("reply: result: missing")
	}
	return r.Result, *r.ID, nil
}

// ParseStats decodes a stats.fetch result: an object of statistic name to
// value, the value a decimal string or a number. Names "group.name" become
// "group:name" (the form stats.fetch takes).
func ParseStats(result json.RawMessage) (map[string]int64, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(result, &raw); err != nil {
		return nil, fmt.Errorf("stats: result: not an object: %w", err)
	}
	out := make(map[string]int64, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return nil, fmt.Errorf("stats: %q: value %s is neither a string nor a number", k, v)
			}
			s = n.String()
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("stats: %q: value %q: not an integer", k, s)
		}
		name := k
		if i := strings.IndexByte(k, '.'); i > 0 && !strings.Contains(k, ":") {
			name = k[:i] + ":" + k[i+1:]
		}
		out[name] = n
	}
	return out, nil
}
