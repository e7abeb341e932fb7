package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedBackend serves a versioned state whose State blocks until release
// is closed, and counts the State calls.
type gatedBackend struct {
	Backend // nil: only State and StateVersion are called
	release chan struct{}
	states  atomic.Int32
}

func (g *gatedBackend) StateVersion(context.Context) (uint64, error) { return 7, nil }

func (g *gatedBackend) State(context.Context) (State, error) {
	g.states.Add(1)
	<-g.release
	return State{Interval: 3, Step: "idle", Instances: []Instance{{ID: "i1", DC: "dc0", VNF: "ids", State: "normal"}}}, nil
}

// Requests that miss the cache for the same version share one fetch and
// encoding of the state (no thundering herd when the state changes under
// 200 pollers).
func TestStateFillShared(t *testing.T) {
	const n = 20
	g := &gatedBackend{release: make(chan struct{})}
	s, err := New(Config{Backend: g, AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	etags := make([]string, n)
	for i := range n {
		wg.Go(func() {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest("GET", Prefix+"/state", nil))
			codes[i], etags[i] = w.Code, w.Header().Get("ETag")
		})
	}
	deadline := time.Now().Add(10 * time.Second) // bounds a broken implementation, not a timing assertion
	for {
		s.fillMu.Lock()
		waiting := 0
		if s.fill != nil {
			waiting = s.fill.waiters
		}
		s.fillMu.Unlock()
		if waiting == n-1 {
			break
		}
		if time.Now().After(deadline) {
			close(g.release)
			wg.Wait()
			t.Fatalf("%d requests wait for the fill under way, want %d (State called %d times)", waiting, n-1, g.states.Load())
		}
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	if got := g.states.Load(); got != 1 {
		t.Fatalf("State called %d times for one version, want 1", got)
	}
	for i := range n {
		if codes[i] != http.StatusOK || etags[i] != `"s7"` {
			t.Fatalf("request %d: %d, ETag %q", i, codes[i], etags[i])
		}
	}
	if s.fill != nil {
		t.Fatal("the finished fill is still registered")
	}
}

func TestAcceptsGzip(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   bool
	}{
		{"absent", nil, false},
		{"empty", []string{""}, false},
		{"gzip", []string{"gzip"}, true},
		{"list", []string{"deflate, gzip;q=0.8, br"}, true},
		{"upper case", []string{"GZIP"}, true},
		{"x-gzip", []string{"x-gzip"}, true},
		{"any coding", []string{"*"}, true},
		{"refused with q=0", []string{"gzip;q=0"}, false},
		{"refused with q=0.000 and spaces", []string{"gzip ; q = 0.000"}, false},
		{"q=0.001 accepts", []string{"gzip;q=0.001"}, true},
		{"identity only", []string{"identity"}, false},
		{"second header line", []string{"br", "gzip"}, true},
		{"gzip as a parameter is not the coding", []string{"br;gzip"}, false},
		{"prefix is not the coding", []string{"gzipx"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := acceptsGzip(tc.values); got != tc.want {
				t.Fatalf("acceptsGzip(%q) = %v, want %v", tc.values, got, tc.want)
			}
		})
	}
}

// FuzzAcceptsGzip: any Accept-Encoding value is parsed without a panic,
// and a value that names no gzip coding and no "*" never selects gzip.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0", "*;q=0.5", "deflate, br", ",,;;=", "gzip;q=", "gzip;q=0.", "x-gzip; q=1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := acceptsGzip([]string{v})
		if got && !containsFold(v, "gzip") && !containsFold(v, "*") {
			t.Fatalf("acceptsGzip(%q) selects gzip", v)
		}
	})
}

func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }
