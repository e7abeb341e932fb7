package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/global"
)

// State implements api.Backend.
func (b *Backend) State(context.Context) (api.State, error) {
	st := b.d.store.State()
	id, _ := b.leader()
	out := api.State{Interval: int64(st.Interval), Step: "idle", Leader: id, Instances: []api.Instance{}, Paths: []api.Path{},
		Predictions: []api.Prediction{}}
	if st.Round != nil {
		out.Step = fmt.Sprintf("round %d: %s", st.Round.Round, (st.Round.Done + 1).String())
	}
	if up, why := b.d.catchingUp(); up {
		out.Step, out.CatchingUp = "catching up", why
	}
	for _, dc := range slices.Sorted(maps.Keys(b.d.locals)) {
		for _, in := range b.d.locals[dc].Instances() {
			out.Instances = append(out.Instances, api.Instance{ID: in.ID, DC: dc, VNF: in.VNF, State: string(in.State),
				Reason: in.Why, Since: in.Created, Address: in.Address})
		}
		for _, bo := range b.d.locals[dc].Backoffs() {
			ab := api.Backoff{DC: dc, VNF: bo.VNF, Failures: bo.Failures, LastFailure: bo.LastFailure, Owed: bo.Owed}
			if !bo.Until.IsZero() {
				ab.Until = new(bo.Until)
			}
			out.Backoffs = append(out.Backoffs, ab)
		}
	}
	delays := b.d.linkDelays()
	out.Delays = apiDelays(delays)
	for _, p := range st.Paths {
		if len(p.Hops) < 2 {
			continue
		}
		out.Paths = append(out.Paths, api.Path{Entry: p.Entry, Exit: p.Exit, Hops: slices.Clone(p.Hops[1 : len(p.Hops)-1]),
			Method: "committed", DelayMs: pathDelay(delays, p.Hops)})
	}
	if h := b.d.store.History(); len(h) > 0 {
		last := h[len(h)-1]
		var fc map[string]global.Forecast
		if b.d.engine != nil {
			fc = b.d.engine.Forecasts(last.Round) // this node's engine ran the round
		}
		for _, k := range slices.Sorted(maps.Keys(last.Predicted)) {
			kind, a, c, ok := global.ParseSeriesKey(k)
			if !ok || (kind != global.KindCP && kind != global.KindDP) {
				continue
			}
			out.Predictions = append(out.Predictions, api.Prediction{Entry: a, Exit: c, Kind: kind, Predicted: last.Predicted[k],
				Model: fc[k].Model, Margin: fc[k].Margin})
		}
	}
	return out, nil
}

// Decisions implements api.Backend: a page of this node's decision history
// (the last maxDecisions decisions the watcher recorded, numbered from 1
// when the process started).
func (b *Backend) Decisions(_ context.Context, q api.DecisionQuery) (api.DecisionPage, error) {
	return b.d.watch.decisions(q), nil
}

// sortDecisions orders decisions by round, then time, then DC and VNF.
func sortDecisions(ds []api.Decision) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, c := ds[i], ds[j]
		if a.Round != c.Round {
			return a.Round < c.Round
		}
		if !a.At.Equal(c.At) {
			return a.At.Before(c.At)
		}
		if a.DC != c.DC {
			return a.DC < c.DC
		}
		return a.VNF < c.VNF
	})
}

var _ api.StateVersioner = (*Backend)(nil)

// StateVersion implements api.StateVersioner: a hash of what State shows
// that can change — the FSM's change counter (interval, round, step, paths,
// history), the leader, each local controller's instance fingerprint (IDs
// and states) — computed without copying anything, so the server encodes
// the state once per change and a poller's If-None-Match costs little.
func (b *Backend) StateVersion(context.Context) (uint64, error) {
	h := fnv.New64a()
	var buf [8]byte
	put := func(x uint64) {
		binary.LittleEndian.PutUint64(buf[:], x)
		h.Write(buf[:])
	}
	put(b.d.store.Changes())
	id, _ := b.leader()
	h.Write([]byte(id))
	h.Write([]byte{0})
	_, why := b.d.catchingUp()
	h.Write([]byte(why))
	h.Write([]byte{0})
	var inst uint64 // order-independent: instance IDs name their DC
	for _, lc := range b.d.locals {
		inst += lc.Fingerprint()
	}
	put(inst)
	return h.Sum64(), nil
}
