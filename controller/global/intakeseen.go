package global

import (
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// The engine counts a workload report once, whichever way it came: its
// duplicate memory (seenReports) recognises a copy of a report it counted
// and counts nothing for it. Copies come from reporters that keep an
// interval's reports and re-send them to a new leader
// (transport.ReporterConfig.Resend): a leader flap A→B→A brings A a copy
// of a report it holds (the copy queued for B, refused there, is tried at
// the other nodes in turn), and a re-send after a lost HTTP answer brings
// the node the report it just counted. Both paths into the engine, the
// node's own local-side sources in process (the daemon's IntakeTarget)
// and other nodes over HTTP (transport.WorkloadHandler), go through it.
//
// The memory is the engine's, for its whole life: it outlives interval
// closes and leadership changes (Stop, Start). A report this engine
// counted is in an intake that still holds it (the interval it measures,
// or the one its predict step is closing), and then a copy is a
// duplicate; or in one whose interval has closed since (this engine's
// close, or another leader's, which made Start drop the intake), and then
// counting the copy would mix that interval's load into a later one. Each
// engine has its own memory: a report counted by A and re-sent to a new
// leader B is counted at B unless B counted it itself.

// seenKept is how many counted report times per seenKey the engine
// remembers. Only a time seen before is a copy: a reporter whose clock
// stepped back is still counted (the intake bounds' skew window bounds
// how far).
const seenKept = 64

// maxSeenKeys bounds the keys the engine remembers (reporter IDs and, over
// HTTP, credentials come from the reporters).
const maxSeenKeys = 4096

// seenKey names a reporter's reports of one DC and kind: a report is its
// key and its time (WorkloadReport.At). Reports without a reporter ID
// under one credential share a key, as they share a ring (at most one
// such reporter per DC, kind and credential: a report of another stamped
// with the same time is taken for a copy). The credential keeps the
// reports of two credentials apart (a holder of the shared token naming
// the node's own ID cannot make the node's in-process reports copies).
type seenKey struct {
	credential, reporter, kind, dc string
}

// seenAt is a counted report's time and the interval it was counted in.
type seenAt struct {
	at time.Time
	in uint64
}

// seenReports remembers, per key, the times of its last seenKept counted
// reports, at most maxSeenKeys keys in the order they last counted one: at
// the bound the key that counted a report least recently is forgotten
// (its copies would be counted again), not a live reporter's. The zero
// value is empty and ready.
type seenReports struct {
	keys *simplelru.LRU[seenKey, []seenAt]
}

func keyOf(r protocol.WorkloadReport) seenKey {
	return seenKey{credential: r.Credential, reporter: r.Reporter, kind: r.Kind, dc: r.DC}
}

// remembered tells whether r is a report the memory keeps: one with a
// time (HTTP and the reporter refuse one without; an in-process source of
// a test), and not an in-process one without a reporter ID. Those come
// straight from the node's own sources (the simulator, a single-node
// daemon's load, meters and probes: no reporter between, so no re-send),
// and two of them, say a meter and the simulated load, may stamp one time
// for one DC and kind; a node's reporter stamps its node ID.
func remembered(r protocol.WorkloadReport) bool {
	return !r.At.IsZero() && (r.Credential != "" || r.Reporter != "")
}

// counted tells whether a report of r's key and time was counted, and in
// which interval. A report the memory does not keep (remembered) is
// never a copy.
func (s *seenReports) counted(r protocol.WorkloadReport) (in uint64, ok bool) {
	if s.keys == nil || !remembered(r) {
		return 0, false
	}
	times, _ := s.keys.Peek(keyOf(r)) // a copy is no use of the key
	if i := slices.IndexFunc(times, func(c seenAt) bool { return c.at.Equal(r.At) }); i >= 0 {
		return times[i].in, true
	}
	return 0, false
}

// note remembers that r was counted in interval in, making its key the
// most recently used.
func (s *seenReports) note(r protocol.WorkloadReport, in uint64) {
	if !remembered(r) {
		return
	}
	if s.keys == nil {
		keys, err := simplelru.NewLRU[seenKey, []seenAt](maxSeenKeys, nil)
		if err != nil {
			panic(err) // maxSeenKeys > 0
		}
		s.keys = keys
	}
	k := keyOf(r)
	times, _ := s.keys.Peek(k)
	times = append(times, seenAt{at: r.At, in: in})
	if len(times) > seenKept {
		times = slices.Delete(times, 0, len(times)-seenKept)
	}
	s.keys.Add(k, times)
}

// ReportWorkloadOnce is ReportWorkloadInterval that also tells whether the
// report is a copy of one this engine counted (the same credential,
// reporter, DC, kind and time; seenReports): then nothing is counted,
// duplicate is true and interval is the one the report was counted in
// (Stats.DuplicateReports). The transport's workload handler answers it
// ({"duplicate":true}; transport.OnceIntake).
func (e *Engine) ReportWorkloadOnce(r protocol.WorkloadReport) (interval uint64, duplicate bool, err error) {
	e.locked(func() {
		if e.known == nil {
			st := e.d.Store.State()
			e.refreshTopology(&st)
		}
		if e.known == nil {
			err = errors.New("workload report: no topology committed yet")
			return
		}
		if err = checkReport(r, e.known); err != nil {
			return
		}
		// before the time-dependent checks: a copy that comes late is
		// still the report counted, not an implausible or late one
		if interval, duplicate = e.seen.counted(r); duplicate {
			e.stats.DuplicateReports++
			return
		}
		if err = e.bounds.checkPlausible(r, e.d.Clock.Now(), e.cfg.Interval, e.cfg.MaxReportSkew); err != nil {
			return
		}
		interval = e.inFor
		if e.lateReport(r) {
			// its interval's averages are computed (and committed, or
			// being committed): counting it in the next interval would
			// mix two intervals' loads
			e.stats.LateReports++
			e.log.Debug("workload report of a closed interval dropped", "dc", r.DC, "kind", r.Kind, "reporter", r.Reporter,
				"at", r.At, "ageMs", r.AgeMs, "intervalBegan", e.inSince)
			return
		}
		if err = e.in.add(r); err != nil {
			e.stats.RefusedReporters++
			interval = 0
			return
		}
		e.noteDelays(r)
		e.seen.note(r, interval)
	})
	return interval, duplicate, err
}
