package global

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
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
// leader B is counted at B unless B counted it itself. What the memory
// forgets of a key (seenReports.note) is what no copy can be counted
// again for, or what its bounds leave out.

// seenKept is how many counted report times per seenKey the engine
// remembers at most: a reporter keeps at most as many reports for a
// re-send (transport's maxKept, 4 096, over all its DCs and kinds), the
// newest, so a copy of an older one never comes. Only a time seen before
// is a copy: a reporter whose clock stepped back is still counted (the
// intake bounds' skew window bounds how far).
const seenKept = 4096

// maxSeenKeys bounds the keys each credential's memory remembers (the
// shared token's holders make reporter IDs up).
const maxSeenKeys = 4096

// maxSeenEntries bounds the times each credential's memory holds over all
// its keys (16 bytes each: 4 MiB, up to about twice that with the slices'
// spare room): at the bound the least recently used keys are forgotten
// whole. At one report a second per DC and kind, 64 keys fill it at
// their seenKept, or 218 keys at a 600 s interval. A credential can fill
// only its own memory: the shared token's with made-up reporter IDs, a
// reporter credential's (its name is its reporter ID,
// transport.WorkloadHandler: one key per DC and kind) with many DCs
// (seenKept × its DCs × kinds passes the bound from about 22 DCs).
const maxSeenEntries = 1 << 18

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

// seenAt is a counted report's time (UnixNano: 8 bytes, no location kept)
// and the interval it was counted in, with droppedIntake set when the
// engine dropped the intake it was counted in (relabel).
type seenAt struct {
	at int64
	in uint64
}

// droppedIntake marks, in seenAt.in, a report counted in an intake the
// engine dropped because another engine's close of the interval before
// was committed (closeSettled): the interval is that closed one, a guess
// (the closer counted the report there if it was re-sent to it in time).
const droppedIntake = uint64(1) << 63

func (c seenAt) interval() uint64 { return c.in &^ droppedIntake }
func (c seenAt) dropped() bool    { return c.in&droppedIntake != 0 }

// seenReports remembers the times of counted reports per key, in one
// memory per credential: the node's own, in process (credential ""), and
// over HTTP the shared token's or, with role.reportersFile (which refuses
// the shared token), each reporter credential's. A holder of
// the shared token can make up reporter IDs (a delay report's are not
// bounded per credential, intake.add) and so push out the least recently
// used keys of the shared token's memory, but never another credential's:
// not the node's own, whose reporter IDs are the node's (its reporter
// stamps node.id: one key per DC and kind), nor a reporter credential's
// (its reporter ID is its name). The credentials are the node's
// configuration's (the shared token and role.reportersFile), so the
// memories are bounded by it. The zero value is empty and ready.
type seenReports struct {
	by map[string]*seenMemory // credential → its memory
}

// seenMemory keeps, per key, the times of its counted reports that a copy
// could still come of (note), at most seenKept, and at most maxSeenKeys
// keys and maxSeenEntries times in all: at either bound the key that
// counted a report least recently is forgotten whole (its copies would
// be counted again). The zero value is empty and ready.
type seenMemory struct {
	keys    *simplelru.LRU[seenKey, []seenAt]
	entries int // times held over all keys
}

// memory is the memory of r's credential, made when create is set (nil
// when it is not and there is none).
func (s *seenReports) memory(r protocol.WorkloadReport, create bool) *seenMemory {
	m := s.by[r.Credential]
	if m == nil && create {
		if s.by == nil {
			s.by = map[string]*seenMemory{}
		}
		m = &seenMemory{}
		s.by[r.Credential] = m
	}
	return m
}

func keyOf(r protocol.WorkloadReport) seenKey {
	return seenKey{credential: r.Credential, reporter: r.Reporter, kind: r.Kind, dc: r.DC}
}

// remembered tells whether r is a report the memory keeps: one with a
// time (HTTP and the reporter refuse one without; an in-process source of
// a test) that UnixNano can hold (years 1678–2262; any other is refused
// as implausible), and not an in-process one without a reporter ID. Those
// come straight from the node's own sources (the simulator, a single-node
// daemon's load, meters and probes: no reporter between, so no re-send),
// and two of them, say a meter and the simulated load, may stamp one time
// for one DC and kind; a node's reporter stamps its node ID.
func remembered(r protocol.WorkloadReport) bool {
	return !r.At.IsZero() && time.Unix(0, r.At.UnixNano()).Equal(r.At) && (r.Credential != "" || r.Reporter != "")
}

// counted tells whether a report of r's key and time was counted, and in
// which interval. A report the memory does not keep (remembered) is
// never a copy.
func (s *seenReports) counted(r protocol.WorkloadReport) (in uint64, ok bool) {
	c, ok := s.lookup(r)
	return c.interval(), ok
}

// lookup is the memory's entry of r's key and time (ok: there is one).
func (s *seenReports) lookup(r protocol.WorkloadReport) (seenAt, bool) {
	times := s.times(r)
	at := r.At.UnixNano()
	if i := slices.IndexFunc(times, func(c seenAt) bool { return c.at == at }); i >= 0 {
		return times[i], true
	}
	return seenAt{}, false
}

// times is r's key's stored times (set in place; nil: none kept).
func (s *seenReports) times(r protocol.WorkloadReport) []seenAt {
	m := s.memory(r, false)
	if m == nil || m.keys == nil || !remembered(r) {
		return nil
	}
	times, _ := m.keys.Peek(keyOf(r)) // a copy is no use of the key
	return times
}

// recount names interval in as the one r, a report of a dropped intake,
// is counted in now (ReportWorkloadCounted counted it again).
func (s *seenReports) recount(r protocol.WorkloadReport, in uint64) {
	times := s.times(r)
	at := r.At.UnixNano()
	if i := slices.IndexFunc(times, func(c seenAt) bool { return c.at == at }); i >= 0 {
		times[i].in = in
	}
}

// note remembers that r was counted in interval in (the one the engine
// measures), making its key the most recently used. From the key's oldest
// time on, it forgets those no copy can be counted again for: dated
// before stale (the leader's clock less one interval and the skew window:
// a copy of them is refused as implausible from now on,
// intakeBounds.checkPlausible), unless counted in interval in or the one
// before (that one may still be closing, and a copy of either, coming
// late, is answered as the duplicate it is). So an interval shorter than
// the skew window keeps its reports as long as they could be counted,
// and a longer one keeps every report of the interval it measures, as
// many as a reporter keeps (a leader flap A→B→A re-sends them all to A).
// Then it keeps the key's last seenKept times, and forgets the least
// recently used keys while the memory holds more than maxSeenEntries.
func (s *seenReports) note(r protocol.WorkloadReport, in uint64, stale time.Time) {
	if !remembered(r) {
		return
	}
	m := s.memory(r, true)
	if m.keys == nil {
		keys, err := simplelru.NewLRU(maxSeenKeys, func(_ seenKey, times []seenAt) { m.entries -= len(times) })
		if err != nil {
			panic(err) // maxSeenKeys > 0
		}
		m.keys = keys
	}
	k := keyOf(r)
	times, _ := m.keys.Peek(k)
	was := len(times)
	staleNs := stale.UnixNano()
	drop := 0
	for drop < len(times) && times[drop].interval()+1 < in && times[drop].at < staleNs {
		drop++
	}
	times = append(times[drop:], seenAt{at: r.At.UnixNano(), in: in})
	if len(times) > seenKept {
		times = times[len(times)-seenKept:]
	}
	m.entries += len(times) - was
	m.keys.Add(k, times)
	for m.entries > maxSeenEntries {
		m.keys.RemoveOldest() // never k: it holds at most seenKept < maxSeenEntries
	}
}

// relabel names interval to as the one the times counted in interval
// from were counted in, marked droppedIntake (closeSettled: another
// leader's close made them the interval before's).
func (s *seenReports) relabel(from, to uint64) {
	for _, m := range s.by {
		if m.keys == nil {
			continue
		}
		for _, times := range m.keys.Values() { // the stored slices: set in place
			for i := range times {
				if times[i].in == from {
					times[i].in = to | droppedIntake
				}
			}
		}
	}
}

// ReportWorkloadOnce is ReportWorkloadInterval that also tells whether the
// report is a copy of one this engine counted (the same credential,
// reporter, DC, kind and time; seenReports): then nothing is counted,
// duplicate is true and interval is the one the report was counted in
// (Stats.DuplicateReports).
func (e *Engine) ReportWorkloadOnce(r protocol.WorkloadReport) (interval uint64, duplicate bool, err error) {
	c, err := e.ReportWorkloadCounted(r)
	return c.Interval, c.Duplicate, err
}

// ReportWorkloadCounted is ReportWorkloadOnce that also names the interval
// the engine measures now (Measuring): a copy's Interval, where its
// original was counted, may be before it (closed since). The transport's
// workload handler answers it ({"duplicate":true,"interval":N,
// "measuring":M}; transport.CountingIntake), and a reporter with Resend
// skips, at a leader change, the kept reports counted before M
// (transport.Reporter). M is the interval the log measures: while this
// engine's close of N is in flight, N (a report counted then is counted in
// N+1, Interval = Measuring+1); else a report counted now is counted in
// the interval measured (Interval = Measuring).
func (e *Engine) ReportWorkloadCounted(r protocol.WorkloadReport) (c transport.Counted, err error) {
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
		// the interval the log measures: while this engine's close of
		// interval N is in flight (in memory, not yet in the log, or lost
		// there) N, not N+1, whose intake this engine has begun. A copy
		// answered then must not make a reporter skip its kept reports of
		// N that another leader took and never closed (b led a moment in
		// N during the flap): they are counted nowhere else; re-sent here
		// they count once, in N+1 when this close commits, or are dropped
		// with this intake when another leader's close of N does
		// (closeSettled)
		c.Measuring, c.Known = e.inFor, true
		if e.closing != nil {
			c.Measuring = e.closingFor
		}
		c.Engine = e.id
		// before the time-dependent checks: a copy that comes late is
		// still the report counted, not an implausible or late one
		seen, dup := e.seen.lookup(r)
		recount := false
		if dup {
			c.Interval, c.Duplicate = seen.interval(), true
			if seen.dropped() {
				c.ClosedBy = e.droppedBy[c.Interval]
				if c.ClosedBy == "" {
					// the closer is not known (it fell out of droppedBy, or
					// its close has no token): c.Interval is a guess, not
					// where this engine counted it; named with the engine,
					// the answer would read as this engine's word
					// (transport.Reporter keeps those)
					c.Engine = ""
				}
			}
			if recount = e.recountable(r, seen, c); !recount {
				e.stats.DuplicateReports++
				return
			}
			c.Duplicate, c.ClosedBy = false, ""
		}
		if err = e.bounds.checkPlausible(r, e.d.Clock.Now(), e.cfg.Interval, e.cfg.MaxReportSkew); err != nil {
			return
		}
		c.Interval = e.inFor
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
			return
		}
		e.noteDelays(r)
		if recount {
			e.stats.RecountedReports++
			e.seen.recount(r, c.Interval)
			return
		}
		e.seen.note(r, c.Interval, e.d.Clock.Now().Add(-(e.cfg.Interval + e.cfg.MaxReportSkew)))
	})
	if err != nil {
		return transport.Counted{}, err
	}
	return c, nil
}

// recountable tells whether r, a copy of seen (answered as c), is to be
// counted again: seen was dropped with this engine's intake of the
// interval after c.Interval, whose close another engine committed, and r
// carries that engine's word that it counted the report in the interval
// this engine measures (protocol.WorkloadReport.CountedBy, which a
// reporter sends only on such a word: transport.Reporter). Then the
// closer's close does not hold it (an engine counts a report once), and
// the closer's intake of this interval, whose lead it lost, is gone with
// every report in it, which the reporters re-send to this engine: this
// one too, counted here once. Not when the word names another engine or
// interval: the closer may have counted it in the closed interval (its
// answer lost) or have closed the interval it counted it in as well, and
// a re-count would count it twice. Not while this engine's own close is
// in flight either (defence in depth: its intake is then the next
// interval's, and a word naming that one means the closer led past the
// interval this engine is closing; which of the two closes commits
// decides whether this engine's intake survives, and refusing leaves the
// report counted nowhere, as before session 15, rather than rely on
// that). A copy that arrives after this engine's close began is thus
// counted nowhere.
func (e *Engine) recountable(r protocol.WorkloadReport, seen seenAt, c transport.Counted) bool {
	w := r.CountedBy
	return w != nil && seen.dropped() && c.ClosedBy != "" && w.Engine == c.ClosedBy &&
		w.Interval == e.inFor && e.closing == nil
}

// EngineID is the ID a round engine of token answers with
// (transport.Counted.Engine): a digest, so the log's token is not handed
// out (16 hex digits). It changes with each process: the daemon draws
// the token per process (the dropped marks and droppedBy that recounts
// rest on live in memory only).
func EngineID(token string) string {
	sum := sha256.Sum256([]byte("ims-orch round engine " + token))
	return hex.EncodeToString(sum[:8])
}

// maxDroppedBy bounds the closes whose closer an engine remembers for
// the reports of its dropped intakes (Engine.droppedBy): drops are rare,
// and a copy of an older one is late anyway.
const maxDroppedBy = 8

// noteDropped remembers that the engine of ID closer closed interval
// closed while this engine's intake of the next was dropped
// (closeSettled).
func (e *Engine) noteDropped(closed uint64, closer string) {
	if e.droppedBy == nil {
		e.droppedBy = map[uint64]string{}
	}
	e.droppedBy[closed] = closer
	for len(e.droppedBy) > maxDroppedBy {
		delete(e.droppedBy, slices.Min(slices.Collect(maps.Keys(e.droppedBy))))
	}
}
