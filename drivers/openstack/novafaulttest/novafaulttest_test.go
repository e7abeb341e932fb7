package novafaulttest

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend is a stand-in Nova that counts the requests it got.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	got  []string
	seen chan string // each request, once handled
}

func newBackend(t *testing.T) *backend {
	b := &backend{seen: make(chan string, 16)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.got = append(b.got, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		b.mu.Unlock()
		w.Header().Set("X-Nova", "1")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"ok": true}`)
		b.seen <- r.Method + " " + r.URL.Path
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func startProxy(t *testing.T, b *backend) *Proxy {
	p, err := Start(b.URL + "/v2.1/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func do(ctx context.Context, t *testing.T, p *Proxy, method, path string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, p.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

var servers = regexp.MustCompile(`/servers$`)

// A Refuse rule answers the requests it picks itself — the second and
// third POST here, not GETs — and Nova sees only the others; Forwarded
// counts what reached Nova.
func TestRefuseAnswersWithoutNova(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	remove := p.Fail(Rule{Method: "POST", Path: servers, Skip: 1, Times: 2, Action: Refuse, Status: 409, Body: `{"conflictingRequest": {"message": "busy"}}`})
	want := []int{202, 409, 409, 202}
	for i, w := range want {
		code, body, err := do(context.Background(), t, p, "POST", "/v2.1/servers")
		if err != nil || code != w {
			t.Fatalf("POST %d: %d %q %v, want %d", i, code, body, err, w)
		}
	}
	if code, _, err := do(context.Background(), t, p, "GET", "/v2.1/servers?tags=x"); err != nil || code != 202 {
		t.Fatalf("GET: %d %v", code, err)
	}
	if got := b.requests(); len(got) != 3 || got[2] != "GET /v2.1/servers?tags=x" {
		t.Fatalf("Nova got %v, want 2 POSTs and the GET with its query", got)
	}
	if n := p.Forwarded("POST", servers); n != 2 {
		t.Fatalf("Forwarded POST = %d, want 2", n)
	}
	if n, m := p.Answered("POST", servers, 202), p.Answered("POST", servers, 409); n != 2 || m != 0 {
		t.Fatalf("Answered POST 202 = %d, 409 = %d; want 2 (Nova's), 0 (the proxy's own are not Nova's answers)", n, m)
	}
	if n := p.Fired(); n != 2 {
		t.Fatalf("Fired = %d, want 2", n)
	}
	remove()
	if n := p.Fired(); n != 0 {
		t.Fatalf("Fired after remove = %d, want 0", n)
	}
}

// Drop lets Nova do the work and loses the answer: the client gets an
// error, Nova got the request.
func TestDropLosesTheAnswerAfterNova(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	p.Fail(Rule{Method: "DELETE", Path: regexp.MustCompile(`^/v2.1/servers/[^/]+$`), Times: 1, Action: Drop})
	if _, _, err := do(context.Background(), t, p, "DELETE", "/v2.1/servers/abc"); err == nil {
		t.Fatal("the dropped DELETE got an answer")
	}
	if got := b.requests(); len(got) != 1 || got[0] != "DELETE /v2.1/servers/abc?" {
		t.Fatalf("Nova got %v, want the DELETE", got)
	}
	if code, _, err := do(context.Background(), t, p, "DELETE", "/v2.1/servers/abc"); err != nil || code != 202 {
		t.Fatalf("second DELETE: %d %v, want it answered (Times 1)", code, err)
	}
}

// Hold without a delay keeps Nova's answer until the client gives up;
// Nova has done the work by then.
func TestHoldUntilTheClientGivesUp(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	p.Fail(Rule{Method: "POST", Path: servers, Times: 1, Action: Hold})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-b.seen; cancel() }() // the client gives up once Nova did the work
	_, _, err := do(ctx, t, p, "POST", "/v2.1/servers")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("held POST: %v, want the client's cancellation", err)
	}
	if err := p.Close(); err != nil { // waits for the handler: Nova's answer is in
		t.Fatal(err)
	}
	if n := p.Forwarded("POST", servers); n != 1 {
		t.Fatalf("Forwarded = %d, want 1", n)
	}
}

// Hold with a delay writes Nova's answer (status, headers, body) late.
func TestHoldWithADelayAnswers(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	p.Fail(Rule{Path: servers, Action: Hold, Delay: time.Millisecond})
	code, body, err := do(context.Background(), t, p, "POST", "/v2.1/servers")
	if err != nil || code != 202 || body != `{"ok": true}` {
		t.Fatalf("held POST: %d %q %v, want Nova's 202", code, body, err)
	}
}

// Via rewrites an endpoint of the target onto the proxy, and refuses one
// of another host; Start wants a URL.
func TestViaAndStartCheckTheirURLs(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	got, err := p.Via(b.URL + "/v2.1/")
	if err != nil || got != p.URL()+"/v2.1/" {
		t.Fatalf("Via = %q, %v", got, err)
	}
	if _, err := p.Via("http://192.0.2.1:8774/v2.1/"); err == nil {
		t.Fatal("Via of another host: no error")
	}
	if _, err := Start("127.0.0.1:8774"); err == nil {
		t.Fatal("Start without a scheme: no error")
	}
}

// A request Nova could not be sent (Nova down) gets the client a 502 and
// counts neither as reached Nova nor as failed by the rule that picked it.
func TestUnreachableNovaCountsNothing(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	p.Fail(Rule{Method: "POST", Path: servers, Action: Drop})
	b.Close()
	code, _, err := do(context.Background(), t, p, "POST", "/v2.1/servers")
	if err != nil || code != http.StatusBadGateway {
		t.Fatalf("POST with Nova down: %d %v, want 502", code, err)
	}
	if n, f := p.Forwarded("POST", servers), p.Fired(); n != 0 || f != 0 {
		t.Fatalf("Forwarded %d, Fired %d with Nova down; want 0, 0", n, f)
	}
}

// A Nova that never answers costs the client a 502 after the forward
// timeout, and Close stops the proxy cleanly (no handler stuck in the
// forward).
func TestHungNovaIsBounded(t *testing.T) {
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer func() { hung.CloseClientConnections(); hung.Close() }() // a stuck forward must not hang the test
	p, err := start(hung.URL, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// a backstop for the client, far beyond the proxy's bound: without
	// the bound the client gives up first
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, err := do(ctx, t, p, "GET", "/v2.1/servers/detail")
	if err != nil || code != http.StatusBadGateway {
		t.Fatalf("GET of a hung Nova: %d %v, want the proxy's 502", code, err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// An answer held when the proxy closes is lost (the connection closed),
// not turned into an empty 200.
func TestCloseLosesAHeldAnswer(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	p.Fail(Rule{Method: "POST", Path: servers, Action: Hold})
	go func() { <-b.seen; _ = p.Close() }()
	code, body, err := do(context.Background(), t, p, "POST", "/v2.1/servers")
	if err == nil {
		t.Fatalf("held POST at Close: %d %q, want no answer", code, body)
	}
}

// Drop is refused for requests Go's transport would send again unseen.
func TestDropOfAnIdempotentMethodPanics(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b)
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "TRACE", ""} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), fmt.Sprintf("Rule.Method %q with Drop", m)) {
					t.Errorf("Drop of %q: panic %v, want one naming Rule.Method", m, r)
				}
			}()
			p.Fail(Rule{Method: m, Path: servers, Action: Drop})
		}()
	}
	p.Fail(Rule{Method: "DELETE", Path: servers, Action: Drop})() // allowed, removed
	p.Fail(Rule{Method: "GET", Path: servers, Action: Refuse, Status: 503})()
}

// StartEach's proxies name each other, not their targets, in what they
// pass on: a Keystone's service catalog sends the client to the Nova
// proxy (its requests then fail and count there), a Location header too;
// a gzipped answer is rewritten unpacked; a base URL that goes on with
// another digit (another port) is left as it is.
func TestStartEachRewritesTheTargetsToTheProxies(t *testing.T) {
	nova := newBackend(t)
	other := "http://127.0.0.1:1" // not a target
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := fmt.Sprintf(`{"token": {"catalog": [{"type": "compute", "endpoints": [{"url": "%s/v2.1"}]}, {"type": "other", "endpoints": [{"url": "%s0/x"}, {"url": "%s/y"}]}]}}`,
			nova.URL, nova.URL, other)
		w.Header().Set("Location", nova.URL+"/v2.1/servers/1")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, body)
			_ = zw.Close()
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(keystone.Close)
	ps, err := StartEach(keystone.URL, nova.URL+"/v2.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Cleanup(func() { _ = p.Close() })
	}
	kp, np := ps[0], ps[1]
	resp, err := http.Post(kp.URL()+"/v3/auth/tokens", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tok struct {
		Token struct {
			Catalog []struct {
				Endpoints []struct{ URL string }
			}
		}
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatalf("the rewritten catalog %q: %v", b, err)
	}
	want := []string{np.URL() + "/v2.1", nova.URL + "0/x", other + "/y"}
	var got []string
	for _, s := range tok.Token.Catalog {
		for _, e := range s.Endpoints {
			got = append(got, e.URL)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("catalog through the proxy: %v, want %v", got, want)
	}
	if loc := resp.Header.Get("Location"); loc != np.URL()+"/v2.1/servers/1" {
		t.Fatalf("Location through the proxy: %q, want the Nova proxy's", loc)
	}
	np.Fail(Rule{Method: "GET", Path: regexp.MustCompile(`/servers/detail$`), Action: Refuse, Status: 503, Body: `{}`})
	if code, _, err := do(context.Background(), t, np, "GET", "/v2.1/servers/detail"); err != nil || code != 503 {
		t.Fatalf("a request to the catalog's compute URL: %d %v, want the Nova proxy's 503", code, err)
	}
	if n := len(nova.requests()); n != 0 {
		t.Fatalf("Nova got %d requests, want none (refused by its proxy)", n)
	}
}
