package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
)

// Fixed tokens (tests are deterministic; production tokens come from
// api.GenerateToken).
var (
	adminToken = api.TokenPrefix + strings.Repeat("A", 43)
	readToken  = api.TokenPrefix + strings.Repeat("R", 43)
	epoch      = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

func now() time.Time { return epoch }

func testTokens(t testing.TB) *api.TokenStore {
	t.Helper()
	s, err := api.NewTokenStore([]api.TokenEntry{
		{Name: "ops", Scope: api.ScopeAdmin, SHA256: api.HashToken(adminToken)},
		{Name: "grafana", Scope: api.ScopeRead, SHA256: api.HashToken(readToken)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newServer(t testing.TB, b api.Backend, edit func(*api.Config)) *api.Server {
	t.Helper()
	cfg := api.Config{Backend: b, Tokens: testTokens(t), Logger: quietLogger()}
	if edit != nil {
		edit(&cfg)
	}
	s, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startPaper serves the paper backend on 127.0.0.1 (httptest listens on
// loopback, port 0) and closes it at the end of the test.
func startPaper(t testing.TB) (*httptest.Server, *apitest.Backend) {
	t.Helper()
	b := apitest.Paper(now)
	ts := httptest.NewServer(newServer(t, b, nil))
	t.Cleanup(ts.Close)
	return ts, b
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Fatalf("status %d: Content-Type %q, want %q; body %s", r.status, ct, api.ProblemContentType, r.body)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.status {
		t.Fatalf("problem status %d, HTTP status %d", p.Status, r.status)
	}
	return p
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// call sends one request; body may be a string, []byte, or a value to
// encode as JSON (then Content-Type is application/json unless ct says
// otherwise).
func call(t testing.TB, hc *http.Client, method, url, token, ct string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
		if ct == "" {
			ct = "application/json"
		}
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// noRedirect is an HTTP client that shows 307 answers instead of following
// them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// startHandler serves h on 127.0.0.1 until the test ends and returns its
// base URL.
func startHandler(t testing.TB, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
