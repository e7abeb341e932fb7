package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"gopkg.in/yaml.v3"
)

// Prefix is the path prefix of API version 1.
const Prefix = "/api/v1"

// DefaultMaxBodyBytes bounds a request body unless Config.MaxBodyBytes says
// otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Headers the API sets or reads.
const (
	// LeaderHeader carries the leader's API base URL on a follower's 307 or
	// 421 answer.
	LeaderHeader = "X-Ims-Orch-Leader"
	// ForwardedHeader marks a request a follower proxied to the leader; a
	// node that is not the leader either answers 421 instead of proxying it
	// again, so a request is forwarded at most once.
	ForwardedHeader = "X-Ims-Orch-Forwarded"
)

// LeaderMode says what a follower does with a write the Backend refused with
// *NotLeaderError.
type LeaderMode string

// Leader modes.
const (
	// LeaderProxy forwards the request to the leader's API and relays the
	// answer (the default): clients need not know who leads.
	LeaderProxy LeaderMode = "proxy"
	// LeaderRedirect answers 307 with Location on the leader; the client
	// repeats the request there (api/client does, keeping its token).
	LeaderRedirect LeaderMode = "redirect"
	// LeaderReject answers 421 Misdirected Request naming the leader.
	LeaderReject LeaderMode = "reject"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPIYAML returns the OpenAPI 3 document of the API (a copy).
func OpenAPIYAML() []byte { return bytes.Clone(openapiYAML) }

// Config configures a Server.
type Config struct {
	// Backend serves the data (required).
	Backend Backend
	// Tokens authenticates callers. Nil refuses to build a server unless
	// AllowUnauthenticated is set (development and tests only: then every
	// caller is admin).
	Tokens               *TokenStore
	AllowUnauthenticated bool
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// Leader says how a follower handles writes (LeaderProxy when empty).
	Leader LeaderMode
	// ProxyTransport carries proxied requests to the leader (e.g. with the
	// cluster's client certificate for mTLS); http.DefaultTransport when nil.
	ProxyTransport http.RoundTripper
	// Logger receives 5xx causes and proxy failures (slog.Default when nil).
	Logger *slog.Logger
}

// Server is the API's http.Handler. Mount it at the root of a listener (it
// serves /api/v1/..., /healthz and /readyz); the daemon may serve /metrics
// next to it.
type Server struct {
	cfg         Config
	router      chi.Router
	openapiJSON []byte
	stateCache  atomic.Pointer[encodedState]

	fillMu sync.Mutex
	fill   *stateFill // the cache fill under way, if any
}

// stateFill is one encoding of the state for a version; the requests that
// miss the cache for the same version wait for it instead of each fetching
// and encoding the state again.
type stateFill struct {
	version uint64
	done    chan struct{}
	waiters int // requests waiting for this fill (guarded by fillMu)
	c       *encodedState
	err     error
}

// New builds a server.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("api: a Backend is required")
	}
	if cfg.Tokens == nil && !cfg.AllowUnauthenticated {
		return nil, errors.New("api: a token store is required (AllowUnauthenticated is for development only)")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	switch cfg.Leader {
	case "":
		cfg.Leader = LeaderProxy
	case LeaderProxy, LeaderRedirect, LeaderReject:
	default:
		return nil, fmt.Errorf("api: leader mode %q must be %q, %q or %q", cfg.Leader, LeaderProxy, LeaderRedirect, LeaderReject)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := openapiJSON()
	if err != nil {
		return nil, fmt.Errorf("api: embedded openapi.yaml: %w", err)
	}
	s := &Server{cfg: cfg, openapiJSON: js}
	s.router = s.routes()
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Routes exposes the router (the OpenAPI test walks it).
func (s *Server) Routes() chi.Routes { return s.router }

// HTTPServer returns an *http.Server for s on addr with conservative
// timeouts; tlsCfg (from ServerTLSConfig) enables TLS: start it with
// ListenAndServeTLS("", "").
func (s *Server) HTTPServer(addr string, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no resource at %s", truncate(r.URL.Path))})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: ProblemMethod, Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("%s is not allowed on %s", truncate(r.Method), truncate(r.URL.Path))})
	})

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Health{Status: "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Get(Prefix+"/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapiYAML)
	})
	r.Get(Prefix+"/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapiJSON)
	})

	r.Group(func(r chi.Router) {
		r.Use(authMiddleware(s.cfg.Tokens, s.cfg.AllowUnauthenticated))
		r.Get(Prefix+"/datacenters", s.getDatacenters)
		r.Put(Prefix+"/datacenters", s.putDatacenters)
		r.Post(Prefix+"/datacenters/{dc}/drain", s.drain)
		r.Delete(Prefix+"/datacenters/{dc}/drain", s.undrain)
		r.Get(Prefix+"/delays", s.getDelays)
		r.Put(Prefix+"/delays", s.putDelays)
		r.Get(Prefix+"/vnf-types", s.getVNFTypes)
		r.Put(Prefix+"/vnf-types", s.putVNFTypes)
		r.Get(Prefix+"/chains", s.getChains)
		r.Put(Prefix+"/chains", s.putChains)
		r.Get(Prefix+"/policies", s.getPolicies)
		r.Get(Prefix+"/policies/{name}", s.getPolicy)
		r.Put(Prefix+"/policies/{name}", s.putPolicy)
		r.Delete(Prefix+"/policies/{name}", s.deletePolicy)
		r.Get(Prefix+"/state", s.getState)
		r.Get(Prefix+"/decisions", s.getDecisions)
		r.Post(Prefix+"/vnfs/{vnf}/scale", s.scale)
		r.Get(Prefix+"/operations/{id}", s.getOperation)
		s.membershipRoutes(r)
	})
	return r
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Logger.Error("api: handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError,
					Detail: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Backend.Ready(r.Context()); err != nil {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "not ready: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ready"})
}

// ---- encoding and decoding ----

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON encodes v into a pooled buffer first, so that the answer goes
// out with a Content-Length in as few writes as possible, and an encoding
// failure (a NaN in a Backend value) becomes a 500 instead of half a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		writeProblem(w, nil, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError,
			Detail: "the answer could not be encoded: " + err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// putDoc answers a PUT of a whole document: decode (strict, size-limited),
// validate, store through the Backend, and answer what changed. store
// returns the previous document and whether there was one.
func putDoc[D interface{ Validate() error }](s *Server, w http.ResponseWriter, r *http.Request,
	store func(ctx context.Context, in D) (prev D, existed bool, err error)) {
	var in D
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	prev, existed, err := store(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	writeJSON(w, http.StatusOK, putResult(existed, prev, in))
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// readBody reads a request body under the size limit after checking its
// media type. It writes the problem and returns false on failure. An empty
// body is allowed only when !required (then the result is nil).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, required bool) ([]byte, bool) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body has %d bytes, at most %d allowed", r.ContentLength, s.cfg.MaxBodyBytes), Field: "body"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit), Field: "body"})
			return nil, false
		}
		badField(w, r, "body", "could not be read: "+err.Error())
		return nil, false
	}
	if len(body) == 0 && !required {
		return nil, true
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		writeProblem(w, r, Problem{Type: ProblemMediaType, Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("Content-Type %q is not supported; send application/json", truncate(ct)), Field: "Content-Type"})
		return nil, false
	}
	if len(body) == 0 {
		badField(w, r, "body", "is required (a JSON object)")
		return nil, false
	}
	return body, true
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data, and turns decoding errors into a FieldError.
func decodeStrict(body []byte, v any) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "body", Reason: "has data after the JSON value"}
	}
	return nil
}

func jsonFieldError(err error) *FieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &FieldError{Field: "body", Reason: fmt.Sprintf("is not valid JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &FieldError{Field: field, Reason: fmt.Sprintf("must be %s, got JSON %s", jsonKind(typ.Type.String()), typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &FieldError{Field: "body", Reason: "ends before the JSON value is complete"}
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(rest)
		if name == "" {
			name = rest
		}
		return &FieldError{Field: name, Reason: "is not a known field"}
	}
	return &FieldError{Field: "body", Reason: strings.TrimPrefix(msg, "json: ")}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	}
	return "an object"
}

// decodeBody reads, decodes and validates a request body. It writes the
// problem and returns false on failure.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, required bool) ([]byte, bool) {
	body, ok := s.readBody(w, r, required)
	if !ok {
		return nil, false
	}
	if body == nil {
		return nil, true
	}
	if fe := decodeStrict(body, v); fe != nil {
		badField(w, r, fe.Field, fe.Reason)
		return nil, false
	}
	return body, true
}

func invalid(w http.ResponseWriter, r *http.Request, err error) {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		badField(w, r, "body", err.Error())
		return
	}
	p := Problem{Type: ProblemValidation, Status: http.StatusBadRequest, Title: "Invalid request",
		Detail: ve.Error(), Errors: ve.Errors}
	if len(ve.Errors) == 1 {
		p.Field = ve.Errors[0].Field
	}
	writeProblem(w, r, p)
}

// fail maps a Backend error to an answer. body is the request body, needed
// when the request is proxied to the leader.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	var nl *NotLeaderError
	var ve *ValidationError
	switch {
	case errors.As(err, &nl):
		s.notLeader(w, r, body, nl)
	case errors.As(err, &ve):
		p := Problem{Type: ProblemUnprocessable, Status: http.StatusUnprocessableEntity,
			Title: "Request does not fit the configuration", Detail: ve.Error(), Errors: ve.Errors}
		if len(ve.Errors) == 1 {
			p.Field = ve.Errors[0].Field
		}
		writeProblem(w, r, p)
	case errors.Is(err, ErrNotFound):
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
	case errors.Is(err, ErrConflict):
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
	case errors.Is(err, ErrNoLeader), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable, Detail: err.Error()})
	default:
		s.cfg.Logger.Error("api: backend error", "method", r.Method, "path", r.URL.Path, "err", err)
		writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError,
			Detail: "internal error (logged on the server)"})
	}
}

// notLeader forwards a request to the leader or tells the client where the
// leader is.
func (s *Server) notLeader(w http.ResponseWriter, r *http.Request, body []byte, nl *NotLeaderError) {
	if nl.LeaderAddr == "" {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "this node is not the leader and no leader is known; retry shortly"})
		return
	}
	target, err := url.Parse(nl.LeaderAddr)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		s.cfg.Logger.Error("api: backend gave an unusable leader address", "leader", nl.LeaderAddr)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "this node is not the leader and the leader's API address is unknown"})
		return
	}
	leaderURL := strings.TrimSuffix(nl.LeaderAddr, "/")
	mode := s.cfg.Leader
	if mode == LeaderProxy && r.Header.Get(ForwardedHeader) != "" {
		mode = LeaderReject // forwarded once already: never forward in a loop
	}
	switch mode {
	case LeaderProxy:
		s.proxy(w, r, body, target)
	case LeaderRedirect:
		w.Header().Set(LeaderHeader, leaderURL)
		w.Header().Set("Location", leaderURL+r.URL.RequestURI())
		writeProblem(w, r, Problem{Type: ProblemTemporaryRedirect, Status: http.StatusTemporaryRedirect,
			Detail: "this node is not the leader; repeat the request at " + leaderURL, Leader: leaderURL})
	default:
		w.Header().Set(LeaderHeader, leaderURL)
		writeProblem(w, r, Problem{Type: ProblemNotLeader, Status: http.StatusMisdirectedRequest,
			Detail: "this node is not the leader; send the request to " + leaderURL, Leader: leaderURL})
	}
}

func (s *Server) proxy(w http.ResponseWriter, r *http.Request, body []byte, target *url.URL) {
	out := r.Clone(r.Context())
	out.Body = http.NoBody
	out.ContentLength = 0
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(ForwardedHeader, "1")
		},
		Transport: s.cfg.ProxyTransport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.cfg.Logger.Warn("api: proxy to leader failed", "leader", target.String(), "err", err)
			w.Header().Set("Retry-After", "1")
			writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusBadGateway,
				Detail: "this node is not the leader and the leader could not be reached"})
		},
	}
	rp.ServeHTTP(w, out)
}

// ---- handlers ----

func (s *Server) getDatacenters(w http.ResponseWriter, r *http.Request) {
	dcs, err := s.cfg.Backend.Datacenters(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, DatacenterList{Datacenters: nonNil(dcs)})
}

func (s *Server) putDatacenters(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in DatacenterList) (DatacenterList, bool, error) {
		prev, err := s.cfg.Backend.SetDatacenters(ctx, in.Datacenters)
		return DatacenterList{Datacenters: nonNil(prev)}, prev != nil, err
	})
}

func (s *Server) getDelays(w http.ResponseWriter, r *http.Request) {
	m, err := s.cfg.Backend.Delays(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	m.Datacenters, m.DelaysMs = nonNil(m.Datacenters), nonNil(m.DelaysMs)
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) putDelays(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in DelayMatrix) (DelayMatrix, bool, error) {
		prev, err := s.cfg.Backend.SetDelays(ctx, in)
		return prev, prev.Datacenters != nil, err
	})
}

func (s *Server) getVNFTypes(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cfg.Backend.VNFTypes(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, VNFTypeList{VNFTypes: nonNil(ts)})
}

func (s *Server) putVNFTypes(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in VNFTypeList) (VNFTypeList, bool, error) {
		prev, err := s.cfg.Backend.SetVNFTypes(ctx, in.VNFTypes)
		return VNFTypeList{VNFTypes: nonNil(prev)}, prev != nil, err
	})
}

func (s *Server) getChains(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Backend.Chains(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, ChainList{Chains: nonNil(cs)})
}

func (s *Server) putChains(w http.ResponseWriter, r *http.Request) {
	putDoc(s, w, r, func(ctx context.Context, in ChainList) (ChainList, bool, error) {
		prev, err := s.cfg.Backend.SetChains(ctx, in.Chains)
		return ChainList{Chains: nonNil(prev)}, prev != nil, err
	})
}

func (s *Server) getPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.cfg.Backend.Policies(r.Context())
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, PolicyList{Policies: nonNil(ps)})
}

// pathName reads and checks a name from the URL.
func pathName(w http.ResponseWriter, r *http.Request, param string) (string, bool) {
	name := chi.URLParam(r, param)
	if !nameRE.MatchString(name) {
		badField(w, r, param, fmt.Sprintf("%q in the URL %s", truncate(name), nameRule))
		return "", false
	}
	return name, true
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r, "name")
	if !ok {
		return
	}
	p, err := s.cfg.Backend.Policy(r.Context(), name)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func parseBool(w http.ResponseWriter, r *http.Request, param string) (bool, bool) {
	v := r.URL.Query().Get(param)
	switch v {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	}
	badField(w, r, param, fmt.Sprintf("%q must be true or false", truncate(v)))
	return false, false
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r, "name")
	if !ok {
		return
	}
	dry, ok := parseBool(w, r, "dryRun")
	if !ok {
		return
	}
	var in Policy
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if in.Name == "" {
		in.Name = name
	} else if in.Name != name {
		badField(w, r, "name", fmt.Sprintf("%q differs from the name in the URL (%q)", truncate(in.Name), name))
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	ctx := r.Context()
	if dry {
		decisions, err := s.cfg.Backend.DryRunPolicy(ctx, in)
		if err != nil {
			s.fail(w, r, body, err)
			return
		}
		prev, err := s.cfg.Backend.Policy(ctx, name)
		existed := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.fail(w, r, body, err)
			return
		}
		res := putResult(existed, prev, in)
		writeJSON(w, http.StatusOK, DryRunResult{DryRun: true, Changes: res.Changes, Decisions: nonNil(decisions)})
		return
	}
	prev, err := s.cfg.Backend.PutPolicy(ctx, in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	res := putResult(prev != nil, prev, in)
	status := http.StatusOK
	if prev == nil {
		status = http.StatusCreated
		w.Header().Set("Location", Prefix+"/policies/"+url.PathEscape(name))
	}
	writeJSON(w, status, res)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r, "name")
	if !ok {
		return
	}
	if err := s.cfg.Backend.DeletePolicy(r.Context(), name); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// StateVersioner may be implemented by a Backend to let the server encode
// the live state once per change instead of once per request, and answer
// pollers 304 Not Modified. StateVersion must change whenever State's
// answer changes (e.g. the Raft applied index combined with a counter of
// local instance changes); the server reads it before State.
type StateVersioner interface {
	StateVersion(ctx context.Context) (uint64, error)
}

// encodedState is the cached answer of GET /state for one state version:
// the JSON body, its gzip encoding, and the header values, all built once
// so that a GET of an unchanged state allocates no header strings and
// encodes nothing.
type encodedState struct {
	version uint64
	etag    string // of the identity body; the gzip body's is etag with "-gz" before the closing quote
	body    []byte
	gz      []byte // nil when compressing did not make the body smaller

	etagHdr, gzEtagHdr, lenHdr, gzLenHdr []string
}

// Header values shared by every answer (net/http only reads them).
var (
	jsonCTHdr = []string{"application/json"}
	gzipHdr   = []string{"gzip"}
	varyHdr   = []string{"Accept-Encoding"}
)

// gzipMinBodySize: smaller states go out as they are.
const gzipMinBodySize = 1024

func newEncodedState(version uint64, body []byte) *encodedState {
	etag := fmt.Sprintf(`"s%d"`, version)
	c := &encodedState{version: version, etag: etag, body: body,
		etagHdr: []string{etag}, lenHdr: []string{strconv.Itoa(len(body))}}
	if len(body) >= gzipMinBodySize {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // ~10× smaller, fits one 4 KiB write; once per version
		_, _ = zw.Write(body)
		if zw.Close() == nil && buf.Len() < len(body) {
			c.gz = buf.Bytes()
			c.gzEtagHdr = []string{etag[:len(etag)-1] + `-gz"`}
			c.gzLenHdr = []string{strconv.Itoa(len(c.gz))}
		}
	}
	return c
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sv, versioned := s.cfg.Backend.(StateVersioner)
	var version uint64
	if versioned {
		v, err := sv.StateVersion(ctx)
		if err != nil {
			s.fail(w, r, nil, err)
			return
		}
		version = v
		if c := s.stateCache.Load(); c != nil && c.version == version {
			writeState(w, r, c)
			return
		}
		c, err := s.fillState(ctx, version)
		if err != nil {
			if ctx.Err() != nil {
				return // the client went away while waiting for the fill
			}
			s.fail(w, r, nil, err)
			return
		}
		writeState(w, r, c)
		return
	}
	st, err := s.fetchState(ctx)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) fetchState(ctx context.Context) (State, error) {
	st, err := s.cfg.Backend.State(ctx)
	if err != nil {
		return State{}, err
	}
	st.Instances, st.Paths, st.Predictions = nonNil(st.Instances), nonNil(st.Paths), nonNil(st.Predictions)
	for i := range st.Paths {
		st.Paths[i].Hops = nonNil(st.Paths[i].Hops)
	}
	return st, nil
}

// fillState encodes the state of a version and caches it. Concurrent
// requests for the same version share one fill (they all read the version
// after they arrived, so the shared answer is as fresh as their own).
func (s *Server) fillState(ctx context.Context, version uint64) (*encodedState, error) {
	s.fillMu.Lock()
	if f := s.fill; f != nil && f.version == version {
		f.waiters++
		s.fillMu.Unlock()
		select {
		case <-f.done:
			return f.c, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &stateFill{version: version, done: make(chan struct{}), err: errors.New("encoding the state failed")}
	s.fill = f
	s.fillMu.Unlock()
	defer func() {
		close(f.done)
		s.fillMu.Lock()
		if s.fill == f {
			s.fill = nil
		}
		s.fillMu.Unlock()
	}()
	// the waiters share this fill: one client going away must not fail it
	st, err := s.fetchState(context.WithoutCancel(ctx))
	if err != nil {
		f.err = err
		return nil, err
	}
	body, err := json.Marshal(st)
	if err != nil {
		f.err = fmt.Errorf("encoding the state: %w", err)
		return nil, f.err
	}
	f.c, f.err = newEncodedState(version, append(body, '\n')), nil
	s.stateCache.Store(f.c)
	return f.c, nil
}

// writeState answers from the cache: 304 when If-None-Match names the
// version (in either encoding), else the body, gzip-encoded when the client
// accepts it and is not on loopback. Header values are the cache's own
// slices: assigning them allocates nothing.
//
// Compression trades the client's CPU for bytes on the wire: a remote
// client gets ~10× fewer bytes (and the server writes the answer in one
// syscall), but on loopback bytes cost nothing and a client on the same
// cores spends more decoding gzip than the server saves (measured in
// docs/bench/daemon.md), so loopback peers get the identity body.
func writeState(w http.ResponseWriter, r *http.Request, c *encodedState) {
	h := w.Header()
	gz := c.gz != nil && acceptsGzip(r.Header["Accept-Encoding"]) && !loopbackPeer(r)
	if c.gz != nil {
		h["Vary"] = varyHdr
	}
	etag := c.etagHdr
	if gz {
		etag = c.gzEtagHdr
	}
	h["Etag"] = etag
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && (etagMatch(inm, c.etagHdr[0]) || (c.gz != nil && etagMatch(inm, c.gzEtagHdr[0]))) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = jsonCTHdr
	body, n := c.body, c.lenHdr
	if gz {
		h["Content-Encoding"] = gzipHdr
		body, n = c.gz, c.gzLenHdr
	}
	h["Content-Length"] = n
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// loopbackPeer reports whether the request came from a loopback address.
func loopbackPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// acceptsGzip reports whether Accept-Encoding values accept gzip: a
// "gzip" (or "x-gzip", or "*") coding whose q is not 0 (RFC 9110 §12.5.3).
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var item string
			item, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.TrimSpace(coding)
			if !strings.EqualFold(coding, "gzip") && !strings.EqualFold(coding, "x-gzip") && coding != "*" {
				continue
			}
			if !qZero(params) {
				return true
			}
		}
	}
	return false
}

// qZero reports whether coding parameters hold q=0 (0, 0.0, 0.000).
func qZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		val = strings.TrimSpace(val)
		if val == "" || val[0] != '0' {
			return false
		}
		return strings.Trim(val[1:], ".0") == "" && strings.Count(val, ".") <= 1
	}
	return false
}

// etagMatch reports whether If-None-Match values name etag (or are "*"),
// by weak comparison (RFC 9110 §13.1.2).
func etagMatch(values []string, etag string) bool {
	for _, list := range values {
		for t := range strings.SplitSeq(list, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == etag {
				return true
			}
		}
	}
	return false
}

// DefaultDecisionsLimit is the page size of GET /decisions without ?limit.
const DefaultDecisionsLimit = 100

// ParseDecisionQuery reads the query of GET /decisions: since (a round
// ≥ 0), after (a cursor: the next of an earlier page, a Seq ≥ 0) and limit
// (1..MaxDecisionsLimit, DefaultDecisionsLimit when absent). A bad value is
// a FieldError naming the parameter.
func ParseDecisionQuery(q url.Values) (DecisionQuery, *FieldError) {
	dq := DecisionQuery{Limit: DefaultDecisionsLimit}
	for _, p := range []struct {
		name string
		dst  *int64
		rule string
	}{
		{"since", &dq.Since, "must be a round number ≥ 0"},
		{"after", &dq.After, "must be a cursor: the next of an earlier page (an integer ≥ 0)"},
	} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return DecisionQuery{}, &FieldError{Field: p.name, Reason: fmt.Sprintf("%q %s", truncate(v), p.rule)}
			}
			*p.dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDecisionsLimit {
			return DecisionQuery{}, &FieldError{Field: "limit", Reason: fmt.Sprintf("%q must be an integer between 1 and %d", truncate(v), MaxDecisionsLimit)}
		}
		dq.Limit = n
	}
	return dq, nil
}

func (s *Server) getDecisions(w http.ResponseWriter, r *http.Request) {
	q, fe := ParseDecisionQuery(r.URL.Query())
	if fe != nil {
		badField(w, r, fe.Field, fe.Reason)
		return
	}
	page, err := s.cfg.Backend.Decisions(r.Context(), q)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	if q.After > page.Newest {
		badField(w, r, "after", fmt.Sprintf("%d is past the newest decision (%d): the cursor comes from another node or from before a restart; start again without after", q.After, page.Newest))
		return
	}
	out := DecisionList{Decisions: nonNil(page.Decisions), Next: q.After, More: page.More}
	if n := len(out.Decisions); n > 0 {
		out.Next = out.Decisions[n-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) accepted(w http.ResponseWriter, op Operation) {
	w.Header().Set("Location", Prefix+"/operations/"+url.PathEscape(op.ID))
	writeJSON(w, http.StatusAccepted, op)
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	vnf, ok := pathName(w, r, "vnf")
	if !ok {
		return
	}
	var in ScaleRequest
	body, ok := s.decodeBody(w, r, &in, true)
	if !ok {
		return
	}
	if in.VNF == "" {
		in.VNF = vnf
	} else if in.VNF != vnf {
		badField(w, r, "vnf", fmt.Sprintf("%q differs from the VNF in the URL (%q)", truncate(in.VNF), vnf))
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	op, err := s.cfg.Backend.Scale(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	s.accepted(w, op)
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	dc, ok := pathName(w, r, "dc")
	if !ok {
		return
	}
	var in DrainRequest
	body, ok := s.decodeBody(w, r, &in, false)
	if !ok {
		return
	}
	if in.DC == "" {
		in.DC = dc
	} else if in.DC != dc {
		badField(w, r, "dc", fmt.Sprintf("%q differs from the datacenter in the URL (%q)", truncate(in.DC), dc))
		return
	}
	if err := in.Validate(); err != nil {
		invalid(w, r, err)
		return
	}
	op, err := s.cfg.Backend.Drain(r.Context(), in)
	if err != nil {
		s.fail(w, r, body, err)
		return
	}
	s.accepted(w, op)
}

// undrain ends the drain of a datacenter (DELETE of the drain resource).
func (s *Server) undrain(w http.ResponseWriter, r *http.Request) {
	dc, ok := pathName(w, r, "dc")
	if !ok {
		return
	}
	op, err := s.cfg.Backend.Undrain(r.Context(), DrainRequest{DC: dc})
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.accepted(w, op)
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) {
	id, ok := pathName(w, r, "id")
	if !ok {
		return
	}
	op, err := s.cfg.Backend.Operation(r.Context(), id)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, op)
}

// openapiJSON is the embedded document as JSON, converted once.
var openapiJSON = sync.OnceValues(func() ([]byte, error) { return yamlToJSON(openapiYAML) })

// yamlToJSON converts the OpenAPI document to JSON.
func yamlToJSON(y []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, err
	}
	v, err := stringKeys(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func stringKeys(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := stringKeys(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			c, err := stringKeys(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = c
		}
		return m, nil
	case []any:
		for i, e := range t {
			c, err := stringKeys(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}
