package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// ErrRejected marks a report a global node refused for good (bad token,
// bad field, unknown DC): re-sending it cannot help, so it is not retried.
var ErrRejected = errors.New("workload report rejected")

// ReportTarget is one global node a workload report can go to.
type ReportTarget interface {
	// SendReport delivers one report. It returns nil once the node's engine
	// took it (or already had it), an error wrapping ErrNotLeader when the
	// node is not the leader, one wrapping ErrRejected when the report is
	// refused for good, and any other error for a transient failure.
	SendReport(ctx context.Context, r protocol.WorkloadReport) error
	// String names the target in errors.
	String() string
}

// IntervalTarget is a ReportTarget that also tells which interval the
// accepting engine counted a report in (known false: an older node, an
// intake that does not say; a duplicate names the interval its original
// was counted in). A Reporter with Resend uses it
// to skip, at a leader change, the reports already counted in an interval
// the new leader no longer measures.
type IntervalTarget interface {
	ReportTarget
	SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (interval uint64, known bool, err error)
}

// CountedTarget is an IntervalTarget that also tells, with a copy, the
// interval the accepting engine measures now (Counted.Measuring; equal
// to Interval when the node does not say: an older node). A Reporter with
// Resend books the copy in the interval its original was counted in and
// compares the one measured now with its kept reports' to skip those the
// node no longer measures.
type CountedTarget interface {
	IntervalTarget
	SendReportCounted(ctx context.Context, r protocol.WorkloadReport) (Counted, error)
}

// IntakeTarget is the in-process engine as a target (a node that has both
// roles): the intake's ErrNotLeader passes through, any other refusal is
// ErrRejected.
type IntakeTarget struct {
	In   WorkloadIntake
	Name string
}

// SendReport implements ReportTarget.
func (t IntakeTarget) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, _, err := t.SendReportInterval(ctx, r)
	return err
}

// SendReportInterval implements IntervalTarget (the interval is known
// when In is an IntervalIntake).
func (t IntakeTarget) SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	c, err := t.SendReportCounted(ctx, r)
	return c.Interval, c.Known, err
}

// SendReportCounted implements CountedTarget (the interval measured is
// known when In is a CountingIntake, else it is the one counted in).
func (t IntakeTarget) SendReportCounted(_ context.Context, r protocol.WorkloadReport) (Counted, error) {
	c, err := reportTo(t.In, r)
	if err == nil || errors.Is(err, ErrNotLeader) {
		return c, err
	}
	return Counted{}, fmt.Errorf("%w by %s: %v", ErrRejected, t.String(), err)
}

func (t IntakeTarget) String() string {
	if t.Name == "" {
		return "in-process engine"
	}
	return t.Name
}

// HTTPReportTarget posts reports to a global node's WorkloadPath.
type HTTPReportTarget struct {
	url    string
	token  string
	client *http.Client
	opt    HTTPReportOptions

	mu sync.Mutex
	// legacySince (zero: not in legacy mode): when the node refused a
	// report's reporter or ageMs as unknown fields (a global node of an
	// older version, during an upgrade); they are left out of the reports
	// sent to it until LegacyFor has passed or it answers "not the leader"
	// (a leader change: the node may have been restarted, upgraded), when
	// the full report is tried again
	legacySince time.Time
	fallbacks   uint64 // switches into legacy mode
}

// HTTPReportOptions tunes an HTTPReportTarget (zero values: defaults).
type HTTPReportOptions struct {
	// Clock times the legacy mode (clock.Real{} when nil): inject the
	// reporter's clock.
	Clock clock.Clock
	// LegacyFor is how long the reports to a node that refused the new
	// fields leave them out before the full report is tried again (default
	// DefaultLegacyFor): a node upgraded meanwhile gets them again.
	LegacyFor time.Duration
	// Log hears (Warn, the first time; Info after) when the target switches
	// to legacy mode, and when it leaves it (nil: slog.Default()).
	Log *slog.Logger
}

// DefaultLegacyFor is HTTPReportOptions.LegacyFor's default.
const DefaultLegacyFor = 5 * time.Minute

// NewHTTPReportTarget returns the target for a node's API base URL
// ("https://node2:8443"). token is the protocol token; client nil means
// http.DefaultClient. The options are the defaults (NewHTTPReportTargetWith).
func NewHTTPReportTarget(baseURL, token string, client *http.Client) (*HTTPReportTarget, error) {
	return NewHTTPReportTargetWith(baseURL, token, client, HTTPReportOptions{})
}

// NewHTTPReportTargetWith is NewHTTPReportTarget with options.
func NewHTTPReportTargetWith(baseURL, token string, client *http.Client, o HTTPReportOptions) (*HTTPReportTarget, error) {
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("workload report target: %q is not an http(s) URL", baseURL)
	}
	if token == "" {
		return nil, errors.New("workload report target: token is empty")
	}
	if o.LegacyFor < 0 {
		return nil, errors.New("workload report target: HTTPReportOptions.LegacyFor must not be negative")
	}
	if client == nil {
		client = http.DefaultClient
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.LegacyFor == 0 {
		o.LegacyFor = DefaultLegacyFor
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &HTTPReportTarget{url: strings.TrimSuffix(baseURL, "/") + WorkloadPath, token: token, client: client, opt: o}, nil
}

func (t *HTTPReportTarget) String() string { return t.url }

// Legacy tells whether the reports to this node leave out the reporter and
// ageMs now (an older node refused them less than LegacyFor ago).
func (t *HTTPReportTarget) Legacy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.legacyLocked()
}

// LegacyFallbacks counts the switches into legacy mode.
func (t *HTTPReportTarget) LegacyFallbacks() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fallbacks
}

// legacyLocked tells whether legacy mode holds, ending it once LegacyFor
// has passed since it began.
func (t *HTTPReportTarget) legacyLocked() bool {
	if t.legacySince.IsZero() {
		return false
	}
	if t.opt.Clock.Now().Sub(t.legacySince) >= t.opt.LegacyFor {
		t.leaveLegacyLocked("expired")
		return false
	}
	return true
}

func (t *HTTPReportTarget) leaveLegacyLocked(why string) {
	t.legacySince = time.Time{}
	t.opt.Log.Info("workload report target: trying reporter/ageMs again", "target", t.url, "why", why)
}

func (t *HTTPReportTarget) enterLegacy(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.legacySince.IsZero() {
		return
	}
	t.legacySince = t.opt.Clock.Now()
	t.fallbacks++
	lvl := slog.LevelInfo
	if t.fallbacks == 1 {
		lvl = slog.LevelWarn
	}
	t.opt.Log.Log(context.Background(), lvl, "workload report target is an older global node: reports to it leave out "+
		"reporter and ageMs (no per-reporter slope, late reports dated by their time only)",
		"target", t.url, "for", t.opt.LegacyFor, "err", err)
}

// SendReport implements ReportTarget.
func (t *HTTPReportTarget) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, _, err := t.SendReportInterval(ctx, r)
	return err
}

// SendReportInterval implements IntervalTarget: the interval is the
// node's answer's ("interval"; unknown when it names none).
func (t *HTTPReportTarget) SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	c, err := t.SendReportCounted(ctx, r)
	return c.Interval, c.Known, err
}

// SendReportCounted implements CountedTarget: the node's answer's
// "interval", "duplicate" and "measuring" (answered).
func (t *HTTPReportTarget) SendReportCounted(ctx context.Context, r protocol.WorkloadReport) (Counted, error) {
	t.mu.Lock()
	legacy := t.legacyLocked()
	t.mu.Unlock()
	if legacy {
		r.Reporter, r.AgeMs, r.CountedBy = "", 0, nil
	}
	c, err := t.send(ctx, r)
	if errors.Is(err, errCountedByRefused) && r.CountedBy != nil {
		// a global node of session 14 or older: the copy without the word
		// (it counts it as any re-sent report, or answers the duplicate)
		r.CountedBy = nil
		c, err = t.send(ctx, r)
	}
	if errors.Is(err, errNewFieldsRefused) && (r.Reporter != "" || r.AgeMs != 0) {
		// an older global node: the report as it would have sent it
		t.enterLegacy(err)
		r.Reporter, r.AgeMs, r.CountedBy = "", 0, nil
		c, err = t.send(ctx, r)
	}
	if legacy && errors.Is(err, ErrNotLeader) {
		// a leader change: the node may have been upgraded since
		t.mu.Lock()
		if !t.legacySince.IsZero() {
			t.leaveLegacyLocked("not the leader")
		}
		t.mu.Unlock()
	}
	if errors.Is(err, errNewFieldsRefused) || errors.Is(err, errCountedByRefused) {
		return Counted{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return c, err
}

// errNewFieldsRefused marks a 400 that names the report's reporter or
// ageMs as an unknown field (transport.DecodeStrict of an older version).
var errNewFieldsRefused = errors.New("reporter or ageMs refused as unknown fields")

// errCountedByRefused marks a 400 that names a copy's countedBy as an
// unknown field (a global node of session 14 or older).
var errCountedByRefused = errors.New("countedBy refused as an unknown field")

// refusesField reports whether a 400's body names one of fields as an
// unknown field (an older node's DecodeStrict: `json: unknown field "x"`,
// quoted inside the JSON error body).
func refusesField(msg []byte, fields ...string) bool {
	return slices.ContainsFunc(fields, func(f string) bool {
		return strings.Contains(string(msg), `unknown field \"`+f+`\"`)
	})
}

func (t *HTTPReportTarget) send(ctx context.Context, r protocol.WorkloadReport) (Counted, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return Counted{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return Counted{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+t.token)
	res, err := t.client.Do(hr)
	if err != nil {
		return Counted{}, err
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // let the connection be reused
	switch {
	case res.StatusCode == http.StatusOK:
		return answered(msg), nil
	case res.StatusCode == http.StatusConflict:
		return Counted{}, fmt.Errorf("%s: %w", t.url, ErrNotLeader)
	case res.StatusCode == http.StatusBadRequest && refusesField(msg, "countedBy"):
		return Counted{}, fmt.Errorf("%w by %s: %s", errCountedByRefused, t.url, strings.TrimSpace(string(msg)))
	case res.StatusCode == http.StatusBadRequest && refusesField(msg, "reporter", "ageMs"):
		return Counted{}, fmt.Errorf("%w by %s: %s", errNewFieldsRefused, t.url, strings.TrimSpace(string(msg)))
	case res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests &&
		res.StatusCode != http.StatusRequestTimeout:
		return Counted{}, fmt.Errorf("%w by %s: %s: %s", ErrRejected, t.url, res.Status, strings.TrimSpace(string(msg)))
	}
	return Counted{}, fmt.Errorf("workload report to %s: %s: %s", t.url, res.Status, strings.TrimSpace(string(msg)))
}

// answered is what a node's 200 answer says of the report: the interval
// it counted it in (Known false: none named, or an answer that does not
// parse, which is still an acceptance), whether it was a copy, and the
// interval the node measures now ("measuring", read only with an
// interval; Interval when the answer names none: an older node; taken as
// named, below the interval too: Counted), and the answering engine's ID
// and, with a copy, the closing engine's ("engine", "closedBy"; either is
// left out when it is no engine ID: CheckEngineID). Unknown fields are
// ignored (a newer node's).
func answered(body []byte) Counted {
	var a workloadAnswer
	if json.Unmarshal(body, &a) != nil || a.Interval == nil {
		return Counted{}
	}
	c := Counted{Interval: *a.Interval, Measuring: *a.Interval, Known: true, Duplicate: a.Duplicate}
	if a.Measuring != nil {
		c.Measuring = *a.Measuring
	}
	if CheckEngineID(a.Engine) == nil {
		c.Engine = a.Engine
	}
	if CheckEngineID(a.ClosedBy) == nil && c.Duplicate {
		c.ClosedBy = a.ClosedBy
	}
	return c
}

// ReporterConfig configures a Reporter.
type ReporterConfig struct {
	// Targets are the global nodes, tried in turn from the one that last
	// accepted (the leader) until one accepts.
	Targets []ReportTarget
	// Clock times the retries and the latency (clock.Real{} when nil).
	Clock clock.Clock
	// QueueCap bounds the reports waiting to be sent (default 256); when it
	// is full the oldest report is dropped.
	QueueCap int
	// Attempts is how many passes over the targets one report gets before it
	// is dropped as failed (default 3).
	Attempts int
	// Backoff is the wait after the first failed pass, doubled after each
	// further one (default 250 ms).
	Backoff time.Duration
	// Timeout bounds one send (default 2 s).
	Timeout time.Duration
	// NoLeaderWait (0: off) lets a report outlast a leader election: a
	// pass in which a node answered "not the leader" and none accepted is
	// not counted against Attempts, and is retried after Backoff, until
	// NoLeaderWait has passed since the report's first such pass. Without
	// it an election longer than the Attempts' backoffs (3 passes: 0.75 s
	// by default; 2.3 s measured on a loaded host) loses the reports of
	// every DC that reported meanwhile.
	NoLeaderWait time.Duration
	// OnError hears about reports given up (rejected or failed).
	OnError func(error)
	// OnIdle (nil: none) hears, from the sender, that it found the queue
	// empty and stopped: every report handed to ReportWorkload before was
	// sent, given up or refused, and so was what was re-sent behind them
	// (a test's event to wait on). Not called while a retry timer waits.
	OnIdle func()
	// Log hears (Debug) of copies a node counted in an interval closed
	// since (ReporterStats.CopiesOfClosed); nil: slog.Default().
	Log *slog.Logger
	// ID names this reporter (a daemon node's ID; CheckReporterID): it is
	// stamped on every report that names no reporter of its own
	// (protocol.WorkloadReport.Reporter), so the global intake keeps the
	// reports of two reporters of one DC apart. Empty: none.
	ID string
	// Resend keeps the reports accepted since the last NewInterval and,
	// when another node starts accepting (a new leader, whose interval
	// averages start empty), sends them to it again, so the new leader's
	// first round averages the whole interval. The leader's round engine
	// answers copies of reports it counted as duplicates (counting
	// nothing; a node that does not lead answers a copy "not the
	// leader"). A report an IntervalTarget says was counted in an
	// interval before the one the new leader measures (closed between
	// that acceptance and NewInterval: its averages hold the report) is
	// not re-sent
	// (ReporterStats.ResendSkipped): the new leader would count it again
	// in the next interval. Of the intervals targets named for one report
	// (its re-sends' included) the earliest counts. The interval the new
	// leader measures is the one it counted its first report in, or, when
	// that report is a copy, the one a CountedTarget names as measured
	// ("measuring"; an older node names none, and the copy's counted-in
	// interval stands in: fewer reports are skipped). A copy a node
	// answers as one of a report it dropped with an intake
	// (Counted.ClosedBy) is sent once more, with the closing engine's
	// word (protocol.WorkloadReport.CountedBy), when that engine said it
	// counted the report in the interval the node measures
	// (ReporterStats.Recounts); else it is booked as any copy.
	Resend bool
}

// ReporterStats are a Reporter's counters.
type ReporterStats struct {
	Queued   uint64 // reports handed to ReportWorkload
	Sent     uint64 // accepted by a global node
	Dropped  uint64 // dropped because the queue was full (oldest first)
	Failed   uint64 // given up after Attempts passes
	Rejected uint64 // refused for good by a node
	Retries  uint64 // passes after the first
	Resent   uint64 // reports queued again for a new leader (Resend)
	// ResendSkipped: kept reports not re-sent to a new leader because the
	// old one counted them in an interval closed since (Resend)
	ResendSkipped uint64
	// CopiesOfClosed: reports a node answered as copies of ones it
	// counted in an interval before the one it measures now
	// (CountedTarget): their load is in that closed interval's averages
	// (logged at Debug)
	CopiesOfClosed uint64
	// Recounts: copies of reports a node had dropped with an intake
	// (Counted.ClosedBy) re-sent with the closing engine's word that it
	// counted them in the interval the node measures
	// (protocol.WorkloadReport.CountedBy; Resend)
	Recounts uint64
	// LegacyTargets is how many targets leave reporter and ageMs out now
	// (older global nodes, HTTPReportTarget.Legacy); LegacyFallbacks sums
	// their switches into that mode.
	LegacyTargets   int
	LegacyFallbacks uint64
	// Latency sums, over the sent reports, the time from ReportWorkload to
	// acceptance (LatencyMax is the largest).
	Latency, LatencyMax time.Duration
	QueueLen            int
	// Waiting: the queue head waits for a retry timer (nothing is being
	// sent until the clock fires it).
	Waiting bool
}

// Reporter sends workload reports from local-side sources (the simulated
// load, the CP meter) to the global controller's leader when the engine is
// not in this process. ReportWorkload never blocks: reports queue (bounded,
// drop-oldest) and one goroutine at a time sends them in order.
type Reporter struct {
	cfg    ReporterConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	queue []queued
	seq   uint64
	busy  bool // a sender goroutine runs or a retry timer is pending
	// waiting: a retry timer is pending (ReporterStats.Waiting)
	waiting bool
	timer   clock.Timer
	closed  bool
	pref    int // target that last accepted
	stats   ReporterStats
	// kept: reports accepted since NewInterval, with the target that
	// accepted each (Resend only); accepted: some target accepted one.
	kept     []keptReport
	accepted bool
}

type keptReport struct {
	rep    protocol.WorkloadReport
	target int
	// in: the earliest interval a target said it counted the report in
	// (the first acceptance's, or a re-send's when earlier)
	in  countedIn
	seq uint64 // the report's first queued seq (names it for its re-sends)
	// by: what engines said they counted it in (Counted.Engine, not a
	// copy's answer that names a dropped intake), newest last, at most
	// maxBy; recount: a copy with such a word was queued (once)
	by      []protocol.CountedBy
	recount bool
}

// maxBy bounds the engines' words a kept report remembers (one per leader
// it met since NewInterval: a few).
const maxBy = 4

// heard notes what c says of a kept report: which engine counted it in
// which interval (not a copy of a dropped intake's report: its interval
// is a guess).
func (k *keptReport) heard(c Counted) {
	if !c.Known || c.Engine == "" || c.ClosedBy != "" {
		return
	}
	w := protocol.CountedBy{Engine: c.Engine, Interval: c.Interval}
	if slices.Contains(k.by, w) {
		return
	}
	if len(k.by) >= maxBy {
		k.by = slices.Delete(k.by, 0, 1)
	}
	k.by = append(k.by, w)
}

// closersWord is, for a copy of a report in a dropped intake (c.ClosedBy),
// what the closing engine said of it when it counted it in the interval
// the answering engine measures now: proof that the closing engine's
// close did not count it (an engine counts a report once, and its close
// of the interval before holds only the reports of that interval), while
// its intake of this interval, whose leadership it lost, is gone. nil:
// no such word (the closer counted it in the interval closed, an answer
// was lost, it never reached the closer): a re-send could count it twice.
func (k *keptReport) closersWord(c Counted) *protocol.CountedBy {
	if c.ClosedBy == "" || !c.Duplicate || k.recount {
		return nil
	}
	i := slices.IndexFunc(k.by, func(w protocol.CountedBy) bool { return w.Engine == c.ClosedBy && w.Interval == c.Measuring })
	if i < 0 {
		return nil
	}
	w := k.by[i]
	return &w
}

type queued struct {
	seq     uint64
	rep     protocol.WorkloadReport
	enq     time.Time
	attempt int
	resent  bool      // a kept report queued again for a new leader
	kept    uint64    // resent: the kept report's seq (keptReport.seq)
	noLead  time.Time // its first pass that found no leader (NoLeaderWait)
}

// NewReporter checks cfg and returns a running reporter.
func NewReporter(cfg ReporterConfig) (*Reporter, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("transport.ReporterConfig.Targets: no global node")
	}
	for i, t := range cfg.Targets {
		if t == nil {
			return nil, fmt.Errorf("transport.ReporterConfig.Targets[%d]: nil", i)
		}
	}
	if cfg.QueueCap < 0 || cfg.Attempts < 0 || cfg.Backoff < 0 || cfg.Timeout < 0 || cfg.NoLeaderWait < 0 {
		return nil, errors.New("transport.ReporterConfig: QueueCap, Attempts, Backoff, Timeout and NoLeaderWait must not be negative")
	}
	if err := CheckReporterID(cfg.ID); err != nil {
		return nil, fmt.Errorf("transport.ReporterConfig.ID: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.QueueCap == 0 {
		cfg.QueueCap = 256
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Reporter{cfg: cfg, ctx: ctx, cancel: cancel}, nil
}

// ErrReporterClosed is returned by ReportWorkload after Close.
var ErrReporterClosed = errors.New("workload reporter closed")

// ReportWorkload queues a report (checked first) and returns at once.
func (r *Reporter) ReportWorkload(rep protocol.WorkloadReport) error {
	if err := CheckWorkloadReport(rep); err != nil {
		return fmt.Errorf("workload report %s/%s: %w", rep.Kind, rep.DC, err)
	}
	if rep.Reporter == "" {
		rep.Reporter = r.cfg.ID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrReporterClosed
	}
	if len(r.queue) >= r.cfg.QueueCap {
		r.queue = r.queue[1:]
		r.stats.Dropped++
	}
	r.seq++
	r.queue = append(r.queue, queued{seq: r.seq, rep: rep, enq: r.cfg.Clock.Now()})
	r.stats.Queued++
	r.kickLocked()
	return nil
}

func (r *Reporter) kickLocked() {
	if r.busy || r.closed || len(r.queue) == 0 {
		return
	}
	r.busy = true
	r.wg.Add(1)
	go r.drain()
}

// drain sends the queue head by head until it is empty, a head needs a
// retry later (a timer resumes), or the reporter closes.
func (r *Reporter) drain() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if r.closed || len(r.queue) == 0 {
			idle := !r.closed && r.cfg.OnIdle != nil
			r.busy = false
			r.mu.Unlock()
			if idle {
				r.cfg.OnIdle()
			}
			return
		}
		head, pref := r.queue[0], r.pref
		r.mu.Unlock()

		idx, c, err := r.sendOnce(head.rep, pref)

		r.mu.Lock()
		if r.closed {
			r.busy = false
			r.mu.Unlock()
			return
		}
		more := r.bookLocked(idx, c, err, head)
		logCopy := err == nil && copyOfClosed(c)
		r.mu.Unlock()
		if logCopy {
			r.logCopy(idx, c, head) // not under r.mu: a slow handler must not hold up the sender's callers
		}
		if !more {
			return // a retry timer resumes the sending
		}
	}
}

// bookLocked counts the outcome of head's pass (idx, c, err: sendOnce's);
// false: the sender stops, a retry timer is armed.
func (r *Reporter) bookLocked(idx int, c Counted, err error, head queued) (more bool) {
	still := len(r.queue) > 0 && r.queue[0].seq == head.seq // not dropped meanwhile
	switch {
	case err == nil:
		r.noteCopyLocked(c)
		if r.cfg.Resend {
			r.resendLocked(idx, c, head)
		}
		r.pref, r.accepted = idx, true
		r.stats.Sent++
		lat := r.cfg.Clock.Now().Sub(head.enq)
		r.stats.Latency += lat
		r.stats.LatencyMax = max(r.stats.LatencyMax, lat)
		if still {
			r.queue = r.queue[1:]
		}
	case errors.Is(err, ErrRejected):
		r.stats.Rejected++
		if still {
			r.queue = r.queue[1:]
		}
		r.report(err)
	default:
		if !still {
			break
		}
		if q := &r.queue[0]; r.cfg.NoLeaderWait > 0 && errors.Is(err, ErrNotLeader) {
			now := r.cfg.Clock.Now()
			if q.noLead.IsZero() {
				q.noLead = now
			}
			if now.Sub(q.noLead) < r.cfg.NoLeaderWait {
				r.stats.Retries++
				r.retryLocked(r.cfg.Backoff) // an election: not an attempt
				return false
			}
		}
		r.queue[0].attempt++
		if r.queue[0].attempt >= r.cfg.Attempts {
			r.queue = r.queue[1:]
			r.stats.Failed++
			r.report(fmt.Errorf("workload report %s/%s given up after %d attempts: %w", head.rep.Kind, head.rep.DC,
				r.cfg.Attempts, err))
			break
		}
		r.stats.Retries++
		r.retryLocked(r.cfg.Backoff << (r.queue[0].attempt - 1))
		return false
	}
	return true
}

// retryLocked resumes the sending after wait (busy stays true meanwhile).
func (r *Reporter) retryLocked(wait time.Duration) {
	r.waiting = true
	r.timer = r.cfg.Clock.AfterFunc(wait, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.busy, r.waiting = false, false
		r.kickLocked()
	})
}

// countedIn is the interval a target counted a report in, when it said.
type countedIn struct {
	interval uint64
	known    bool
}

// before tells whether c is known to be an interval before d.
func (c countedIn) before(d countedIn) bool { return c.known && d.known && c.interval < d.interval }

// earliest is the earlier of two known intervals (either when one is
// unknown).
func (c countedIn) earliest(d countedIn) countedIn {
	if !c.known || d.before(c) {
		return d
	}
	return c
}

// copyOfClosed tells whether c is a copy a target says it counted in an
// interval before the one it measures now: the report's load is in that
// closed interval's averages, not in the one measured (a re-send after a
// lost answer, a leader flap).
func copyOfClosed(c Counted) bool {
	return c.Duplicate && c.Known && c.Interval < c.Measuring
}

// noteCopyLocked counts a copy of a closed interval's report (c,
// copyOfClosed); drain logs it (logCopy) once r.mu is released.
func (r *Reporter) noteCopyLocked(c Counted) {
	if copyOfClosed(c) {
		r.stats.CopiesOfClosed++
	}
}

// logCopy logs (Debug) a copy of a closed interval's report that target
// idx answered (noteCopyLocked).
func (r *Reporter) logCopy(idx int, c Counted, head queued) {
	r.cfg.Log.Debug("workload report copy: the node counted it in an interval closed since",
		"target", r.cfg.Targets[idx].String(), "dc", head.rep.DC, "kind", head.rep.Kind, "at", head.rep.At,
		"countedIn", c.Interval, "measuring", c.Measuring)
}

// resendLocked keeps the accepted report head (counted in in; a re-sent
// head's kept report takes idx as its target, and in when it is earlier)
// and, when target idx is not the one that accepted before (a leader
// change), queues the interval's reports the other targets took right
// behind the head, oldest first, in place of their copies still queued for
// an earlier new leader: all but those counted in an interval before the
// one idx measures now (now: closed since, with them in its averages),
// which are forgotten, their queued copies with them. in and now differ
// for a copy: in is where its original was counted, now the interval
// measured (CountedTarget; a target that does not say gives in for both,
// and then a copy of a closed interval's report skips less).
func (r *Reporter) resendLocked(idx int, c Counted, head queued) {
	in, now := countedIn{c.Interval, c.Known}, countedIn{c.Measuring, c.Known}
	if head.resent {
		// idx has it now, whichever leader the copy was queued for (the
		// lead may have moved on meanwhile): it is not queued again for
		// idx below. idx may count it in an earlier interval than the
		// old leader did (the old closed its interval but died before
		// the close was committed; the new resumes the round): a later
		// leader measuring the old one's interval must not get it again
		if i := slices.IndexFunc(r.kept, func(k keptReport) bool { return k.seq == head.kept }); i >= 0 {
			k := &r.kept[i]
			k.target = idx
			if w := k.closersWord(c); w != nil {
				// idx dropped it with an intake of the interval the closer
				// counted it in too: counted nowhere. Once more, with the
				// closer's word (idx counts it then); not booked in the
				// guessed interval, which would skip it at the next leader
				k.recount = true
				rep := head.rep
				rep.CountedBy = w
				r.seq++
				r.stats.Recounts++
				r.requeueLocked(head, []queued{{seq: r.seq, rep: rep, enq: r.cfg.Clock.Now(), resent: true, kept: k.seq}}, nil)
			} else {
				k.in = k.in.earliest(in)
			}
			k.heard(c)
		}
	}
	if r.accepted && idx != r.pref {
		var again []queued
		stale := map[uint64]bool{} // kept reports whose queued copies are replaced or forgotten
		kept := r.kept[:0]
		for _, k := range r.kept {
			switch {
			case k.target == idx:
			case k.in.before(now):
				r.stats.ResendSkipped++
				stale[k.seq] = true
				continue
			default:
				r.seq++
				again = append(again, queued{seq: r.seq, rep: k.rep, enq: r.cfg.Clock.Now(), resent: true, kept: k.seq})
				stale[k.seq] = true
				k.target = idx // re-sent to the new leader (its engine counts no copy of one it had)
			}
			kept = append(kept, k)
		}
		clear(r.kept[len(kept):])
		r.kept = kept
		r.requeueLocked(head, again, stale)
	}
	if head.resent {
		return
	}
	if len(r.kept) >= maxKept {
		r.kept = r.kept[1:]
	}
	k := keptReport{rep: head.rep, target: idx, in: in, seq: head.seq}
	k.heard(c)
	r.kept = append(r.kept, k)
}

// requeueLocked drops the queued re-sent copies of the kept reports in
// stale (queued for a leader that no longer leads) and puts again right
// behind head (first while the caller has not removed it), before the
// rest of the queue.
func (r *Reporter) requeueLocked(head queued, again []queued, stale map[uint64]bool) {
	if len(again) == 0 && len(stale) == 0 {
		return
	}
	r.stats.Resent += uint64(len(again))
	var first []queued
	rest := r.queue
	if len(rest) > 0 && rest[0].seq == head.seq {
		first, rest = rest[:1], rest[1:] // the caller removes the head
	}
	q := make([]queued, 0, len(r.queue)+len(again))
	q = append(append(q, first...), again...)
	for _, e := range rest {
		if !e.resent || !stale[e.kept] {
			q = append(q, e)
		}
	}
	r.queue = q
}

// maxKept bounds the reports kept for a re-send when NewInterval is not
// called (oldest dropped). The round engine's duplicate memory keeps as
// many times per reporter, DC and kind (global's seenKept): change both.
const maxKept = 4096

// NewInterval forgets the kept reports (Resend): the global controller
// closed the interval they measured. The daemon calls it when its local
// controllers enter a new interval.
func (r *Reporter) NewInterval() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kept = r.kept[:0]
}

func (r *Reporter) report(err error) {
	if r.cfg.OnError != nil {
		go r.cfg.OnError(err) // outside the lock, never blocking the sender
	}
}

// sendOnce tries every target once, from pref on. It returns the index of
// the target that accepted and what it said of the report (the interval
// it counted it in and measures: an IntervalTarget's or CountedTarget's,
// when it says), or the error: ErrRejected as soon as a node refuses the
// report for good, else the last transient error.
func (r *Reporter) sendOnce(rep protocol.WorkloadReport, pref int) (int, Counted, error) {
	n := len(r.cfg.Targets)
	var last error
	noLeader := false
	for i := range n {
		idx := (pref + i) % n
		// the measurement's age as sent, on this reporter's clock: the
		// receiver dates it by its own clock (a re-sent or long-queued
		// report of an interval already closed is recognised)
		rep.AgeMs = 0
		if !rep.At.IsZero() {
			rep.AgeMs = min(max(float64(r.cfg.Clock.Now().Sub(rep.At))/float64(time.Millisecond), 0), MaxReportAgeMs)
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
		var c Counted
		var err error
		switch t := r.cfg.Targets[idx].(type) {
		case CountedTarget:
			c, err = t.SendReportCounted(ctx, rep)
		case IntervalTarget:
			c.Interval, c.Known, err = t.SendReportInterval(ctx, rep)
			c.Measuring = c.Interval
		default:
			err = t.SendReport(ctx, rep)
		}
		cancel()
		if err == nil {
			return idx, c, nil
		}
		if errors.Is(err, ErrRejected) {
			return idx, Counted{}, err
		}
		last = err
		noLeader = noLeader || errors.Is(err, ErrNotLeader)
	}
	if noLeader {
		// a node answered, none leads: an election (or a partition)
		return 0, Counted{}, fmt.Errorf("no global node accepts reports (no leader known; the last: %v): %w", last, ErrNotLeader)
	}
	return 0, Counted{}, last
}

// Stats returns the counters.
func (r *Reporter) Stats() ReporterStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.QueueLen, s.Waiting = len(r.queue), r.waiting
	for _, t := range r.cfg.Targets {
		if l, ok := t.(interface {
			Legacy() bool
			LegacyFallbacks() uint64
		}); ok {
			if l.Legacy() {
				s.LegacyTargets++
			}
			s.LegacyFallbacks += l.LegacyFallbacks()
		}
	}
	return s
}

// Close stops sending (a send in flight is cancelled), drops what is
// queued and waits for the sender.
func (r *Reporter) Close() {
	r.mu.Lock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.queue = nil
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
