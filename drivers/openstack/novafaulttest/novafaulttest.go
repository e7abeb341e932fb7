// Package novafaulttest owns a fault-injecting HTTP proxy on loopback for
// the real-Nova tests of drivers/openstack: it sits between a driver's
// compute client and the real Nova API and fails the requests a Rule
// names by method, path pattern and count — refused with a status the
// proxy answers itself (Nova never sees the request: a 409, a 503, a
// quota 403), or forwarded to Nova and then lost (Nova did the work, the
// client gets no answer: the connection dropped, or held until the client
// gave up or a delay passed). Every other request is forwarded as it
// came. It counts, per method and path, the requests that reached Nova,
// so a test can say what Nova was asked to do besides what Nova lists
// afterwards. The next-page links of a paginated list are Nova's own
// absolute URLs, so pages after the first (more than Nova's max_limit
// servers, 1000) bypass the proxy: neither failed nor counted — unless
// the proxy rewrites them (Rewrite). StartEach puts a proxy in front of
// each service of a cloud (Keystone, Nova, Glance) whose answers name the
// proxies instead of the services, so a client that authenticates through
// the Keystone proxy finds the other proxies in its service catalog. A
// test helper: production code may not import it (scripts/check-pure.sh).
package novafaulttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Action is what a Rule does to a request it fails.
type Action int

const (
	// Refuse answers Status and Body itself; Nova never sees the request.
	Refuse Action = iota
	// Drop forwards the request to Nova, waits for Nova's answer and then
	// closes the client's connection without a byte of it: the work is
	// done, the answer lost (the client reads EOF). Not for GET, HEAD,
	// OPTIONS or TRACE (nor a rule of any method): Go's transport sends
	// an idempotent request again, unseen, when a reused connection
	// closes before its answer, so the client would see success (Fail
	// panics).
	Drop
	// Hold forwards the request to Nova and holds Nova's answer for Delay
	// before writing it, or, with Delay 0, until the client gives up (its
	// request timeout): the work is done, the answer late or lost.
	Hold
)

func (a Action) String() string {
	switch a {
	case Refuse:
		return "refuse"
	case Drop:
		return "drop"
	case Hold:
		return "hold"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Rule fails requests: those whose method is Method ("" = any) and whose
// URL path matches Path, after the first Skip of them, Times of them (0 =
// every one after Skip).
type Rule struct {
	Method string
	Path   *regexp.Regexp
	Skip   int
	Times  int
	Action Action
	// Status and Body are Refuse's answer (a JSON body as Nova writes it).
	Status int
	Body   string
	// Delay is how long Hold holds Nova's answer (0: until the client
	// gives up).
	Delay time.Duration
}

func (r *Rule) String() string {
	return fmt.Sprintf("%s %s %s (skip %d, times %d)", r.Action, r.Method, r.Path, r.Skip, r.Times)
}

// rule is a Rule and how many requests it matched and failed.
type rule struct {
	Rule
	matched, fired int
}

// ForwardTimeout bounds a forwarded request and the read of Nova's
// answer (a hung Nova gets the client a 502, not a handler stuck for
// good).
const ForwardTimeout = 2 * time.Minute

// Proxy forwards requests to one Nova API (its scheme and host), failing
// those its rules pick.
type Proxy struct {
	target    *url.URL
	srv       *http.Server
	ln        net.Listener
	client    *http.Client
	timeout   time.Duration // ForwardTimeout; the unit tests' is short
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	rules     []*rule
	forwarded map[string]int // "METHOD path" -> requests that reached Nova
	answered  map[string]int // "METHOD status path" -> those Nova answered with status
	rewrites  []rewrite
}

// rewrite replaces a base URL (scheme://host) in the answers.
type rewrite struct{ from, to string }

// Start listens on 127.0.0.1 (a free port) and forwards to target, a
// URL whose scheme and host are Nova's (e.g. a compute client's Endpoint).
func Start(target string) (*Proxy, error) { return start(target, ForwardTimeout) }

func start(target string, timeout time.Duration) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("novafaulttest: target %q: want a URL with scheme and host (%v)", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("novafaulttest: listen: %w", err)
	}
	p := &Proxy{target: u, ln: ln, timeout: timeout, done: make(chan struct{}), forwarded: map[string]int{}, answered: map[string]int{},
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// StartEach starts one proxy per target (the base URLs of one cloud's
// services: Keystone, Nova, Glance), each of whose answers names the
// proxies instead of the targets (Rewrite): the service catalog of a token
// that the Keystone proxy passes on points the client at the Nova and
// Glance proxies, and Nova's next-page links stay on its proxy. On an
// error the proxies started are closed.
func StartEach(targets ...string) ([]*Proxy, error) {
	ps := make([]*Proxy, 0, len(targets))
	for _, t := range targets {
		p, err := Start(t)
		if err != nil {
			for _, q := range ps {
				_ = q.Close()
			}
			return nil, err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		for _, q := range ps {
			p.Rewrite(q.target.Scheme+"://"+q.target.Host, q.URL())
		}
	}
	return ps, nil
}

// Rewrite makes the proxy replace base URL from (scheme://host, not
// followed by another digit of a port) with to in every answer it
// forwards: the body and the Location header.
func (p *Proxy) Rewrite(from, to string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrites = append(p.rewrites, rewrite{from, to})
}

// rewritten is b with the proxy's rewrites applied.
func (p *Proxy) rewritten(b []byte) []byte {
	p.mu.Lock()
	rw := p.rewrites
	p.mu.Unlock()
	for _, r := range rw {
		b = replaceBase(b, []byte(r.from), []byte(r.to))
	}
	return b
}

// replaceBase replaces every from in b that no digit follows (the port
// of from does not go on) with to.
func replaceBase(b, from, to []byte) []byte {
	var out []byte
	for {
		i := bytes.Index(b, from)
		if i < 0 {
			return append(out, b...)
		}
		end := i + len(from)
		out = append(out, b[:i]...)
		if end < len(b) && b[end] >= '0' && b[end] <= '9' {
			out = append(out, from...)
		} else {
			out = append(out, to...)
		}
		b = b[end:]
	}
}

// URL is the proxy's base URL (http://127.0.0.1:port).
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Via returns endpoint (a URL of the target) rewritten to go through the
// proxy: same path, the proxy's scheme and host.
func (p *Proxy) Via(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("novafaulttest: endpoint %q: %w", endpoint, err)
	}
	if u.Host != p.target.Host {
		return "", fmt.Errorf("novafaulttest: endpoint %q is not on the proxy's target %s", endpoint, p.target.Host)
	}
	u.Scheme, u.Host = "http", p.ln.Addr().String()
	return u.String(), nil
}

// Close stops the proxy: a held answer's connection is closed without
// it (the client sees a lost answer, not an empty one), Nova's idle
// connections too. A second Close returns the first's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.closeErr = p.srv.Shutdown(ctx)
		p.client.CloseIdleConnections()
	})
	return p.closeErr
}

// Fail adds r (rules are tried in the order added; the first that fires
// takes the request) and returns the func that removes it again. It
// panics on a Drop of an idempotent method or of any method (see Drop).
func (p *Proxy) Fail(r Rule) (remove func()) {
	if r.Action == Drop {
		switch r.Method {
		case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			panic(fmt.Sprintf("novafaulttest: Rule.Method %q with Drop: Go's transport retries an idempotent request on a closed reused connection unseen; name a POST, PUT, PATCH or DELETE, or use Refuse or Hold", r.Method))
		}
	}
	if r.Path == nil {
		r.Path = regexp.MustCompile(`.`)
	}
	rr := &rule{Rule: r}
	p.mu.Lock()
	p.rules = append(p.rules, rr)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range p.rules {
			if x == rr {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
				return
			}
		}
	}
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Fired is how many requests the rules that are in place failed.
func (p *Proxy) Fired() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.rules {
		n += r.fired
	}
	return n
}

// Forwarded is how many requests with method whose path matches path
// reached Nova, counted when Nova answered (failed by Drop or Hold
// included, Refuse not; one Nova could not be sent is not).
func (p *Proxy) Forwarded(method string, path *regexp.Regexp) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.forwarded {
		m, pth, _ := strings.Cut(k, " ")
		if m == method && path.MatchString(pth) {
			n += c
		}
	}
	return n
}

// Answered is how many of the requests Forwarded counts Nova answered
// with status (a 401: the token refused; a 202: a create taken).
func (p *Proxy) Answered(method string, path *regexp.Regexp, status int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.answered {
		m, rest, _ := strings.Cut(k, " ")
		st, pth, _ := strings.Cut(rest, " ")
		if m == method && st == strconv.Itoa(status) && path.MatchString(pth) {
			n += c
		}
	}
	return n
}

// pick returns the rule that fails req, or nil, counting.
func (p *Proxy) pick(req *http.Request) *rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if (r.Method != "" && r.Method != req.Method) || !r.Path.MatchString(req.URL.Path) {
			continue
		}
		r.matched++
		if r.matched <= r.Skip || (r.Times > 0 && r.fired >= r.Times) {
			continue
		}
		r.fired++
		return r
	}
	return nil
}

// unfire takes back r's count of a request whose fault never happened
// (Nova could not be reached: the client got a 502).
func (p *Proxy) unfire(r *rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.fired--
}

// ServeHTTP forwards req to Nova unless a rule fails it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r := p.pick(req)
	if r != nil && r.Action == Refuse {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "close")
		w.WriteHeader(r.Status)
		_, _ = io.WriteString(w, r.Body)
		return
	}
	status, header, body, err := p.forward(req)
	if err != nil {
		if r != nil {
			p.unfire(r)
		}
		http.Error(w, "novafaulttest: "+err.Error(), http.StatusBadGateway)
		return
	}
	if r != nil {
		switch r.Action {
		case Drop:
			drop(w)
			return
		case Hold:
			var after <-chan time.Time
			if r.Delay > 0 {
				t := time.NewTimer(r.Delay)
				defer t.Stop()
				after = t.C
			}
			select {
			case <-after:
			case <-req.Context().Done(): // the client gave up: its answer is lost
				return
			case <-p.done: // closing: the answer is lost, not an empty 200
				drop(w)
				return
			}
		}
	}
	for k, vs := range header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// forward sends req to Nova, whatever happens to the client meanwhile
// (Nova does the work of a request whose client gave up), within the
// proxy's forward timeout, and reads the whole answer; it counts req as
// reached Nova once Nova answered.
func (p *Proxy) forward(req *http.Request) (int, http.Header, []byte, error) {
	in, err := io.ReadAll(req.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read the request: %w", err)
	}
	u := *p.target
	u.Path, u.RawPath, u.RawQuery = req.URL.Path, req.URL.RawPath, req.URL.RawQuery
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), p.timeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(in))
	if err != nil {
		return 0, nil, nil, err
	}
	out.Header = req.Header.Clone()
	out.Header.Del("Connection")
	// the proxy's transport asks for gzip itself and unpacks the answer,
	// which a rewrite needs in plain text
	out.Header.Del("Accept-Encoding")
	resp, err := p.client.Do(out)
	if err != nil {
		return 0, nil, nil, err
	}
	p.mu.Lock()
	p.forwarded[req.Method+" "+req.URL.Path]++
	p.answered[req.Method+" "+strconv.Itoa(resp.StatusCode)+" "+req.URL.Path]++
	p.mu.Unlock()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read Nova's answer: %w", err)
	}
	h := resp.Header.Clone()
	h.Del("Content-Length")
	h.Del("Connection")
	if loc := h.Get("Location"); loc != "" {
		h.Set("Location", string(p.rewritten([]byte(loc))))
	}
	return resp.StatusCode, h, p.rewritten(body), nil
}

// drop closes the client's connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("novafaulttest: the server cannot hijack connections")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}
