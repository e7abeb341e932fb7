package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/predictor"
)

// inForce is the policy in force: interval, τ, predictor and strategy from
// the config (restart-only), delay bound and limits from the FSM once
// committed.
func (b *Backend) inForce(st fsm.State) api.Policy {
	p := b.d.cfg.Policy.API()
	if st.Policy.DelayBoundMs > 0 {
		p.DelayBoundMs = st.Policy.DelayBoundMs
		p.Limits = apiLimits(st.Policy.Limits)
	}
	return p
}

// policy returns the policy in force or a saved one (document
// "policy/NAME").
func (b *Backend) policy(st fsm.State, name string) (api.Policy, bool) {
	if name == PolicyName {
		return b.inForce(st), true
	}
	raw, ok := st.Docs[fsm.DocPolicy+name]
	if !ok {
		return api.Policy{}, false
	}
	var p api.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		b.d.log.Warn("unreadable replicated policy", "policy", name, "err", err)
		return api.Policy{}, false
	}
	p.Name = name
	return p, true
}

// Policies implements api.Backend: the policy in force and the saved ones,
// by name.
func (b *Backend) Policies(context.Context) ([]api.Policy, error) {
	st := b.d.store.State()
	names := []string{PolicyName}
	for k := range st.Docs {
		if n, ok := strings.CutPrefix(k, fsm.DocPolicy); ok && n != PolicyName {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := []api.Policy{}
	for _, n := range names {
		if p, ok := b.policy(st, n); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Policy implements api.Backend.
func (b *Backend) Policy(_ context.Context, name string) (api.Policy, error) {
	p, ok := b.policy(b.d.store.State(), name)
	if !ok {
		return api.Policy{}, fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	return p, nil
}

// checkPolicy checks references and, for the policy in force, that only
// live-changeable fields (delay bound, limits) change; for a saved policy,
// that its name makes a document key. PutPolicy and DryRunPolicy both call
// it with the policy as written, so a dry run refuses exactly what the
// apply would.
func (b *Backend) checkPolicy(p api.Policy) error {
	v := &api.ValidationError{}
	if p.Name != PolicyName {
		if err := fsm.ValidateDocKey(fsm.DocPolicy + p.Name); err != nil {
			v.Add("name", "%q is not a valid policy name", p.Name)
		}
	}
	if _, err := predictor.ParseSpec(p.Predictor); err != nil {
		v.Add("predictor", "%v", err)
	}
	if _, err := strategy.Parse(p.Strategy); err != nil {
		v.Add("strategy", "%v", err)
	}
	if err := b.d.cfg.checkLimits(p); err != nil {
		var ve *api.ValidationError
		if errors.As(err, &ve) {
			v.Errors = append(v.Errors, ve.Errors...)
		}
	}
	if p.Name == PolicyName {
		cur := b.d.cfg.Policy.API()
		if p.IntervalSeconds != cur.IntervalSeconds {
			restart(v, "intervalSeconds", "the interval of the policy in force")
		}
		if p.Tau != cur.Tau {
			restart(v, "tau", "τ of the policy in force")
		}
		if p.Predictor != cur.Predictor {
			restart(v, "predictor", "the predictor of the policy in force")
		}
		if p.Strategy != cur.Strategy {
			restart(v, "strategy", "the strategy of the policy in force")
		}
	}
	return v.Err()
}

// PutPolicy implements api.Backend. The policy named "default" is the one
// in force: its delay bound and limits are committed (fsm.SetPolicy) and
// used from the next round (the limits reach the local controllers with
// the round's decision). Other names are saved, replicated, for later use
// and dry runs (document "policy/NAME").
func (b *Backend) PutPolicy(_ context.Context, p api.Policy) (*api.Policy, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	if err := b.checkPolicy(p); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return nil, err
	}
	st := b.d.store.State()
	var prev *api.Policy
	if old, ok := b.policy(st, p.Name); ok {
		prev = &old
	}
	p.Limits = slices.Clone(p.Limits)
	changed := prev == nil || !policyEqual(*prev, p)
	switch {
	case !changed:
	case p.Name == PolicyName:
		fp := st.Policy
		if fp.DelayBoundMs == 0 { // not committed yet
			fp = b.d.cfg.fsmPolicy()
		}
		fp.DelayBoundMs, fp.Limits = p.DelayBoundMs, fsmLimits(p.Limits)
		if err := b.commit(fsm.SetPolicy{Policy: fp}); err != nil {
			return nil, err
		}
	default:
		if err := b.putDoc(fsm.DocPolicy+p.Name, p, "limits"); err != nil {
			return nil, err
		}
	}
	if changed {
		b.d.log.Info("policy written", "policy", p.Name, "delayBoundMs", p.DelayBoundMs, "limits", len(p.Limits),
			"inForce", p.Name == PolicyName)
	}
	return prev, nil
}

func policyEqual(a, c api.Policy) bool {
	return a.Name == c.Name && a.IntervalSeconds == c.IntervalSeconds && a.Tau == c.Tau && a.DelayBoundMs == c.DelayBoundMs &&
		a.Predictor == c.Predictor && a.Strategy == c.Strategy && slices.Equal(a.Limits, c.Limits)
}

// DeletePolicy implements api.Backend; the policy in force cannot go.
func (b *Backend) DeletePolicy(_ context.Context, name string) error {
	if err := b.writable(); err != nil {
		return err
	}
	if name == PolicyName {
		return fmt.Errorf("policy %q is in force and cannot be deleted: %w", name, api.ErrConflict)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return err
	}
	if _, ok := b.d.store.State().Docs[fsm.DocPolicy+name]; !ok {
		return fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	return b.commit(fsm.DeleteDoc{Key: fsm.DocPolicy + name})
}

// DryRunPolicy implements api.Backend: the plan of the next proactive round
// under p's delay bound, from the committed state (paths, last provisioning
// reports, latest predictions), without committing anything.
func (b *Backend) DryRunPolicy(_ context.Context, p api.Policy) ([]api.Decision, error) {
	if err := b.checkPolicy(p); err != nil {
		return nil, err
	}
	st := b.d.store.State()
	return dryRun(st, b.d.store.History(), p.DelayBoundMs, b.d.clk.Now())
}

// ---- live state ----
