package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// Connect in virtual time against a fake Keystone on loopback: its
// transient failures are retried with the driver's backoff on the given
// clock, refused credentials and a bad configuration are not, and the
// caller's context ends the retries.

// hookClock is a virtual clock that counts the timers set on it (Connect's
// backoff waits) and calls onWait(n) as the n-th (from 1) is set, before
// its wait begins.
type hookClock struct {
	*clock.Virtual
	waits  atomic.Int32
	onWait func(n int)
}

func newHookClock(onWait func(n int)) *hookClock {
	return &hookClock{Virtual: clock.NewVirtual(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)), onWait: onWait}
}

func (c *hookClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	n := int(c.waits.Add(1))
	if c.onWait != nil {
		c.onWait(n)
	}
	return c.Virtual.AfterFunc(d, f)
}

// answer is Keystone answering status with body.
func answer(status int, body string) keystoneFault {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// resetConn closes the client's connection without an answer.
func resetConn(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// holdPastTimeout answers nothing until the client gives up (the request's
// context ends when its connection closes, seen once the body is read).
func holdPastTimeout(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// connectConfig is one datacenter on writeClouds' cloud "lab", with
// testConfig's retry policy (3 retries from 100 ms: waits of 100, 200 and
// 400 ms).
func connectConfig(timeout time.Duration) Config {
	c := Config{DCs: map[string]DCConfig{"dc-a": {Cloud: "lab"}}, Retries: 3, RetryBase: Duration(100 * time.Millisecond)}
	if timeout > 0 {
		c.RequestTimeout = Duration(timeout)
	}
	return c
}

// connectIn runs Connect with clk's timers fired as they fall due and
// returns the virtual time it waited beside its results.
func connectIn(clk *hookClock, cfg Config) (map[string]Clients, time.Duration, error) {
	start := clk.Now()
	type res struct {
		c   map[string]Clients
		err error
	}
	r := inVirtualTime(clk.Virtual, func() res { c, err := Connect(ctx, cfg, clk); return res{c, err} })
	return r.c, clk.Now().Sub(start), r.err
}

func TestConnectRetriesTransientKeystoneFailures(t *testing.T) {
	unavailable := answer(503, `<html><body><h1>503 Service Unavailable</h1></body></html>`)
	for _, tc := range []struct {
		name    string
		bare    bool // auth_url without /v3: version discovery first
		faults  []keystoneFault
		timeout time.Duration
		// Keystone's requests, the virtual time waited
		requests int
		waited   time.Duration
	}{
		{name: "503 twice", faults: []keystoneFault{unavailable, unavailable}, requests: 3, waited: 300 * time.Millisecond},
		{name: "429 then 500", faults: []keystoneFault{answer(429, `{}`), answer(500, `{}`)}, requests: 3, waited: 300 * time.Millisecond},
		{name: "connection reset twice", faults: []keystoneFault{resetConn, resetConn}, requests: 3, waited: 300 * time.Millisecond},
		{name: "no answer within the request timeout", faults: []keystoneFault{holdPastTimeout}, timeout: 2 * time.Second, // the retry that succeeds has the same real-time bound: roomy under -race at load 20+
			requests: 2, waited: 100 * time.Millisecond},
		{name: "version discovery 503", bare: true, faults: []keystoneFault{unavailable}, requests: 3, waited: 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := startKeystone(t, tc.faults...)
			url := ks.url + "/v3"
			if tc.bare {
				url = ks.url
			}
			writeClouds(t, url)
			clk := newHookClock(nil)
			clients, waited, err := connectIn(clk, connectConfig(tc.timeout))
			if err != nil {
				t.Fatalf("Connect with Keystone failing %s: %v, want it retried", tc.name, err)
			}
			if got := clients["dc-a"].Compute.Endpoint; got != ks.url+"/RegionOne/compute/v2.1/" {
				t.Errorf("compute endpoint %s", got)
			}
			if requests, tokens := ks.counts(); requests != tc.requests || tokens != 1 || waited != tc.waited {
				t.Errorf("%d requests to Keystone, %d tokens, waited %v; want %d, 1, %v", requests, tokens, waited, tc.requests, tc.waited)
			}
		})
	}
}

// A failed attempt closes its connections: after Keystone answered 503
// twice (keep-alive answers, so each attempt's connection would stay
// idle in its dropped transport), only the returned client's is open.
func TestConnectClosesFailedAttemptsConnections(t *testing.T) {
	unavailable := answer(503, `{"error": {"code": 503}}`)
	ks := startKeystone(t, unavailable, unavailable)
	writeClouds(t, ks.url+"/v3")
	if _, _, err := connectIn(newHookClock(nil), connectConfig(0)); err != nil {
		t.Fatal(err)
	}
	if requests, _ := ks.counts(); requests != 3 {
		t.Fatalf("%d requests to Keystone, want 3 (2 refused, 1 token)", requests)
	}
	ks.waitOpen(1)
}

// Keystone not listening (restarting) at the first two attempts, then
// listening from the second backoff wait on: the third attempt connects.
func TestConnectWaitsForKeystoneToListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused until the fake listens there
	ks := &keystoneFake{t: t, url: "http://" + addr}
	writeClouds(t, ks.url+"/v3")
	clk := newHookClock(func(n int) {
		if n != 2 {
			return
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again at %s: %v", addr, err)
			return
		}
		srv := httptest.NewUnstartedServer(ks)
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		t.Cleanup(srv.Close)
	})
	if _, waited, err := connectIn(clk, connectConfig(0)); err != nil || waited != 300*time.Millisecond {
		t.Fatalf("Connect while Keystone restarts: %v after %v, want connected after waits of 100 and 200 ms", err, waited)
	}
	if requests, tokens := ks.counts(); requests != 1 || tokens != 1 {
		t.Fatalf("Keystone saw %d requests and issued %d tokens, want 1, 1", requests, tokens)
	}
}

func TestConnectGivesUpNamingKeystone(t *testing.T) {
	t.Run("503 throughout", func(t *testing.T) {
		down := answer(503, `<html><body><h1>503 Service Unavailable</h1></body></html>`)
		ks := startKeystone(t, down, down, down, down)
		writeClouds(t, ks.url+"/v3")
		clk := newHookClock(nil)
		_, waited, err := connectIn(clk, connectConfig(0))
		for _, want := range []string{`datacenter dc-a (cloud "lab")`, "gave up after 3 retries", IdentityService, "authenticate at " + ks.url, "HTTP 503"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Connect with Keystone answering 503 throughout: %v, want an error with %q", err, want)
			}
		}
		if requests, _ := ks.counts(); !errors.Is(err, errTransient) || requests != 4 || waited != 700*time.Millisecond {
			t.Fatalf("%d requests to Keystone after %v (transient: %v), want 4 (3 retries) after 100+200+400 ms", requests, waited, errors.Is(err, errTransient))
		}
	})
	t.Run("refused throughout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		writeClouds(t, url+"/v3")
		clk := newHookClock(nil)
		_, waited, err := connectIn(clk, connectConfig(0))
		for _, want := range []string{"gave up after 3 retries", IdentityService, "connection refused"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Connect with Keystone not listening: %v, want an error with %q", err, want)
			}
		}
		if n := clk.waits.Load(); n != 3 || waited != 700*time.Millisecond {
			t.Fatalf("%d waits, %v, want 3 waits, 700ms", n, waited)
		}
	})
}

// Credentials Keystone refuses are never retried: one request, no wait.
func TestConnectDoesNotRetryRefusedCredentials(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{401, `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`},
		{403, `{"error": {"code": 403, "title": "Forbidden", "message": "You are not authorized to perform the requested action."}}`},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			ks := startKeystone(t, answer(tc.status, tc.body))
			writeClouds(t, ks.url+"/v3")
			clk := newHookClock(nil)
			_, _, err := connectIn(clk, connectConfig(0))
			if err == nil || errors.Is(err, errTransient) || !strings.Contains(err.Error(), IdentityService) ||
				!strings.Contains(err.Error(), `datacenter dc-a (cloud "lab")`) || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tc.status)) {
				t.Fatalf("Connect with the credentials refused %d: %v, want a permanent error naming the %s and HTTP %d", tc.status, err, IdentityService, tc.status)
			}
			if requests, _ := ks.counts(); requests != 1 || clk.waits.Load() != 0 {
				t.Fatalf("%d requests to Keystone, %d waits; want 1, 0 (not retried)", requests, clk.waits.Load())
			}
		})
	}
}

// The caller's context ending during a backoff wait ends Connect at once,
// with Keystone's last failure.
func TestConnectStopsWhenItsContextEnds(t *testing.T) {
	ks := startKeystone(t, answer(503, `{}`), answer(503, `{}`))
	writeClouds(t, ks.url+"/v3")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clk := newHookClock(func(int) { cancel() }) // the caller gives up as the first wait begins
	// the clock is never advanced: only the context can end the wait
	_, err := Connect(cctx, connectConfig(0), clk)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), IdentityService) {
		t.Fatalf("Connect cancelled during its wait: %v, want context.Canceled with Keystone's last error", err)
	}
	if requests, _ := ks.counts(); requests != 1 {
		t.Fatalf("%d requests to Keystone, want 1", requests)
	}
}
