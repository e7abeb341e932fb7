package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// dcOperation runs an operator's operation on datacenter dc (and VNF vnf
// when not empty): on the leader, for a known target, under the write lock
// after a raft barrier, so f sees every committed command.
func (b *Backend) dcOperation(dc, vnf string, f func(st fsm.State) (api.Operation, error)) (api.Operation, error) {
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	if err := b.checkTarget(dc, vnf); err != nil {
		return api.Operation{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return api.Operation{}, err
	}
	return f(b.d.store.State())
}

// Scale implements api.Backend: an operator's ScaleVnf goes to the DC's
// local controller (local.Controller.Scale), which reuses buffered instances
// before launching and buffers the least-loaded ones to scale in. When that
// controller runs in another node, the request goes to its scale endpoint
// (transport.ScalePath, protocol token) at role.localEndpoints.
func (b *Backend) Scale(ctx context.Context, req api.ScaleRequest) (api.Operation, error) {
	return b.dcOperation(req.DC, req.VNF, func(st fsm.State) (api.Operation, error) { return b.scale(ctx, st, req) })
}

func (b *Backend) scale(ctx context.Context, st fsm.State, req api.ScaleRequest) (api.Operation, error) {
	lc := b.d.locals[req.DC]
	if lc == nil && b.d.httpT == nil {
		return api.Operation{}, fmt.Errorf("datacenter %q has no local controller in this node and no endpoint for it (role.localEndpoints): %w", req.DC, api.ErrConflict)
	}
	delta := req.NumberOfSteps
	if req.Type == api.ScaleIn {
		delta = -delta
	}
	now := b.d.clk.Now()
	op := api.Operation{ID: fmt.Sprintf("scale-%d", nextOpSeq(st)), Kind: api.OpScale, State: api.OpProcessing,
		StartedAt: now, Scale: &req}
	detail := fmt.Sprintf("operator %s %s by %d (%s)", req.Type, req.VNF, req.NumberOfSteps, op.ID)
	var target int
	var err error
	if lc != nil {
		target, err = lc.Scale(req.VNF, delta, detail)
	} else {
		// the DC's local controller runs in another node: its scale endpoint
		target, err = b.d.httpT.Scale(ctx, req.DC, transport.ScaleCommand{VNF: req.VNF, Delta: delta, Detail: detail})
	}
	if err != nil {
		op.State, op.Error = api.OpFailed, err.Error()
	} else {
		// the launches and buffer moves are under way; the instances follow
		op.State = api.OpCompleted
		done := now
		op.FinishedAt = &done
		b.d.log.Info("scaling decision", "kind", api.DecisionManual, "dc", req.DC, "vnf", req.VNF, "delta", delta,
			"reason", fmt.Sprintf("operator %s by %d → target %d", req.Type, req.NumberOfSteps, target), "operation", op.ID)
	}
	if err := b.putOp(op); err != nil {
		// the scale itself happened; only its record is missing
		b.d.log.Warn("cannot record the scale operation", "operation", op.ID, "err", err)
	}
	return op, nil
}

// Drain implements api.Backend: one FSM command (fsm.DrainOperation) sets
// the DC's drain flag (the planner then keeps DP stages and P-CSCF load out
// of the DC and its local controller lets its instances go to the buffer)
// and records a DRAIN operation (document "op/drain-N") in PROCESSING,
// pruning the oldest records; the FSM's drain rule refuses the S-CSCF DC
// and the last undrained DC (422 naming dc). Operation reports the drain
// COMPLETED once the DC's last step-2 report shows no working or booting
// instance. Draining a drained DC answers its open drain operation again.
func (b *Backend) Drain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	if err := b.knownDC(req.DC); err != nil {
		return api.Operation{}, err
	}
	return b.dcOperation(req.DC, "", func(st fsm.State) (api.Operation, error) { return b.drain(st, req) })
}

func (b *Backend) drain(st fsm.State, req api.DrainRequest) (api.Operation, error) {
	if st.Topology == nil {
		return api.Operation{}, fmt.Errorf("no topology committed yet: %w", api.ErrConflict)
	}
	if slices.Contains(st.Drained, req.DC) {
		if op, ok := openDrain(st, req.DC); ok {
			return op, nil
		}
	}
	r := api.DrainRequest{DC: req.DC}
	op := api.Operation{ID: fmt.Sprintf("drain-%d", nextOpSeq(st)), Kind: api.OpDrain, State: api.OpProcessing,
		StartedAt: b.d.clk.Now(), Drain: &r}
	if err := b.drainOp(req.DC, true, op); err != nil {
		return api.Operation{}, err
	}
	b.d.log.Info("datacenter drain started", "dc", req.DC, "operation", op.ID)
	return op, nil
}

// Undrain implements api.Backend: one FSM command clears the drain flag,
// closes the DC's open drain operation (COMPLETED if it was, else FAILED)
// and records a COMPLETED UNDRAIN operation.
func (b *Backend) Undrain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	if err := b.knownDC(req.DC); err != nil {
		return api.Operation{}, err
	}
	return b.dcOperation(req.DC, "", func(st fsm.State) (api.Operation, error) { return b.undrain(st, req) })
}

func (b *Backend) undrain(st fsm.State, req api.DrainRequest) (api.Operation, error) {
	if !slices.Contains(st.Drained, req.DC) {
		return api.Operation{}, fmt.Errorf("datacenter %q is not drained: %w", req.DC, api.ErrNotFound)
	}
	now := b.d.clk.Now()
	var closed []api.Operation
	if op, ok := openDrain(st, req.DC); ok {
		// its state as it was while drained
		if op.State == api.OpProcessing {
			op.State, op.Error = api.OpFailed, errUndrained
			op.FinishedAt = &now
		}
		closed = append(closed, op)
	}
	r := api.DrainRequest{DC: req.DC}
	op := api.Operation{ID: fmt.Sprintf("undrain-%d", nextOpSeq(st)), Kind: api.OpUndrain,
		State: api.OpCompleted, StartedAt: now, FinishedAt: &now, Drain: &r}
	if err := b.drainOp(req.DC, false, append(closed, op)...); err != nil {
		return api.Operation{}, err
	}
	b.d.log.Info("datacenter undrained", "dc", req.DC, "operation", op.ID)
	return op, nil
}

// drainOp commits fsm.DrainOperation: the drain flag and the operation
// records at once, pruned to maxOpRecords inside the FSM. A refusal of the
// drain rule is the client's mistake (422 naming dc).
func (b *Backend) drainOp(dc string, drain bool, ops ...api.Operation) error {
	recs := map[string]json.RawMessage{}
	for _, op := range ops {
		doc, err := json.Marshal(op)
		if err != nil {
			return err
		}
		recs[fsm.DocOp+op.ID] = doc
	}
	err := b.commit(fsm.DrainOperation{DC: dc, Drain: drain, Records: recs, KeepOps: maxOpRecords})
	if re := (*fsm.DrainRefusedError)(nil); errors.As(err, &re) {
		v := &api.ValidationError{}
		v.Add("dc", "%s", re.Reason)
		return v
	}
	return err
}

const errUndrained = "the datacenter was undrained before its instances were gone"

// maxOpRecords bounds the replicated operation records (the oldest go).
const maxOpRecords = 100

// opRecords returns the replicated operation records by increasing
// sequence number.
func opRecords(st fsm.State) []api.Operation {
	var ops []api.Operation
	for k, raw := range st.Docs {
		if _, ok := strings.CutPrefix(k, fsm.DocOp); !ok {
			continue
		}
		var op api.Operation
		if json.Unmarshal(raw, &op) == nil {
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return fsm.OpSeq(ops[i].ID) < fsm.OpSeq(ops[j].ID) })
	return ops
}

// nextOpSeq numbers a new operation record after every recorded one (the
// newest records are never pruned, so numbers are not reused).
func nextOpSeq(st fsm.State) int {
	n := 0
	for k := range st.Docs {
		if id, ok := strings.CutPrefix(k, fsm.DocOp); ok {
			n = max(n, fsm.OpSeq(id))
		}
	}
	return n + 1
}

// openDrain returns the DC's drain operation still recorded PROCESSING,
// with its state computed from st.
func openDrain(st fsm.State, dc string) (api.Operation, bool) {
	ops := opRecords(st)
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if op.Kind == api.OpDrain && op.State == api.OpProcessing && op.Drain != nil && op.Drain.DC == dc {
			return drainState(st, op), true
		}
	}
	return api.Operation{}, false
}

// drainState computes an open drain operation's state on read, so any node
// answers alike: COMPLETED once the DC's last answered step-2 report shows
// no working or booting instance (buffered ones may remain until τ expires
// them), FAILED when the DC was undrained meanwhile, else PROCESSING.
func drainState(st fsm.State, op api.Operation) api.Operation {
	if op.Kind != api.OpDrain || op.State != api.OpProcessing || op.Drain == nil {
		return op
	}
	dc := op.Drain.DC
	if !slices.Contains(st.Drained, dc) {
		op.State, op.Error = api.OpFailed, errUndrained
		return op
	}
	rep, ok := st.LastProvision[dc]
	if !ok {
		return op
	}
	for _, v := range rep.VNFs {
		if v.Working > 0 || v.Booting > 0 {
			return op
		}
	}
	op.State = api.OpCompleted
	return op
}

// putOp records an operation (document "op/ID") and prunes the oldest
// records beyond maxOpRecords.
func (b *Backend) putOp(op api.Operation) error {
	if err := b.putDoc(fsm.DocOp+op.ID, op, "operation"); err != nil {
		return err
	}
	ops := opRecords(b.d.store.State())
	for _, old := range ops[:max(0, len(ops)-maxOpRecords)] {
		if err := b.commit(fsm.DeleteDoc{Key: fsm.DocOp + old.ID}); err != nil {
			b.d.log.Warn("cannot prune an old operation record", "operation", old.ID, "err", err)
			break
		}
	}
	return nil
}

// knownDC: the DC of a drain or undrain is the URL's resource, so an
// unknown one is ErrNotFound (404), as the OpenAPI document says.
func (b *Backend) knownDC(dc string) error {
	if b.d.cfg.dcIndex(dc) < 0 {
		return fmt.Errorf("datacenter %q: %w", dc, api.ErrNotFound)
	}
	return nil
}

func (b *Backend) checkTarget(dc, vnf string) error {
	v := &api.ValidationError{}
	if b.d.cfg.dcIndex(dc) < 0 {
		v.Add("dc", "%q is not a known datacenter", dc)
	}
	if vnf != "" && b.d.cfg.vnf(vnf) == nil {
		v.Add("vnf", "%q is not a known VNF type", vnf)
	}
	return v.Err()
}

// Operation implements api.Backend from the replicated operation records
// (any node answers; an open drain's state is computed from the replicated
// state).
func (b *Backend) Operation(_ context.Context, id string) (api.Operation, error) {
	st := b.d.store.State()
	if raw, ok := st.Docs[fsm.DocOp+id]; ok {
		var op api.Operation
		if err := json.Unmarshal(raw, &op); err != nil {
			return api.Operation{}, fmt.Errorf("operation %q: unreadable record: %w", id, err)
		}
		return drainState(st, op), nil
	}
	return api.Operation{}, fmt.Errorf("operation %q: %w", id, api.ErrNotFound)
}
