package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

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
