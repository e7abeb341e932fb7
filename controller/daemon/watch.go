package daemon

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/routing"
)

var routingDropReasons = routing.DropReasons()

// maxDecisions bounds the decision history kept in memory.
const maxDecisions = 10000

// watcher turns the round engine's records and the local controllers'
// actions into decisions (API history, one log line each) and metric
// events, once per second on the daemon's clock.
type watcher struct {
	d *Daemon

	mu        sync.Mutex
	hist      []api.Decision // by increasing Seq
	seq       int64          // Seq of the newest decision recorded
	lastRound int64
	// lastOutcome is the newest round whose outcome was recorded (history.go).
	lastOutcome int64
	last        map[string]local.Action
	rep         *clock.Repeater
}

func newWatcher(d *Daemon) *watcher {
	return &watcher{d: d, lastRound: -1, lastOutcome: -1, last: map[string]local.Action{}}
}

func (w *watcher) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rep = clock.Every(w.d.clk, time.Second, func() bool { w.poll(); return true })
}

func (w *watcher) stop() {
	w.poll()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rep != nil {
		w.rep.Stop()
	}
}

// poll collects what happened since the last poll.
func (w *watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, log := w.d.metrics, w.d.log
	var fresh []api.Decision
	mins := w.d.cfg.localVNFs()
	if e := w.d.engine; e != nil {
		for _, rec := range e.Records() {
			if int64(rec.Round) <= w.lastRound {
				continue
			}
			w.lastRound = int64(rec.Round)
			for _, st := range rec.Steps {
				m.ObserveStep(st.Step.String(), st.Duration)
			}
		}
	}
	fresh = append(fresh, w.outcomeDecisions(mins)...)
	for _, dc := range slices.Sorted(maps.Keys(w.d.locals)) {
		acts := w.d.locals[dc].Actions()
		start := 0
		if last, ok := w.last[dc]; ok {
			if i := slices.Index(acts, last); i >= 0 {
				start = i + 1
			}
		}
		for _, a := range acts[start:] {
			switch a.Kind {
			case local.KindCreate, local.KindReuse, local.KindReplace:
				m.InstanceCreated(dc, a.VNF, string(a.Reason))
				kind := ""
				switch a.Reason {
				case local.ReasonReactive:
					kind = api.DecisionReactive
				case local.ReasonReplacement:
					kind = api.DecisionReplacement
				case local.ReasonManual:
					kind = api.DecisionManual
				}
				if kind != "" {
					reason := string(a.Reason) + " " + string(a.Kind)
					if a.Detail != "" {
						reason += ": " + a.Detail
					}
					fresh = append(fresh, api.Decision{Round: int64(a.Interval), At: a.At, Kind: kind, DC: dc, VNF: a.VNF, Delta: 1,
						Reason: reason, Detail: map[string]any{"action": string(a.Kind), "instance": a.InstanceID}})
				}
			case local.KindBuffer:
				switch a.Reason {
				case local.ReasonManual:
					fresh = append(fresh, api.Decision{Round: int64(a.Interval), At: a.At, Kind: api.DecisionManual, DC: dc, VNF: a.VNF, Delta: -1,
						Reason: "manual buffer: " + a.Detail, Detail: map[string]any{"action": string(a.Kind), "instance": a.InstanceID}})
				case local.ReasonUnderload:
					// between-round scale-in (local.Config.ScaleIn): the local rule's step down
					fresh = append(fresh, api.Decision{Round: int64(a.Interval), At: a.At, Kind: api.DecisionReactive, DC: dc, VNF: a.VNF, Delta: -1,
						Reason: "underload buffer: " + a.Detail, Detail: map[string]any{"action": string(a.Kind), "instance": a.InstanceID}})
				}
			case local.KindHold:
				// an operator's manual floor or ceiling changed a round's target
				fresh = append(fresh, api.Decision{Round: int64(a.Interval), At: a.At, Kind: api.DecisionManual, DC: dc, VNF: a.VNF, Delta: 0,
					Reason: "manual hold: " + a.Detail, Detail: map[string]any{"action": string(a.Kind)}})
			case local.KindBackoff:
				// a replacement held back by the crash-loop backoff, or the loop's end
				det := map[string]any{"action": string(a.Kind)}
				if a.InstanceID != "" {
					det["instance"] = a.InstanceID
				}
				fresh = append(fresh, api.Decision{Round: int64(a.Interval), At: a.At, Kind: api.DecisionReplacement, DC: dc, VNF: a.VNF, Delta: 0,
					Reason: "replacement backoff: " + a.Detail, Detail: det})
			case local.KindDestroy:
				m.InstanceDestroyed(dc, a.VNF, string(a.Reason))
			}
			log.Debug("scale action", "dc", dc, "vnf", a.VNF, "kind", a.Kind, "reason", a.Reason, "instance", a.InstanceID,
				"interval", a.Interval, "detail", a.Detail)
		}
		if len(acts) > 0 {
			w.last[dc] = acts[len(acts)-1]
		}
	}
	sortDecisions(fresh)
	w.recordLocked(fresh...)
}

// record appends decisions to the history (for decisions taken outside
// the round engine and the local controllers' actions, e.g. by an API
// operation): each gets the next Seq, a metric event and a log line.
func (w *watcher) record(ds ...api.Decision) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recordLocked(ds...)
}

func (w *watcher) recordLocked(ds ...api.Decision) {
	m, log := w.d.metrics, w.d.log
	for _, dd := range ds {
		w.seq++
		dd.Seq = w.seq
		m.Decision(dd.Kind)
		log.Info("scaling decision", "seq", dd.Seq, "kind", dd.Kind, "round", dd.Round, "dc", dd.DC, "vnf", dd.VNF, "delta", dd.Delta, "reason", dd.Reason)
		w.hist = append(w.hist, dd)
	}
	if len(w.hist) > maxDecisions {
		w.hist = slices.Clone(w.hist[len(w.hist)-maxDecisions:])
	}
}

// decisions answers a page of the history.
func (w *watcher) decisions(q api.DecisionQuery) api.DecisionPage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return api.PageDecisions(w.hist, q)
}
