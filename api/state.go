package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

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
