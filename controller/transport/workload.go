package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// WorkloadPath is the URL path, on a node with the global role, where local
// controllers in other processes POST their workload reports
// (protocol.WorkloadReport as JSON, "Authorization: Bearer <protocol token>").
const WorkloadPath = "/protocol/v1/workload"

// MaxWorkloadBytes bounds a workload report body (n² pairs of a few hundred
// DCs fit easily).
const MaxWorkloadBytes = 1 << 20

// MaxWorkloadPairs bounds the pairs of one report.
const MaxWorkloadPairs = 10000

// ErrNotLeader is what a WorkloadIntake returns when this node's round
// engine does not run (a follower): the report belongs to the leader.
var ErrNotLeader = errors.New("not the leader: this node's round engine does not run")

// WorkloadIntake is the global controller's workload intake
// (global.Engine.ReportWorkload behind a leadership check).
type WorkloadIntake interface {
	ReportWorkload(protocol.WorkloadReport) error
}

func validFloat(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) && x >= 0 }

// ParseWorkloadReport decodes and checks a workload report body strictly
// (unknown fields and trailing data refused). The error names the field.
// Whether the DCs exist is the engine's check.
func ParseWorkloadReport(r io.Reader) (protocol.WorkloadReport, error) {
	var rep protocol.WorkloadReport
	if err := DecodeStrict(r, &rep, "workload report body"); err != nil {
		return protocol.WorkloadReport{}, err
	}
	if err := CheckWorkloadReport(rep); err != nil {
		return protocol.WorkloadReport{}, err
	}
	return rep, nil
}

// CheckWorkloadReport checks a report's fields (names present, kind, time,
// rates finite and non-negative, bounded size).
func CheckWorkloadReport(rep protocol.WorkloadReport) error {
	switch {
	case rep.DC == "":
		return errors.New("dc: empty datacenter name")
	case rep.Kind != "cp" && rep.Kind != "dp" && rep.Kind != "delay":
		return fmt.Errorf("kind: %q, want \"cp\", \"dp\" or \"delay\"", rep.Kind)
	case rep.Kind == "delay" && len(rep.Pairs) > 0:
		return errors.New("pairs: a \"delay\" report carries delaysMs only")
	case rep.At.IsZero():
		return errors.New("at: missing measurement time")
	case len(rep.Pairs) > MaxWorkloadPairs:
		return fmt.Errorf("pairs: %d pairs, at most %d", len(rep.Pairs), MaxWorkloadPairs)
	}
	for i, p := range rep.Pairs {
		if p.Entry == "" || p.Exit == "" {
			return fmt.Errorf("pairs[%d]: entry and exit must both be named", i)
		}
		if !validFloat(p.Rate) {
			return fmt.Errorf("pairs[%d].rate: must be finite and non-negative, got %g", i, p.Rate)
		}
	}
	if len(rep.DelaysMs) > 0 && rep.Kind == "cp" {
		return fmt.Errorf("delaysMs: delays come with \"dp\" or \"delay\" reports, this is %q", rep.Kind)
	}
	for dc, ms := range rep.DelaysMs {
		if dc == "" || !validFloat(ms) {
			return fmt.Errorf("delaysMs[%q]: needs a datacenter name and a finite non-negative delay, got %g", dc, ms)
		}
	}
	return nil
}

// WorkloadHandler serves WorkloadPath on a node with the global role: it
// authenticates the protocol token, parses the report strictly and feeds
// the intake. Answers: 200 {"accepted":true} (or {"duplicate":true} for a
// report of a (dc, kind) with the time of one of the last RecentReports
// accepted: a re-sent copy is not counted twice, while an older report
// re-sent to a new leader is taken), 400 naming the field, 401, 405, 409 when the
// intake says ErrNotLeader (the reporter tries another node), 413, 422 when
// the engine refuses the report (unknown DC).
type WorkloadHandler struct {
	in    WorkloadIntake
	token []byte

	mu     sync.Mutex
	recent map[string]*recentTimes // "kind/dc" → At of the last accepted reports
}

// RecentReports is how many accepted report times per (dc, kind) a
// WorkloadHandler remembers to answer re-sent copies as duplicates (a
// reporter re-sends at most one interval of reports).
const RecentReports = 512

// recentTimes is a ring of the last RecentReports times with a set over it.
type recentTimes struct {
	ring []time.Time
	next int
	set  map[time.Time]struct{}
}

func (r *recentTimes) has(t time.Time) bool { _, ok := r.set[t]; return ok }

func (r *recentTimes) add(t time.Time) {
	if len(r.ring) < RecentReports {
		r.ring = append(r.ring, t)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = t
		r.next = (r.next + 1) % RecentReports
	}
	r.set[t] = struct{}{}
}

// NewWorkloadHandler wraps an intake. token must not be empty.
func NewWorkloadHandler(in WorkloadIntake, token string) (*WorkloadHandler, error) {
	if in == nil {
		return nil, errors.New("workload handler: intake is nil")
	}
	if token == "" {
		return nil, errors.New("workload handler: token is empty")
	}
	return &WorkloadHandler{in: in, token: []byte(token), recent: map[string]*recentTimes{}}, nil
}

type workloadAnswer struct {
	Accepted  bool   `json:"accepted,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	NotLeader bool   `json:"notLeader,omitempty"`
	Error     string `json:"error,omitempty"`
}

func writeAnswer(w http.ResponseWriter, code int, a workloadAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// ServeHTTP implements http.Handler.
func (h *WorkloadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != WorkloadPath {
		WriteError(w, http.StatusNotFound, "not found")
		return
	}
	if !AcceptPost(w, r, h.token) {
		return
	}
	rep, err := ParseWorkloadReport(http.MaxBytesReader(w, r.Body, MaxWorkloadBytes))
	if err != nil {
		BodyError(w, err)
		return
	}
	key := rep.Kind + "/" + rep.DC
	// the lock spans the intake call so two copies of one report racing in
	// are counted once
	h.mu.Lock()
	defer h.mu.Unlock()
	rt := h.recent[key]
	if rt == nil {
		rt = &recentTimes{set: map[time.Time]struct{}{}}
		h.recent[key] = rt
	}
	at := rep.At.UTC().Round(0)
	if rt.has(at) {
		writeAnswer(w, http.StatusOK, workloadAnswer{Duplicate: true})
		return
	}
	if err := h.in.ReportWorkload(rep); err != nil {
		if errors.Is(err, ErrNotLeader) {
			writeAnswer(w, http.StatusConflict, workloadAnswer{NotLeader: true, Error: err.Error()})
			return
		}
		writeAnswer(w, http.StatusUnprocessableEntity, workloadAnswer{Error: err.Error()})
		return
	}
	rt.add(at)
	writeAnswer(w, http.StatusOK, workloadAnswer{Accepted: true})
}
