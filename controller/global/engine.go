// Package global owns the global controller: workload intake, prediction,
// planning and the round engine that runs the 5-step interval protocol of
// the paper's Fig. 3 with every local controller, re-sending each request
// unanswered after 500 ms. Every step's completion is committed to a Store
// (the raft FSM of controller/fsm in production), so a new leader resumes an
// interrupted round from its last committed step, re-sending the same
// (Round, Step, Seq) headers, and no step is applied twice. A step's
// command is applied with the engine's lock released, so workload reports,
// DC answers and reads never wait for a quorum commit; a result that comes
// back after the engine was stopped or restarted is dropped (the round goes
// on from the committed state).
//
// Round t (closing interval t):
//
//	1 predict    interval averages → Forecaster.Observe; Predict every series  → commit RoundStepDone{t,1}
//	2 acquire    AcquireProvision to every DC, wait all or StepDeadline          → commit RoundStepDone{t,2}
//	3 compute    placement.Plan over the snapshot → one DCDecision per DC        → commit DecisionCommitted{t}
//	4 broadcast  ApplyDecision to every reachable DC, wait all or StepDeadline   → commit RoundStepDone{t,4}
//	5 enter      EnterInterval to every reachable DC, wait all or StepDeadline   → commit IntervalEntered{t}: interval t+1
//
// Unanswering DC rule: a DC that has not answered a step's request
// StepDeadline (default 5 s = 10 re-sends) after the step began is given up
// for the rest of the round: the step completes without it, it is not sent
// the later steps, it is listed in the round record, Stats.Unreachable counts
// it and a warning is logged. Step 3 then plans with its last known
// provisioning (buffer treated as empty). The FSM marks it stale; the next
// round it answers brings it up to date (its step-4 decision carries absolute
// targets and the full path set, step 5 the interval index).
package global

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/placement"
)

// Config tunes the engine; zero fields take the defaults.
type Config struct {
	// Interval is the scaling interval (default 50 s).
	Interval time.Duration
	// Retransmit is the re-send timer (default protocol.RetransmitAfter, 500 ms).
	Retransmit time.Duration
	// StepDeadline is how long a step waits for a DC before giving it up for
	// the round (default 10 × Retransmit = 5 s). Must be below Interval.
	StepDeadline time.Duration
	// RecordsKept bounds the round records kept in memory (default 100).
	RecordsKept int
	// RateFactor scales the most plausible rate of a pair in a workload
	// report (intakebounds.go; default 1: what the whole system could serve).
	RateFactor float64
	// MaxReportSkew is how far ahead of this node's clock a workload report
	// may be stamped (default 10 s; behind: one interval more).
	MaxReportSkew time.Duration
	// SilentHoldRounds is how many rounds the last forecast of a series is
	// held while the DCs that report it are silent (silent.go; default 3);
	// after that the series counts as 0.
	SilentHoldRounds int
	// InitialRoundOnly runs no periodic round: the engine completes the
	// round it starts or resumes first and schedules no other (a strategy
	// without PeriodicRounds, controller/strategy). A store that has entered
	// an interval already had that round: Start then schedules none.
	// Trigger still runs a round on demand.
	InitialRoundOnly bool
	// TakeoverWait is how long an engine that starts leading after the
	// interval it measures has ended (a slow election) waits before closing
	// that interval, so that the reporters' re-sent reports of the interval
	// (transport.ReporterConfig.Resend: sent to a new leader right behind
	// the first report it accepts, reports come every second) are counted
	// in it and not in the next one (default 2 s, at most half the
	// interval; negative: no wait, the interval is closed at once). The same
	// engine leading again in the interval it measured when it stopped does
	// not wait: its intake holds the interval's reports already.
	TakeoverWait time.Duration
	// StageFloorMode is how the stage floor gives a DP stage the instances
	// its pairs' profile peaks need (ProfilePrior.StageFloorMode, copied by
	// controller/system; "": DefaultStageFloorMode). It acts only on rounds
	// whose prediction carries peaks (ProfilePrior.StageFloor).
	StageFloorMode string
	// Rise sets the round's NoRise and Fast flags of the DP stages (zero
	// fields: DefaultRisePolicy, issue #16's candidate H; Off: none).
	Rise RisePolicy
}

// DefaultTakeoverWait is Config.TakeoverWait's default: one report period
// (1 s) plus the reporters' retry while no node led (250 ms) and the send.
const DefaultTakeoverWait = 2 * time.Second

func (c Config) withDefaults() (Config, error) {
	if c.Interval == 0 {
		c.Interval = 50 * time.Second
	}
	if c.Retransmit == 0 {
		c.Retransmit = protocol.RetransmitAfter
	}
	if c.StepDeadline == 0 {
		c.StepDeadline = 10 * c.Retransmit
	}
	if c.RecordsKept == 0 {
		c.RecordsKept = 100
	}
	if c.RateFactor == 0 {
		c.RateFactor = DefaultRateFactor
	}
	if c.MaxReportSkew == 0 {
		c.MaxReportSkew = DefaultMaxReportSkew
	}
	if c.SilentHoldRounds == 0 {
		c.SilentHoldRounds = DefaultSilentHoldRounds
	}
	if c.TakeoverWait == 0 {
		c.TakeoverWait = min(DefaultTakeoverWait, c.Interval/2)
	}
	var err error
	if c.Rise, err = c.Rise.withDefaults(); err != nil {
		return c, err
	}
	switch {
	case c.Interval < 0 || c.Retransmit < 0 || c.StepDeadline < 0 || c.RecordsKept < 0 || c.MaxReportSkew < 0 || c.SilentHoldRounds < 0 || !(c.RateFactor > 0):
		return c, errors.New("global.Config: durations (TakeoverWait excepted), RecordsKept and MaxReportSkew must not be negative, RateFactor must be positive")
	case c.TakeoverWait > c.Interval/2:
		return c, fmt.Errorf("global.Config.TakeoverWait: %v must be at most half the interval %v", c.TakeoverWait, c.Interval)
	case c.StepDeadline >= c.Interval:
		return c, fmt.Errorf("global.Config.StepDeadline: %v must be below the interval %v", c.StepDeadline, c.Interval)
	case c.Retransmit > c.StepDeadline:
		return c, fmt.Errorf("global.Config.Retransmit: %v must not exceed StepDeadline %v", c.Retransmit, c.StepDeadline)
	}
	return c, nil
}

// takeoverWait is TakeoverWait with a negative value (no wait) as 0.
func (c Config) takeoverWait() time.Duration {
	return max(c.TakeoverWait, 0)
}

// Hooks observe the engine (tests, metrics). They run on the engine's
// goroutine with no engine lock held.
type Hooks struct {
	// StepCommitted runs after a step's completion is committed.
	StepCommitted func(round uint64, step protocol.Step)
}

// Deps are the engine's collaborators.
type Deps struct {
	Clock      clock.Clock
	Transport  transport.Transport
	Forecaster Forecaster
	Store      Store
	Logger     *slog.Logger
	Hooks      Hooks
	// Token names this engine's closes in the log
	// (fsm.Prediction.ClosedBy: closeSettled); "" draws one from
	// crypto/rand. Two engines sharing a log must have different tokens,
	// and an engine must not reuse the token of an earlier process of its
	// node (its closes in the log would pass for the new engine's): tests
	// and the simulator (one engine, a log of its own) pass fixed ones.
	Token string
}

// Stats are the engine's counters since it was created.
type Stats struct {
	Rounds           int // rounds completed by this engine
	Resumed          int // rounds this engine resumed from a committed step
	Requests         int // requests sent, first sends and re-sends
	Retransmissions  int // re-sends after Retransmit without an answer
	Unreachable      int // (DC, round) given up
	DuplicateAnswers int // answers to a request already answered
	InvalidAnswers   int // answers whose header or payload do not match
	TransportErrors  int // transport failures (treated as losses)
	LateAnswers      int // answers for a step that is over
	// KeepRefused counts step-4 decisions a local controller refused for
	// their KeepBuffered (HTTP 400 naming the field: rolled back after
	// advertising it at step 2), sent again at once without it.
	KeepRefused int
	// RiseRefused counts step-4 decisions without KeepBuffered a local
	// controller refused for their NoRise or Fast flags (rolled back after
	// advertising protocol.FeatureNoRise), sent again at once without them.
	RiseRefused int
	// DroppedCommits counts step commits whose result came back after the
	// engine was stopped or restarted (a leadership change): the round
	// went on from the committed state instead of applying the step's
	// result twice.
	DroppedCommits int
	// DroppedPlans counts step-3 plans whose result came back after the
	// engine was stopped or restarted: Stop cancels a running plan, which
	// returns at its next path search; the restarted engine plans again.
	DroppedPlans int
	// LateReports counts workload reports measured in an interval this
	// engine had already closed (a re-sent report that reached a new
	// leader after its delayed close, a report queued long in its
	// reporter): they are not counted in the next interval (lateReport).
	LateReports int
	// RefusedReporters counts workload reports refused because their
	// credential already had maxReportersPerCredential other reporters in
	// the report's DC and kind this interval (errTooManyReporters).
	RefusedReporters int
	// DuplicateReports counts copies of workload reports this engine had
	// counted (a leader flap, a re-send after a lost answer), counted
	// no more (ReportWorkloadOnce).
	DuplicateReports int
	// DroppedOnLostClose counts reports dropped with the intake of an
	// interval whose opening close this engine made in memory and another
	// leader redid in the log (closeSettled): those the reporters re-sent
	// to that leader it counted, the others are counted nowhere.
	DroppedOnLostClose int
	// KeptOnMatchingAverages counts closes without a token (read from a
	// session-12 leader's snapshot, a rolling upgrade) this engine took
	// for its own because their averages matched one of its proposals
	// (ownClose): its intake of the next interval is kept. Another node's
	// redo with the same averages is taken for its own too, and the
	// reports re-sent to that node then count twice (logged at Info).
	KeptOnMatchingAverages int
	// RecountedReports counts copies of reports dropped with an intake
	// (DroppedOnLostClose) counted again because they carried the closing
	// engine's word that it counted them in the interval this engine
	// measures (recountable): they would be counted nowhere.
	RecountedReports int
}

// StepTime is how long one step took.
type StepTime struct {
	Step     protocol.Step `json:"step"`
	Duration time.Duration `json:"duration"`
}

// DCResult is a DC's step-4 answer.
type DCResult struct {
	DC      string `json:"dc"`
	Created int    `json:"created"`
	Reused  int    `json:"reused"`
	Error   string `json:"error,omitempty"`
	// KeepRefused: the DC refused the decision's keepBuffered and got it
	// without (fsm.DCAnswer.KeepRefused)
	KeepRefused bool `json:"keepRefused,omitempty"`
}

// RoundRecord explains one round after the fact.
type RoundRecord struct {
	Round uint64 `json:"round"`
	// Resumed is set when this engine finished a round started by another
	// leader (or by itself before losing leadership).
	Resumed         bool                     `json:"resumed,omitempty"`
	Started         time.Time                `json:"started"`
	Finished        time.Time                `json:"finished"`
	Steps           []StepTime               `json:"steps"`
	Retransmissions int                      `json:"retransmissions"`
	Unreachable     map[string]protocol.Step `json:"unreachable,omitempty"`
	// Actual holds interval Round's measured averages, Predicted the
	// forecasts for Round+1, PreviousPredicted the forecasts the previous
	// round made for interval Round (compare with Actual).
	Actual            map[string]float64 `json:"actual,omitempty"`
	Predicted         map[string]float64 `json:"predicted,omitempty"`
	PreviousPredicted map[string]float64 `json:"previousPredicted,omitempty"`
	// Forecasts says how each of Predicted was made (the model, for "auto"
	// the candidate chosen, and the "+qNN" margin; held series are not
	// updated). Nil when the round was resumed from another leader's step.
	Forecasts map[string]Forecast   `json:"forecasts,omitempty"`
	Decision  []protocol.DCDecision `json:"decision,omitempty"`
	Paths     []protocol.PathEntry  `json:"paths,omitempty"`
	Totals    placement.Totals      `json:"totals"`
	PlanError string                `json:"planError,omitempty"`
	Results   []DCResult            `json:"results,omitempty"`
}

type outstanding struct {
	req   protocol.Request
	timer clock.Timer
	sends int
}

type exchange struct {
	round   uint64
	step    protocol.Step
	pending map[string]*outstanding
	answers map[string]protocol.Response
	gaveUp  []string
	timer   clock.Timer
	// keepRefused: the DCs whose step-4 decision was sent again without
	// KeepBuffered (resendWithoutOptional)
	keepRefused map[string]bool
}

type send struct {
	dc      string
	req     protocol.Request
	deliver transport.Deliver
}

// offLock is a step's slow part, set up under e.mu and run by locked with
// e.mu released: a commit (a quorum write takes a disk sync and a network
// round trip) or the plan (placement.Plan: tens of ms at 100 DCs, seconds
// at 500). Reports, answers and reads must not wait for either. then
// continues the round under e.mu with run's result, unless the engine was
// stopped or started again meanwhile (the result is then dropped).
type offLock struct {
	ep   uint64      // the epoch (leadership term of this engine) that set it up
	c    fsm.Command // the command of a commit; nil for the plan
	run  func() error
	then func(error)
	// cancel stops the plan between two of its path searches (Stop: a
	// shutdown or lost leadership does not wait for it); nil for a commit
	cancel context.CancelFunc
}

// Engine runs rounds while started (on the raft leader only).
type Engine struct {
	cfg Config
	d   Deps
	log *slog.Logger

	mu      sync.Mutex
	running bool
	epoch   uint64 // bumped by Start, Stop and Trigger: older timers and answers are ignored
	timer   clock.Timer
	ex      *exchange
	// queued is the off-lock work (a commit, the plan) the function run by
	// locked asked for; inflight the one running (nil: none). At most one
	// runs per epoch: the step that queues it has no timer or exchange left
	// that could move the round on, and Trigger refuses (returns false)
	// while one runs.
	queued, inflight *offLock
	// next is the step after a committed one: locked runs it once the
	// step's hooks have run, unless the engine was stopped or restarted by
	// then (a StepCommitted hook happens before the next step begins)
	next func()
	// plan is placement.PlanContext (tests replace it)
	plan func(context.Context, *placement.Snapshot, placement.Options) (*placement.Decision, error)
	in   intake
	// inFor is the interval whose reports in holds (by arrival): a round's
	// predict step starts it for the next interval; an engine that starts
	// leading while another interval runs drops what it holds (Start)
	inFor uint64
	// inSince is when, on this engine's clock, the interval in measures
	// began: this engine's close of the one before, or the committed
	// round start that closed it (zero: unknown, no report is late)
	inSince time.Time
	// inSinceStored: inSince is the committed round start, read on another
	// node's clock (the leader that started the round), so it is compared
	// with MaxReportSkew's tolerance; false: this engine's own close, exact
	inSinceStored bool
	// led: this engine has led (run) before, so an in with inFor equal to
	// the interval measured holds that interval's reports of its own term
	led bool
	// closing holds interval closingFor's reports while the predict step
	// that closes it commits (nil: none): it is kept for a retry of the
	// step and dropped once the committed state shows the step done
	closing    *intake
	closingFor uint64
	// closingActual: the averages of each predict commit this engine
	// proposed for closingFor's close (a retry may propose again), to
	// know its own close in a log read from an older leader's snapshot,
	// which has no token (ownClose)
	closingActual []map[string]float64
	// token names this engine's closes in the log
	// (fsm.Prediction.ClosedBy: closeSettled); id is its EngineID, in the
	// answers to workload reports
	token, id string
	// droppedBy: the closes of another engine that made this one drop
	// its intake of the next interval, interval → that engine's ID
	// (noteDropped; at most maxDroppedBy)
	droppedBy map[uint64]string
	// seen: the reports this engine counted, for its whole life (copies
	// are counted once; intakeseen.go)
	seen seenReports

	known    map[string]bool // DCs of the topology (intake validation)
	bounds   intakeBounds    // plausibility limits of the topology (intakebounds.go)
	series   map[string]bool // every series observed so far
	silent   silence         // who reports which series (silent.go)
	observed uint64          // history rounds < observed are in the forecaster
	// lastPred is the newest committed prediction this engine knows, of
	// round predFor−1 (predFor 0: none): the next round's
	// PreviousPredicted and the value a held series keeps
	lastPred  map[string]float64
	predFor   uint64
	rec       *RoundRecord
	stepStart time.Time
	records   []RoundRecord
	stats     Stats
	lastDelay map[string]delaySample // delay key → last sample (delays.go)

	outbox []send
	hooks  []func()
}

// New checks the configuration and returns a stopped engine.
func New(cfg Config, d Deps) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch {
	case d.Clock == nil:
		return nil, errors.New("global.Deps.Clock: nil")
	case d.Transport == nil:
		return nil, errors.New("global.Deps.Transport: nil")
	case d.Forecaster == nil:
		return nil, errors.New("global.Deps.Forecaster: nil")
	case d.Store == nil:
		return nil, errors.New("global.Deps.Store: nil")
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	token := d.Token
	if token == "" {
		token = rand.Text()
	}
	return &Engine{cfg: cfg, d: d, log: log, in: newIntake(), series: map[string]bool{}, silent: newSilence(), plan: placement.PlanContext,
		token: token, id: EngineID(token)}, nil
}

// Seq is the deterministic sequence number of a round's step: every leader
// sends the same header for the same (round, step, DC).
func Seq(round uint64, step protocol.Step) uint64 { return round<<3 | uint64(step) }

// locked runs f under the lock, then the hooks it queued, then (if the
// engine was not stopped meanwhile) the sends it queued, then the next
// step f set (e.next) under the lock. Off-lock work f queued (a commit, the
// plan) runs with the lock released, and its result is handled under the
// lock again; each may queue hooks, sends, a next step and more off-lock
// work in turn.
func (e *Engine) locked(f func()) {
	e.mu.Lock()
	f()
	for {
		p := e.queued
		e.queued = nil
		var next func()
		if p != nil {
			e.inflight = p
		} else {
			next, e.next = e.next, nil
		}
		hooks, out, ep := e.hooks, e.outbox, e.epoch
		e.hooks, e.outbox = nil, nil
		e.mu.Unlock()
		e.flush(hooks, out, ep)
		if next != nil {
			e.mu.Lock()
			if e.running && e.epoch == ep {
				next()
			}
			continue
		}
		if p == nil {
			return
		}
		err := p.run()
		e.mu.Lock()
		if e.inflight != p || !e.running || e.epoch != p.ep {
			what := "plan"
			if p.c != nil {
				what = fmt.Sprintf("commit %T", p.c)
				e.stats.DroppedCommits++
			} else {
				e.stats.DroppedPlans++
			}
			e.log.Info("the engine stopped or restarted while a step ran without its lock; the result is dropped",
				"step", what, "err", err)
			continue
		}
		e.inflight = nil
		p.then(err)
	}
}

// flush runs hooks, then the sends of epoch ep if the engine still runs it.
func (e *Engine) flush(hooks []func(), out []send, ep uint64) {
	for _, h := range hooks {
		h()
	}
	if len(out) == 0 {
		return
	}
	e.mu.Lock()
	live := e.running && e.epoch == ep
	e.mu.Unlock()
	if !live {
		return
	}
	for _, s := range out {
		e.d.Transport.Send(s.dc, s.req, s.deliver)
	}
}

// after runs f under the lock after d, unless the engine stops or restarts
// meanwhile.
func (e *Engine) after(d time.Duration, f func()) clock.Timer {
	ep := e.epoch
	return e.d.Clock.AfterFunc(d, func() {
		e.locked(func() {
			if e.running && e.epoch == ep {
				f()
			}
		})
	})
}

// Start makes the engine run rounds: it waits for the store to be up to
// date, resumes a round in progress at once, or schedules the next round one
// Interval from now.
func (e *Engine) Start() error {
	if err := e.d.Store.Sync(); err != nil {
		return fmt.Errorf("global: store sync: %w", err)
	}
	e.locked(func() {
		if e.running {
			return
		}
		e.running = true
		e.epoch++
		st := e.d.Store.State()
		e.refreshTopology(&st)
		e.replayHistory()
		m := measuring(&st)
		dropped := e.closeSettled(&st)
		// the same engine leads again in the interval it measured when it
		// stopped: its intake holds the interval's reports already (not
		// when it began at this engine's close of the interval before and
		// another leader closed that one: closeSettled)
		kept := e.led && !dropped && e.closing == nil && e.inFor == m
		e.led = true
		if e.closing == nil && e.inFor != m {
			// reports this engine took in an earlier term belong to an
			// interval another leader has closed since: they are not this
			// interval's (the reporters re-send this interval's to us)
			e.in, e.inFor = newIntake(), m
			e.inSince, e.inSinceStored = intervalBegan(&st), true
		}
		if st.Round != nil {
			e.log.Info("resuming round", "round", st.Round.Round, "lastDoneStep", st.Round.Done)
			e.stats.Resumed++
			e.newRecord(st.Round.Round, true)
			wait := time.Duration(0)
			if st.Round.Done < protocol.StepPredict && e.closing == nil {
				// the round's interval is not closed yet (the old leader
				// died between the round's start and its predict step)
				wait = e.cfg.takeoverWait()
			}
			e.timer = e.after(wait, e.advance)
			return
		}
		if e.cfg.InitialRoundOnly && st.Interval > 0 {
			return // the initial round is done
		}
		next := nextRoundIn(st.RoundStartedAt, e.d.Clock.Now(), e.cfg.Interval)
		if !st.RoundStartedAt.IsZero() && !kept {
			// a leader elected after the interval's end (or just before
			// it) closes the interval once the re-sent reports are in; one
			// that kept its intake of the interval does not move the
			// interval's boundary (each re-election would shift it)
			next = max(next, e.cfg.takeoverWait())
		}
		e.timer = e.after(next, e.startRound)
	})
	return nil
}

// intervalBegan is when the interval measured in state st began, as far
// as the store tells: the start of the round that closed the interval
// before (its predict step came at that time or up to TakeoverWait later,
// so a report of that gap still counts in this interval), or zero when
// the round closing this interval has started but not predicted (the
// store keeps no earlier round's start).
func intervalBegan(st *fsm.State) time.Time {
	if st.Round != nil && st.Round.Done < protocol.StepPredict {
		return time.Time{}
	}
	return st.RoundStartedAt
}

// measuring is the interval whose workload is being measured in state st:
// round t closes interval t, and from its predict step on the reports are
// interval t+1's.
func measuring(st *fsm.State) uint64 {
	if st.Round != nil && st.Round.Done >= protocol.StepPredict {
		return st.Round.Round + 1
	}
	return st.Interval
}

// nextRoundIn keeps the interval boundaries across a leader change: the
// next round starts one interval after the last one started (at once if
// that is past), or one interval from now when no round ever ran.
func nextRoundIn(lastStart, now time.Time, interval time.Duration) time.Duration {
	if lastStart.IsZero() {
		return interval
	}
	return min(max(lastStart.Add(interval).Sub(now), 0), interval)
}

// Stop stops running rounds (lost leadership, shutdown). A round in progress
// stays in the store for the next leader.
func (e *Engine) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stop()
}

// stop is Stop under the lock. It forgets the round record too: a round
// record left behind would keep every later startRound of this engine
// from starting a round once it leads again after another leader
// finished the round (an engine whose commit found it no longer led
// never ran a round again).
func (e *Engine) stop() {
	if !e.running {
		return
	}
	e.running = false
	e.epoch++
	if e.timer != nil {
		e.timer.Stop()
	}
	e.dropExchange()
	e.rec = nil
	if p := e.inflight; p != nil && p.cancel != nil {
		p.cancel() // the plan returns at its next step, its result is dropped
	}
	e.inflight, e.next = nil, nil // a result that comes later is dropped
}

// Trigger starts the next round now instead of at its scheduled time (an
// operator's "run a round", benchmarks). It returns false if the engine is
// stopped or a round is in progress.
func (e *Engine) Trigger() bool {
	ok := false
	e.locked(func() {
		if !e.running || e.rec != nil || e.inflight != nil {
			return
		}
		ok = true
		if e.timer != nil {
			e.timer.Stop()
		}
		// a timer that already fired (Stop too late: its callback waits
		// for the lock), a round timer or the retry of a failed commit,
		// does nothing: no round is open, so no exchange or commit of
		// this epoch is left to keep
		e.epoch++
		e.startRound()
	})
	return ok
}

// Running reports whether the engine runs rounds.
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running
}

func (e *Engine) dropExchange() {
	if e.ex == nil {
		return
	}
	for _, o := range e.ex.pending {
		o.timer.Stop()
	}
	if e.ex.timer != nil {
		e.ex.timer.Stop()
	}
	e.ex = nil
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Records returns the completed rounds' records, oldest first.
func (e *Engine) Records() []RoundRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.records)
}

// Forecasts returns how round's predictions were made (RoundRecord.Forecasts),
// nil when this engine did not forecast that round or no longer keeps it.
func (e *Engine) Forecasts(round uint64) map[string]Forecast {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rec != nil && e.rec.Round == round {
		return e.rec.Forecasts // the round in progress
	}
	for i := len(e.records) - 1; i >= 0; i-- {
		if r := e.records[i]; r.Round == round {
			return r.Forecasts
		}
	}
	return nil
}

// ReportWorkload takes a local controller's periodic CP or DP report; it is
// counted in the current interval's averages.
func (e *Engine) ReportWorkload(r protocol.WorkloadReport) error {
	_, err := e.ReportWorkloadInterval(r)
	return err
}

// ReportWorkloadInterval is ReportWorkload that also tells which interval
// the report is counted in (the interval the intake measures, as the
// committed state numbers it: fsm.State.Interval, or the round's + 1 from
// its predict step on; for a late report, dropped, the interval measured
// all the same; for a copy of a report this engine counted, counted no
// more, the interval it was counted in: ReportWorkloadOnce; 0 with an
// error). A reporter that re-sends its accepted reports to a new leader
// skips those counted in an interval the new leader no longer measures
// (closed: their averages are committed), instead of having them counted
// again in the next one (transport.Reporter's Resend).
func (e *Engine) ReportWorkloadInterval(r protocol.WorkloadReport) (uint64, error) {
	interval, _, err := e.ReportWorkloadOnce(r)
	return interval, err
}

// lateReport tells whether a report was measured before the interval the
// intake measures began, on this engine's clock: its arrival less its age
// (protocol.WorkloadReport.AgeMs, measured on the reporter's clock, so no
// skew between the reporter's and this node's clocks enters). When the
// interval's beginning is this engine's own close of the one before, the
// test is exact. When it is the committed round start (a takeover: the
// start was read on the old leader's clock, which may be off this node's),
// a report is late only when measured more than MaxReportSkew before it:
// within that window the two global nodes' clocks may simply disagree, and
// dropping a fresh report of the new interval would lose load silently. A
// report without an age (a reporter of an older version) is dated by its
// own time: late when that lies more than MaxReportSkew before the
// interval's beginning, or before it at all when the report came out of
// order (intake.behind: dated no later than one its reporter already sent
// this interval), as the reports such a reporter re-sends to a new leader
// right behind the one that found it do; those of the interval closed
// before were counted there. A report in order within the skew window is
// counted: its reporter's clock may simply be behind. A report without a
// time, or an interval whose beginning is unknown, is never late.
func (e *Engine) lateReport(r protocol.WorkloadReport) bool {
	if e.inSince.IsZero() || r.At.IsZero() {
		return false
	}
	if r.AgeMs > 0 {
		measured := e.d.Clock.Now().Add(-time.Duration(r.AgeMs * float64(time.Millisecond)))
		if e.inSinceStored {
			return measured.Before(e.inSince.Add(-e.cfg.MaxReportSkew))
		}
		return measured.Before(e.inSince)
	}
	if r.At.Before(e.inSince) && e.in.behind(r) {
		return true
	}
	return r.At.Before(e.inSince.Add(-e.cfg.MaxReportSkew))
}

func (e *Engine) refreshTopology(st *fsm.State) {
	if st.Topology == nil {
		return
	}
	e.known = map[string]bool{}
	for _, dc := range st.Topology.DCs {
		e.known[dc] = true
	}
	e.bounds = boundsFor(st.Topology, e.cfg.RateFactor)
}

// replayHistory feeds committed interval averages this engine has not
// observed yet into the forecaster (a follower that becomes leader).
func (e *Engine) replayHistory() {
	for _, p := range e.d.Store.History() {
		if p.Round < e.observed {
			continue
		}
		for k := range p.Actual {
			e.series[k] = true
		}
		if err := e.d.Forecaster.Observe(p.Actual); err != nil {
			e.log.Warn("forecaster rejected a replayed observation", "round", p.Round, "err", err)
		}
		e.observed = p.Round + 1
		e.lastPred, e.predFor = p.Predicted, p.Round+1
	}
}

func (e *Engine) newRecord(round uint64, resumed bool) {
	e.rec = &RoundRecord{Round: round, Resumed: resumed, Started: e.d.Clock.Now()}
	e.stepStart = e.rec.Started
}

func (e *Engine) stepDone(step protocol.Step) {
	now := e.d.Clock.Now()
	if e.rec != nil {
		e.rec.Steps = append(e.rec.Steps, StepTime{Step: step, Duration: now.Sub(e.stepStart)})
	}
	e.stepStart = now
	if h := e.d.Hooks.StepCommitted; h != nil {
		round := e.rec.Round
		e.hooks = append(e.hooks, func() { h(round, step) })
	}
}

// commit queues a step's command; locked applies it once the lock is
// released and then, if the engine was not stopped or started again
// meanwhile (a leadership change, a shutdown: the next start resumes the
// round from the committed state), handles the outcome under the lock
// (committed). The caller returns after it: whatever the step does after
// its commit belongs in then.
func (e *Engine) commit(c fsm.Command, then func()) {
	e.queued = &offLock{ep: e.epoch, c: c, run: func() error { return e.d.Store.Apply(c) },
		then: func(err error) { e.committed(err, then) }}
}

// committed handles the outcome of a commit, under the lock: success runs
// then, which records the step and goes on from the committed state (every
// continuation re-reads it: advance, startRound), a stale rejection means
// the step was already committed (the state is re-read), lost leadership
// stops the engine, and any other failure retries from the committed state.
func (e *Engine) committed(err error, then func()) {
	switch {
	case err == nil:
		then()
	case errors.Is(err, fsm.ErrStale):
		e.log.Info("command already applied, continuing from the committed state", "err", err)
		e.timer = e.after(0, e.advance)
	case errors.Is(err, ErrNotLeader):
		e.log.Error("lost leadership, stopping the round engine", "err", err)
		e.stop()
	default:
		e.log.Error("commit failed, retrying from the committed state", "err", err, "after", e.cfg.Retransmit)
		e.timer = e.after(e.cfg.Retransmit, e.advance)
	}
}

// startRound commits the next round's start; a round already open or a
// commit in flight is left alone (a guard: Trigger refuses then, and
// every timer set before Trigger is void).
func (e *Engine) startRound() {
	if e.rec != nil || e.inflight != nil {
		return
	}
	st := e.d.Store.State()
	e.refreshTopology(&st)
	if st.Topology == nil || st.Policy.Validate() != nil {
		e.log.Warn("no topology or policy committed, skipping the round")
		e.timer = e.after(e.cfg.Interval, e.startRound)
		return
	}
	if st.Round == nil {
		round := st.Interval
		e.commit(fsm.RoundStarted{Round: round, At: e.d.Clock.Now()}, func() {
			e.newRecord(round, false)
			e.advance()
		})
		return
	}
	e.newRecord(st.Round.Round, true)
	e.advance()
}

// advance continues the round from the committed state.
func (e *Engine) advance() {
	st := e.d.Store.State()
	e.closeSettled(&st)
	r := st.Round
	if r == nil {
		e.finishRound()
		return
	}
	if e.rec == nil || e.rec.Round != r.Round {
		e.newRecord(r.Round, true)
	}
	if r.Done >= protocol.StepPredict {
		e.adoptPrediction(r)
	}
	switch r.Done {
	case 0:
		e.predict(&st)
	case protocol.StepPredict:
		e.startExchange(&st, protocol.StepAcquire)
	case protocol.StepAcquire:
		e.compute(&st)
	case protocol.StepCompute:
		e.startExchange(&st, protocol.StepBroadcast)
	case protocol.StepBroadcast:
		e.startExchange(&st, protocol.StepEnter)
	}
}

func (e *Engine) finishRound() {
	if e.rec != nil {
		e.rec.Finished = e.d.Clock.Now()
		e.records = append(e.records, *e.rec)
		if len(e.records) > e.cfg.RecordsKept {
			e.records = slices.Delete(e.records, 0, len(e.records)-e.cfg.RecordsKept)
		}
		e.stats.Rounds++
		next := e.rec.Started.Add(e.cfg.Interval).Sub(e.rec.Finished)
		e.rec = nil
		if !e.cfg.InitialRoundOnly {
			e.timer = e.after(max(next, 0), e.startRound)
		}
		return
	}
	if !e.cfg.InitialRoundOnly {
		e.timer = e.after(e.cfg.Interval, e.startRound)
	}
}

// predict is step 1: the interval averages feed the forecaster, every known
// series is forecast for the next interval.
func (e *Engine) predict(st *fsm.State) {
	round := st.Round.Round
	if e.closing == nil || e.closingFor != round {
		// the interval closes here: reports that arrive from now on (while
		// this step commits, too) are the next interval's
		in := e.in
		e.closing, e.closingFor, e.closingActual = &in, round, nil
		e.in, e.inFor, e.inSince, e.inSinceStored = newIntake(), round+1, e.d.Clock.Now(), false
	}
	in := e.closing
	avg, kinds := in.averages()
	// A workload series with history but absent this interval is 0 when a
	// DC that reports it reported its kind (no traffic on the pair); while
	// its reporters are silent its last forecast is held (silent.go);
	// delays are not invented.
	e.silent.learn(in)
	held, dcs := e.silent.fill(e.series, avg, in, kinds, round, e.cfg.SilentHoldRounds)
	if len(held) > 0 {
		e.log.Warn("no workload report from these datacenters this interval: their series are missing, not zero; holding the last forecast",
			"round", round, "silentDCs", dcs, "series", len(held), "held", heldNote(held), "holdRounds", e.cfg.SilentHoldRounds)
	}
	if e.observed <= round { // not after a failed commit of this step: observe once
		for k := range avg {
			e.series[k] = true
		}
		if err := e.d.Forecaster.Observe(avg); err != nil {
			e.log.Warn("forecaster rejected an observation", "round", round, "err", err)
		}
		e.observed = round + 1
	}
	keys := slices.Sorted(maps.Keys(e.series))
	if rf, ok := e.d.Forecaster.(RecentForecaster); ok {
		rf.SetRecent(in.recent(e.cfg.Interval))
	}
	fc := e.d.Forecaster.Predict(keys)
	pred := make(map[string]float64, len(e.series))
	for _, k := range keys {
		v := fc[k].Value
		if math.IsNaN(v) || math.IsInf(v, 0) {
			e.log.Warn("forecaster returned a non-finite prediction; series skipped", "series", k)
			continue
		}
		pred[k] = max(v, 0)
	}
	for _, k := range held {
		if v, ok := e.lastPred[k]; ok {
			pred[k] = v // missing data: the last forecast, held
		}
	}
	var peak, rise map[string]float64
	for k, f := range fc {
		if r := f.Rise; r != 0 && !math.IsNaN(r) && !math.IsInf(r, 0) {
			if rise == nil {
				rise = map[string]float64{}
			}
			rise[k] = r
		}
	}
	for k, v := range pred {
		if pk := fc[k].Peak; validRate(pk) && pk > v {
			if peak == nil {
				peak = map[string]float64{}
			}
			peak[k] = pk
		}
	}
	if !slices.ContainsFunc(e.closingActual, func(a map[string]float64) bool { return maps.Equal(a, avg) }) {
		// a retry averages the same frozen intake: one entry is enough
		e.closingActual = append(e.closingActual, avg)
	}
	e.commit(fsm.RoundStepDone{Round: round, Step: protocol.StepPredict, Prediction: &fsm.Prediction{Round: round, Actual: avg, Predicted: pred, Peak: peak, Rise: rise, ClosedBy: e.token}}, func() {
		e.closing, e.closingActual = nil, nil
		e.rec.Actual, e.rec.Predicted, e.rec.PreviousPredicted, e.rec.Forecasts = avg, pred, e.lastPred, fc
		e.lastPred, e.predFor = pred, round+1
		e.stepDone(protocol.StepPredict)
		e.next = e.advance
	})
}

// adoptPrediction takes round r's committed prediction into a record that
// lacks it (a resumed round, or a predict commit that succeeded but whose
// result was dropped because the engine was stopped and started while it
// was in flight) and makes it the last prediction unless it already is: the
// next round's PreviousPredicted and held series are this round's.
func (e *Engine) adoptPrediction(r *fsm.Round) {
	p := r.Prediction
	if p == nil || p.Round != r.Round || e.rec.Predicted != nil {
		return
	}
	e.rec.Predicted, e.rec.Actual = p.Predicted, p.Actual
	if e.predFor != r.Round+1 {
		e.rec.PreviousPredicted = e.lastPred
		e.lastPred, e.predFor = p.Predicted, r.Round+1
	}
}

// compute is step 3: the snapshot is built under the lock, the plan runs
// without it (decide goes on); Stop cancels it, so a shutdown or lost
// leadership waits for at most one of its path searches, not the plan.
func (e *Engine) compute(st *fsm.State) {
	snap, err := buildSnapshot(st)
	if err != nil {
		e.log.Error("cannot build the planning snapshot; round waits for a topology", "err", err)
		e.timer = e.after(e.cfg.Interval, e.advance)
		return
	}
	opt := placement.Options{Exact: st.Policy.Exact, IgnoreBuffer: st.Policy.IgnoreBuffer, LocalFirst: st.Policy.LocalFirst,
		Improve: placement.ImproveOptions{Budget: st.Policy.ImproveBudget}}
	var dec *placement.Decision
	ctx, cancel := context.WithCancel(context.Background())
	e.queued = &offLock{ep: e.epoch, cancel: cancel, run: func() (err error) {
		defer cancel()
		dec, err = e.plan(ctx, snap, opt)
		return err
	}, then: func(err error) { e.decide(st, snap, dec, err) }}
}

// decide is step 3 after the plan: the decision (or the current
// provisioning kept, when the plan failed) is committed.
func (e *Engine) decide(st *fsm.State, snap *placement.Snapshot, dec *placement.Decision, err error) {
	round := st.Round.Round
	note := ""
	if err == nil && !decisionShapeOK(dec, snap.N, len(snap.Stages)) {
		err = errors.New("plan returned a decision that does not cover every DC and stage")
	}
	if err != nil {
		e.log.Error("planning failed; keeping the current provisioning and paths", "round", round, "err", err)
		e.rec.PlanError = err.Error()
		note = "plan failed (" + err.Error() + "), keeping current: "
		dec = keepDecision(snap)
	}
	var raised map[[2]int]stageRaise
	if err == nil && st.Round.Prediction != nil {
		raised = stageFloor(st.Topology, snap, dec, st.Round.Prediction.Peak, e.cfg.StageFloorMode)
	}
	var flags [][]stageFlags
	if err == nil && st.Round.Prediction != nil && !e.cfg.Rise.Off && anyAdvertises(st.Round.Provisions, protocol.FeatureNoRise) {
		// from the committed state only (norise.go stageHistory)
		pr := st.Round.Prediction
		s := sumStages(st.Topology, dec, pr.Actual, pr.Rise, e.cfg.Rise)
		flags = riseFlags(s, stageHistory(st.Topology, dec, e.d.Store.History(), pr, e.cfg.Rise), st.Topology.Stages, e.cfg.Rise)
	}
	dcs, paths := toDecisions(st.Topology, snap, dec, round, note)
	noteStageFloor(st.Topology, dcs, raised, st.Round.Provisions)
	if flags != nil {
		markRise(st.Topology, flags, dcs, st.Round.Provisions)
	}
	addControls(st, dcs)
	e.commit(fsm.DecisionCommitted{Round: round, Decision: dcs, Paths: paths}, func() {
		e.rec.Decision, e.rec.Paths, e.rec.Totals = dcs, paths, dec.Totals()
		e.stepDone(protocol.StepCompute)
		e.next = e.advance
	})
}

// startExchange sends a step's request to every DC not given up this round.
func (e *Engine) startExchange(st *fsm.State, step protocol.Step) {
	r := st.Round
	ex := &exchange{round: r.Round, step: step, pending: map[string]*outstanding{}, answers: map[string]protocol.Response{}}
	decisions := map[string]protocol.DCDecision{}
	for _, d := range r.Decision {
		decisions[d.DC] = d
	}
	e.ex = ex
	for _, dc := range st.Topology.DCs {
		if _, gone := r.Unreachable[dc]; gone {
			continue
		}
		req := protocol.Request{Header: protocol.Header{Round: r.Round, Step: step, Seq: Seq(r.Round, step), DC: dc},
			Expires: e.d.Clock.Now().Add(e.cfg.StepDeadline)}
		if step == protocol.StepBroadcast {
			d, ok := decisions[dc]
			if !ok {
				d = protocol.DCDecision{DC: dc, Interval: r.Round + 1}
			}
			d.Paths = r.Paths
			req.Decision = &d
		}
		o := &outstanding{req: req}
		ex.pending[dc] = o
		e.send(ex, dc, o)
	}
	if len(ex.pending) == 0 {
		e.finishExchange(ex)
		return
	}
	ex.timer = e.after(e.cfg.StepDeadline, func() { e.onDeadline(ex) })
}

func (e *Engine) send(ex *exchange, dc string, o *outstanding) {
	o.sends++
	e.stats.Requests++
	if o.sends > 1 {
		e.stats.Retransmissions++
		if e.rec != nil {
			e.rec.Retransmissions++
		}
	}
	ep := e.epoch
	e.outbox = append(e.outbox, send{dc: dc, req: o.req, deliver: func(resp protocol.Response, err error) {
		e.locked(func() { e.onAnswer(ep, ex, dc, resp, err) })
	}})
	o.timer = e.after(e.cfg.Retransmit, func() {
		if e.ex == ex && ex.pending[dc] == o {
			e.send(ex, dc, o)
		}
	})
}

func (e *Engine) onAnswer(ep uint64, ex *exchange, dc string, resp protocol.Response, err error) {
	if err != nil {
		if e.resendWithoutOptional(ep, ex, dc, err) {
			return
		}
		e.stats.TransportErrors++
		return
	}
	if !e.running || e.epoch != ep || e.ex != ex {
		e.stats.LateAnswers++
		return
	}
	o, ok := ex.pending[dc]
	if !ok {
		if _, answered := ex.answers[dc]; answered {
			e.stats.DuplicateAnswers++
		} else {
			e.stats.LateAnswers++ // a DC given up, answering after the deadline
		}
		return
	}
	if resp.Header != o.req.Header {
		e.stats.InvalidAnswers++
		e.log.Warn("answer does not match the request", "dc", dc, "want", o.req.Header, "got", resp.Header)
		return
	}
	if ex.step == protocol.StepAcquire && resp.Error == "" && (resp.Provision == nil || resp.Provision.DC != dc) {
		e.stats.InvalidAnswers++
		e.log.Warn("step-2 answer without this DC's provision report", "dc", dc)
		return
	}
	o.timer.Stop()
	delete(ex.pending, dc)
	ex.answers[dc] = resp
	if len(ex.pending) == 0 {
		e.finishExchange(ex)
	}
}

// resendWithoutOptional answers a step-4 refusal of an optional target field
// (refusesOptional: KeepBuffered, NoRise or Fast; the DC's local
// controller advertised the feature at step 2 and was rolled back since)
// by sending the DC's decision again at once without those fields, so
// the DC is not given up for the round; the hold and the flags are lost in
// that DC this interval (the step's outcome says keepRefused when a hold
// was dropped). It reports whether it did.
func (e *Engine) resendWithoutOptional(ep uint64, ex *exchange, dc string, err error) bool {
	if !e.running || e.epoch != ep || e.ex != ex || ex.step != protocol.StepBroadcast || !refusesOptional(err) {
		return false
	}
	o, ok := ex.pending[dc]
	if !ok {
		return false
	}
	d, keep := withoutOptional(o.req.Decision)
	if d == nil {
		return false
	}
	o.timer.Stop()
	o.req.Decision = d
	if keep {
		if ex.keepRefused == nil {
			ex.keepRefused = map[string]bool{}
		}
		ex.keepRefused[dc] = true
		e.stats.KeepRefused++
	} else {
		e.stats.RiseRefused++
	}
	o.sends = 0 // a new request, not a retransmission of the refused one
	e.log.Warn("the local controller refused an optional field (keepBuffered, noRise or fast; rolled back since its step-2 report advertised it): decision sent again without them",
		"dc", dc, "round", ex.round, "err", err)
	e.send(ex, dc, o)
	return true
}

// onDeadline applies the unanswering-DC rule to a step's silent DCs.
func (e *Engine) onDeadline(ex *exchange) {
	if e.ex != ex {
		return
	}
	for _, dc := range slices.Sorted(maps.Keys(ex.pending)) {
		ex.pending[dc].timer.Stop()
		delete(ex.pending, dc)
		ex.gaveUp = append(ex.gaveUp, dc)
		e.stats.Unreachable++
		if e.rec != nil {
			if e.rec.Unreachable == nil {
				e.rec.Unreachable = map[string]protocol.Step{}
			}
			e.rec.Unreachable[dc] = ex.step
		}
		e.log.Warn("local controller unreachable: given up for this round", "dc", dc, "round", ex.round,
			"step", ex.step.String(), "after", e.cfg.StepDeadline)
	}
	e.finishExchange(ex)
}

func (e *Engine) finishExchange(ex *exchange) {
	if ex.timer != nil {
		ex.timer.Stop()
	}
	e.ex = nil
	var c fsm.Command
	switch ex.step {
	case protocol.StepAcquire:
		prov := map[string]protocol.ProvisionReport{}
		for dc, a := range ex.answers {
			if a.Provision != nil {
				prov[dc] = *a.Provision
			}
		}
		c = fsm.RoundStepDone{Round: ex.round, Step: ex.step, Provisions: prov, Unreachable: ex.gaveUp}
	case protocol.StepBroadcast:
		answers := map[string]fsm.DCAnswer{}
		for dc, a := range ex.answers {
			answers[dc] = fsm.DCAnswer{Created: a.Created, Reused: a.Reused, Error: a.Error, KeepRefused: ex.keepRefused[dc]}
		}
		c = fsm.RoundStepDone{Round: ex.round, Step: ex.step, Unreachable: ex.gaveUp, Answers: answers}
	case protocol.StepEnter:
		c = fsm.IntervalEntered{Round: ex.round, Unreachable: ex.gaveUp, At: e.d.Clock.Now()}
	}
	e.commit(c, func() {
		if e.rec != nil {
			if ex.step == protocol.StepBroadcast {
				for _, dc := range slices.Sorted(maps.Keys(ex.answers)) {
					a := ex.answers[dc]
					e.rec.Results = append(e.rec.Results, DCResult{DC: dc, Created: a.Created, Reused: a.Reused, Error: a.Error,
						KeepRefused: ex.keepRefused[dc]})
				}
			}
			for _, dc := range ex.gaveUp {
				if e.rec.Unreachable == nil {
					e.rec.Unreachable = map[string]protocol.Step{}
				}
				e.rec.Unreachable[dc] = ex.step
			}
		}
		e.stepDone(ex.step)
		if ex.step == protocol.StepEnter {
			e.finishRound() // the record is complete before the hook runs
			return
		}
		e.next = e.advance
	})
}
