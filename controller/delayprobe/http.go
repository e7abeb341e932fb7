package delayprobe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Path is the probe endpoint of a local controller, under its DC prefix
// (/dc/<dc>/v1/probe).
const Path = "/v1/probe"

// Handler answers probes: 204 to GET or HEAD, nothing read, nothing kept.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "probe: method must be GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// HTTPTransport probes other local controllers over HTTP: the round-trip
// time of one GET on an open (kept-alive) connection, measured with the
// monotonic wall clock.
type HTTPTransport struct {
	Client *http.Client
	// URL returns the probe URL of a DC's local controller.
	URL func(dc string) (string, bool)
	// Token, if set, is sent as a bearer token.
	Token string
	// Timeout bounds one probe (default 2 s).
	Timeout time.Duration
}

// Probe implements Transport; the request runs on its own goroutine.
func (t *HTTPTransport) Probe(_, to string, done func(time.Duration, error)) {
	u, ok := t.URL(to)
	if !ok {
		done(0, fmt.Errorf("no probe URL for %q", to))
		return
	}
	go func() { done(t.probe(u)) }()
}

func (t *HTTPTransport) probe(u string) (time.Duration, error) {
	to := t.Timeout
	if to <= 0 {
		to = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), to)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	c := t.Client
	if c == nil {
		c = http.DefaultClient
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	rtt := time.Since(start)
	if resp.StatusCode != http.StatusNoContent {
		return 0, fmt.Errorf("probe %s: status %s", u, resp.Status)
	}
	return rtt, nil
}
