package transport

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// ProtocolPath is the URL path of the protocol endpoint on a local controller.
const ProtocolPath = "/v1/protocol"

// MaxBodyBytes bounds a request or response body (a step-4 decision carries
// the full path set: n² pairs of m+2 names).
const MaxBodyBytes = 4 << 20

// ParseRequest decodes and checks a protocol request body. The error names
// the field that is wrong.
func ParseRequest(r io.Reader) (protocol.Request, error) {
	var req protocol.Request
	if err := DecodeStrict(r, &req, "request body"); err != nil {
		return protocol.Request{}, err
	}
	switch req.Step {
	case protocol.StepAcquire, protocol.StepEnter:
		if req.Decision != nil {
			return protocol.Request{}, fmt.Errorf("decision: only step %d carries a decision, this is step %d", protocol.StepBroadcast, req.Step)
		}
	case protocol.StepBroadcast:
		if req.Decision == nil {
			return protocol.Request{}, errors.New("decision: step 4 (broadcast) needs a decision")
		}
		if req.Decision.DC != req.DC {
			return protocol.Request{}, fmt.Errorf("decision.dc: %q does not match header dc %q", req.Decision.DC, req.DC)
		}
	default:
		return protocol.Request{}, fmt.Errorf("step: %d is not a request step (2, 4 or 5)", req.Step)
	}
	if req.DC == "" {
		return protocol.Request{}, errors.New("dc: empty datacenter name")
	}
	return req, nil
}

// ParseResponse decodes a protocol response body and checks that it answers
// req (same header).
func ParseResponse(r io.Reader, req protocol.Header) (protocol.Response, error) {
	var resp protocol.Response
	dec := json.NewDecoder(r)
	if err := dec.Decode(&resp); err != nil {
		return protocol.Response{}, fmt.Errorf("response body: %w", err)
	}
	if resp.Header != req {
		return protocol.Response{}, fmt.Errorf("response header: %+v does not answer %+v", resp.Header, req)
	}
	if req.Step == protocol.StepAcquire && resp.Provision == nil && resp.Error == "" {
		return protocol.Response{}, errors.New("provision: a step-2 answer needs a provision report")
	}
	return resp, nil
}

// Handler serves the protocol endpoint of a local controller: POST
// ProtocolPath with a JSON protocol.Request and "Authorization: Bearer
// <token>", answered with the participant's JSON protocol.Response.
type Handler struct {
	p     Participant
	token []byte
}

// NewHandler wraps a participant. token must not be empty.
func NewHandler(p Participant, token string) (*Handler, error) {
	if token == "" {
		return nil, errors.New("transport handler: token is empty")
	}
	return &Handler{p: p, token: []byte(token)}, nil
}

// WriteError answers with code and an RFC 9457 problem document
// (application/problem+json: type, title, status, detail = msg), as the
// REST API does.
func WriteError(w http.ResponseWriter, code int, msg string) {
	writeProblem(w, code, msg, nil)
}

// problem is an RFC 9457 problem document with the extension members the
// internal endpoints use.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	NotLeader bool   `json:"notLeader,omitempty"`
}

func writeProblem(w http.ResponseWriter, code int, msg string, edit func(*problem)) {
	p := problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: msg}
	if edit != nil {
		edit(&p)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(p)
}

// jsonContentType reports whether a request body is declared JSON
// (application/json, or a +json type, with parameters).
func jsonContentType(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// AcceptPost lets a request through when it is a POST with "Authorization:
// Bearer <token>" and a JSON body (Content-Type application/json); otherwise
// it answers 405, 401 or 415 and returns false. Every
// endpoint between ims-orch processes (protocol, scale, workload, agents'
// statistics) starts with it.
func AcceptPost(w http.ResponseWriter, r *http.Request, token []byte) bool {
	return acceptPostWith(w, r, func(tok string) bool { return subtle.ConstantTimeCompare([]byte(tok), token) == 1 })
}

// acceptPostWith is AcceptPost with the bearer token checked by valid.
func acceptPostWith(w http.ResponseWriter, r *http.Request, valid func(token string) bool) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		WriteError(w, http.StatusMethodNotAllowed, "method must be POST")
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !valid(tok) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ims-orch"`)
		WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return false
	}
	if !jsonContentType(r) {
		WriteError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: the body must be application/json", r.Header.Get("Content-Type")))
		return false
	}
	return true
}

// BodyError answers a request body that did not parse: 413 when it was too
// large (http.MaxBytesReader), else 400 with the parser's message.
func BodyError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		code = http.StatusRequestEntityTooLarge
	}
	WriteError(w, code, err.Error())
}

// DecodeStrict decodes exactly one JSON object from r into v, refusing
// unknown fields and trailing data; what names the body in the error.
func DecodeStrict(r io.Reader, v any, what string) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: trailing data after the JSON object", what)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != ProtocolPath {
		WriteError(w, http.StatusNotFound, "not found")
		return
	}
	if !AcceptPost(w, r, h.token) {
		return
	}
	req, err := ParseRequest(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		BodyError(w, err)
		return
	}
	resp := h.p.Handle(req)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// HTTPConfig configures the global side's HTTP transport.
type HTTPConfig struct {
	// Endpoints maps a DC name to its local controller's base URL
	// (e.g. "https://tokyo-lc:8443").
	Endpoints map[string]string
	// Token is the bearer token sent with every request.
	Token string
	// Timeout bounds one request (default 2 s). A request that times out is
	// simply unanswered: the engine's re-send timer runs independently.
	Timeout time.Duration
	// Client is the HTTP client (default: a client with its own transport).
	Client *http.Client
}

// HTTP is the global side's HTTP transport.
type HTTP struct {
	cfg    HTTPConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Transport = (*HTTP)(nil)

// NewHTTP checks the configuration and returns the transport.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.Token == "" {
		return nil, errors.New("transport.HTTPConfig.Token: empty")
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("transport.HTTPConfig.Endpoints: no datacenter")
	}
	for dc, u := range cfg.Endpoints {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("transport.HTTPConfig.Endpoints[%q]: %q is not an http(s) URL", dc, u)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &HTTP{cfg: cfg, ctx: ctx, cancel: cancel}, nil
}

// Send posts the request on its own goroutine and delivers the answer or the
// error.
func (t *HTTP) Send(dc string, req protocol.Request, deliver Deliver) {
	base, ok := t.cfg.Endpoints[dc]
	if !ok {
		go deliver(protocol.Response{}, fmt.Errorf("transport: no endpoint for datacenter %q", dc))
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		body, err := json.Marshal(req)
		if err != nil {
			deliver(protocol.Response{}, err)
			return
		}
		resp, err := t.post(strings.TrimSuffix(base, "/")+ProtocolPath, body, req.Header)
		deliver(resp, err)
	}()
}

func (t *HTTP) post(url string, body []byte, h protocol.Header) (protocol.Response, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.Timeout)
	defer cancel()
	var resp protocol.Response
	err := t.postJSON(ctx, url, body, h.DC, func(r io.Reader) (err error) {
		resp, err = ParseResponse(r, h)
		return err
	})
	return resp, err
}

// postJSON posts a JSON body to url with the bearer token and hands the
// body of a 200 answer (at most MaxBodyBytes) to read; another status is an
// error naming dc and quoting the answer.
func (t *HTTP) postJSON(ctx context.Context, url string, body []byte, dc string, read func(io.Reader) error) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+t.cfg.Token)
	res, err := t.cfg.Client.Do(hr)
	if err != nil {
		return fmt.Errorf("transport: %s: %w", dc, err)
	}
	defer res.Body.Close()
	lr := io.LimitReader(res.Body, MaxBodyBytes)
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(lr, 512))
		return &StatusError{DC: dc, Code: res.StatusCode, Status: res.Status, Body: strings.TrimSpace(string(msg))}
	}
	err = read(lr)
	_, _ = io.Copy(io.Discard, lr) // let the connection be reused
	return err
}

// StatusError is a peer's answer other than 200 OK: its status and the
// start of its body (at most 512 bytes; a problem document's detail names
// what the peer refused, e.g. a field an older local controller does not
// know).
type StatusError struct {
	DC     string // the datacenter whose endpoint answered
	Code   int    // the HTTP status code
	Status string // the status line, e.g. "400 Bad Request"
	Body   string // the body's first 512 bytes, trimmed
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("transport: %s answered %s: %s", e.DC, e.Status, e.Body)
}

// Close cancels requests in flight and waits for their goroutines.
func (t *HTTP) Close() {
	t.cancel()
	t.wg.Wait()
	if tr, ok := t.cfg.Client.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}
