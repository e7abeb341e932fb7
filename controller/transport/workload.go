package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

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

// MaxReportAgeMs bounds a workload report's ageMs (one day): an older
// measurement is out of every interval's reach anyway.
const MaxReportAgeMs = 24 * 3600 * 1000

// MaxReporterID bounds a workload report's reporter ID.
const MaxReporterID = 128

// CheckReporterID checks a reporter ID (protocol.WorkloadReport.Reporter):
// empty (none), or at most MaxReporterID bytes of UTF-8 without spaces or
// control characters.
func CheckReporterID(id string) error {
	if len(id) > MaxReporterID {
		return fmt.Errorf("%d bytes, at most %d", len(id), MaxReporterID)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%q is not UTF-8", id)
	}
	for i, c := range id {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return fmt.Errorf("%q: byte %d is a space or not printable", id, i)
		}
	}
	return nil
}

// SharedCredential is the credential (protocol.WorkloadReport.Credential)
// of a report that came with the shared protocol token: the global intake
// bounds the reporter IDs of all its holders together per DC and kind in
// an interval (8), apart from the in-process reporters (the global
// node's own local controllers). It holds a character no reporter
// credential's name may (a space), so no name equals it.
const SharedCredential = "shared protocol token"

// ErrNotLeader is what a WorkloadIntake returns when this node's round
// engine does not run (a follower): the report belongs to the leader.
var ErrNotLeader = errors.New("not the leader: this node's round engine does not run")

// WorkloadIntake is the global controller's workload intake
// (global.Engine.ReportWorkload behind a leadership check).
type WorkloadIntake interface {
	ReportWorkload(protocol.WorkloadReport) error
}

// IntervalIntake is a WorkloadIntake that also tells which interval it
// counted a report in (global.Engine.ReportWorkloadInterval).
// The workload handler answers it ("interval"), and a Reporter with
// Resend skips, at a leader change, the reports counted in an interval the
// new leader no longer measures.
type IntervalIntake interface {
	WorkloadIntake
	ReportWorkloadInterval(protocol.WorkloadReport) (uint64, error)
}

// OnceIntake is an IntervalIntake that counts a report once
// (global.Engine.ReportWorkloadOnce): it recognises a copy of a report it
// counted (the same credential, reporter, DC, kind and time), counts
// nothing for it and says so (duplicate), with the interval it counted the
// report in. The workload handler answers it
// ({"duplicate":true,"interval":N}); the handler keeps no memory of its
// own, so the engine is idempotent on every path into it, in process and
// over HTTP.
type OnceIntake interface {
	IntervalIntake
	ReportWorkloadOnce(protocol.WorkloadReport) (interval uint64, duplicate bool, err error)
}

// Counted is what an intake said of a report it took: the interval it
// counted the report in (Known: it said), whether the report was a copy
// of one it had counted (Duplicate: a OnceIntake said so), and the
// interval it measures now (Measuring; Known). A copy's Interval is the
// one its original was counted in, which may be before Measuring (the
// interval closed since); a report counted now is counted in the interval
// measured. Measuring is the interval the log measures: while the engine's
// close of N is in flight it is N, and a report counted then, or the copy
// of one, is N+1's (Measuring below Interval: not clamped, the reporter
// must not skip its kept reports of N, which another leader may have
// taken and never closed). An intake or node that does not name
// Measuring (an older one) leaves it equal to Interval.
//
// Engine names the engine that answered (global.EngineID: a round
// engine's, its life long; "" from an older node). ClosedBy is set on a
// copy of a report the engine counted in an intake it dropped because
// another engine's close of interval Interval was committed, not its own:
// that engine's ID. Interval is then a guess (the closing engine may have
// counted the report in the interval after, or not at all); a reporter
// that heard the closing engine say so (an answer of that Engine naming
// the interval measured now) re-sends the copy with that word
// (protocol.WorkloadReport.CountedBy), and the engine counts it.
type Counted struct {
	Interval, Measuring uint64
	Known, Duplicate    bool
	Engine, ClosedBy    string
}

// MaxEngineID bounds an engine ID (Counted.Engine,
// protocol.CountedBy.Engine).
const MaxEngineID = 64

// CheckEngineID checks an engine ID: 1 to MaxEngineID bytes of UTF-8
// without spaces or control characters.
func CheckEngineID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > MaxEngineID {
		return fmt.Errorf("%d bytes, at most %d", len(id), MaxEngineID)
	}
	return CheckReporterID(id)
}

// CountingIntake is a OnceIntake that also names, with a copy, the
// interval it measures now (global.Engine.ReportWorkloadCounted). The
// workload handler answers it ({"duplicate":true,"interval":N,
// "measuring":M}), and a Reporter with Resend books the copy in N and
// compares M with its kept reports' intervals to skip those a new leader
// no longer measures.
type CountingIntake interface {
	OnceIntake
	ReportWorkloadCounted(protocol.WorkloadReport) (Counted, error)
}

// reportTo gives rep to in, with what in tells of it.
func reportTo(in WorkloadIntake, rep protocol.WorkloadReport) (c Counted, err error) {
	switch ii := in.(type) {
	case CountingIntake:
		c, err = ii.ReportWorkloadCounted(rep)
	case OnceIntake:
		c.Interval, c.Duplicate, err = ii.ReportWorkloadOnce(rep)
		c.Known, c.Measuring = err == nil, c.Interval
	case IntervalIntake:
		c.Interval, err = ii.ReportWorkloadInterval(rep)
		c.Known, c.Measuring = err == nil, c.Interval
	default:
		err = in.ReportWorkload(rep)
	}
	if err != nil {
		return Counted{}, err
	}
	return c, nil
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
	case !validFloat(rep.AgeMs) || rep.AgeMs > MaxReportAgeMs:
		return fmt.Errorf("ageMs: must be finite and in [0, %g], got %g", float64(MaxReportAgeMs), rep.AgeMs)
	}
	if err := CheckReporterID(rep.Reporter); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	if rep.CountedBy != nil {
		if err := CheckEngineID(rep.CountedBy.Engine); err != nil {
			return fmt.Errorf("countedBy.engine: %w", err)
		}
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
// authenticates the protocol token (or a reporter's own, WithReporters),
// parses the report strictly, sets its Credential and feeds the intake.
// Answers: 200 {"accepted":true,"interval":N,"measuring":M,"engine":E}
// (N: the interval the engine counted it in, when the intake is an
// IntervalIntake; M, E: the interval it measures now and its ID, when it
// is a CountingIntake), or {"duplicate":true,"interval":N,"measuring":M,
// "engine":E} when a OnceIntake (the engine) says the report is a copy of
// one it counted, in interval N (with "closedBy" when that was in an
// intake it dropped: Counted.ClosedBy), and a CountingIntake that it
// measures interval M now (a re-sent copy is not
// counted twice; two reporters of one DC stamping the same time are not
// copies of each other); 400 naming the field, 401, 403 (a DC not the reporter's), 405,
// 409 when the intake says ErrNotLeader (the reporter tries another node),
// 413, 422 when the engine refuses the report (unknown DC, implausible, a
// reporter ID beyond its credential's bound).
type WorkloadHandler struct {
	in    WorkloadIntake
	token []byte

	// creds, when set, replace token: each reporter's own token, and
	// reports only for its DCs (reporters.go).
	creds *ReporterCreds
}

// WithReporters makes the handler accept each reporter's own token (and no
// longer the shared one) and a report only for the reporter's DCs (403).
func (h *WorkloadHandler) WithReporters(c *ReporterCreds) *WorkloadHandler {
	h.creds = c
	return h
}

// NewWorkloadHandler wraps an intake. token must not be empty.
func NewWorkloadHandler(in WorkloadIntake, token string) (*WorkloadHandler, error) {
	if in == nil {
		return nil, errors.New("workload handler: intake is nil")
	}
	if token == "" {
		return nil, errors.New("workload handler: token is empty")
	}
	return &WorkloadHandler{in: in, token: []byte(token)}, nil
}

type workloadAnswer struct {
	Accepted bool `json:"accepted,omitempty"`
	// Interval is the interval the engine counted the report in (an
	// IntervalIntake; absent: unknown, an older node)
	Interval  *uint64 `json:"interval,omitempty"`
	Duplicate bool    `json:"duplicate,omitempty"`
	// Measuring is the interval the engine measures now (a
	// CountingIntake; absent: an older node, or an intake that does not
	// say; readers take Interval then; session 14 named it with a
	// duplicate only). With a duplicate Interval stays the one the copy's
	// original was counted in, so an older reporter books it as before
	// and ignores this field.
	Measuring *uint64 `json:"measuring,omitempty"`
	// Engine is the answering engine's ID and ClosedBy, on a copy of a
	// report in a dropped intake, the closing engine's (Counted; session
	// 15: an older reporter ignores both)
	Engine    string `json:"engine,omitempty"`
	ClosedBy  string `json:"closedBy,omitempty"`
	NotLeader bool   `json:"notLeader,omitempty"`
	Error     string `json:"error,omitempty"`
}

func writeAnswer(w http.ResponseWriter, code int, a workloadAnswer) {
	if code >= 400 {
		writeProblem(w, code, a.Error, func(p *problem) { p.NotLeader = a.NotLeader })
		return
	}
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
	var who *ReporterCred
	if h.creds != nil {
		if !acceptPostWith(w, r, func(tok string) bool {
			c, ok := h.creds.lookup(tok)
			who = &c
			return ok
		}) {
			return
		}
	} else if !AcceptPost(w, r, h.token) {
		return
	}
	rep, err := ParseWorkloadReport(http.MaxBytesReader(w, r.Body, MaxWorkloadBytes))
	if err != nil {
		BodyError(w, err)
		return
	}
	if who != nil && !who.allows(rep.DC) {
		WriteError(w, http.StatusForbidden, fmt.Sprintf("dc: reporter %q may report only for %s, not %q", who.Name, strings.Join(who.DCs, ", "), rep.DC))
		return
	}
	rep.Credential = SharedCredential
	if who != nil {
		// the reporter is the credential's: a reporter cannot claim another's
		// ID (nor make up IDs to take the intake's per-reporter rings or the
		// duplicate keys of others)
		rep.Reporter, rep.Credential = who.Name, who.Name
	}
	c, err := reportTo(h.in, rep)
	if err != nil {
		if errors.Is(err, ErrNotLeader) {
			writeAnswer(w, http.StatusConflict, workloadAnswer{NotLeader: true, Error: err.Error()})
			return
		}
		writeAnswer(w, http.StatusUnprocessableEntity, workloadAnswer{Error: err.Error()})
		return
	}
	a := workloadAnswer{Accepted: !c.Duplicate, Duplicate: c.Duplicate}
	if c.Known {
		a.Interval = &c.Interval
		if _, says := h.in.(CountingIntake); says {
			a.Measuring = &c.Measuring // accepted too (session 15): a fresh first contact after a flap
			a.Engine, a.ClosedBy = c.Engine, c.ClosedBy
		}
	}
	writeAnswer(w, http.StatusOK, a)
}
