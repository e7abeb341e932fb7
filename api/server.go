package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
)

// Prefix is the path prefix of API version 1.
const Prefix = "/api/v1"

// DefaultMaxBodyBytes bounds a request body unless Config.MaxBodyBytes says
// otherwise.
const DefaultMaxBodyBytes = 1 << 20

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
		h := Health{Status: "ok"}
		if rm, ok := s.cfg.Backend.(RaftMembership); ok {
			h.Raft = rm.RaftMembership()
		}
		writeJSON(w, http.StatusOK, h)
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
