package global

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// oldKeepBody is a session-12 local controller's problem answer to a
// request carrying VNFTarget.KeepBuffered.
const oldKeepBody = `{"type":"about:blank","title":"Bad Request","status":400,"detail":"request body: json: unknown field \"keepBuffered\""}`

// keepRefuser stands in front of the harness's transport for one DC: its
// step-4 requests are refused with HTTP 400 naming keepBuffered (all of
// them, or only those carrying the field), the answer arriving after
// delay on the virtual clock; every other request goes through.
type keepRefuser struct {
	h     *harness
	inner transport.Transport
	dc    string
	all   bool          // refuse step 4 with or without the field
	delay time.Duration // of the refusal
	body  string        // the refusal's problem answer

	mu    sync.Mutex
	sends []bool // dc's step-4 sends in order: carried keepBuffered
}

func hasKeep(d *protocol.DCDecision) bool {
	return d != nil && slices.ContainsFunc(d.Targets, func(t protocol.VNFTarget) bool { return t.KeepBuffered > 0 || t.NoRise || t.Fast })
}

func (k *keepRefuser) Send(dc string, req protocol.Request, deliver transport.Deliver) {
	if dc != k.dc || req.Step != protocol.StepBroadcast {
		k.inner.Send(dc, req, deliver)
		return
	}
	keep := hasKeep(req.Decision)
	k.mu.Lock()
	k.sends = append(k.sends, keep)
	k.mu.Unlock()
	if !keep && !k.all {
		k.inner.Send(dc, req, deliver)
		return
	}
	k.h.clk.AfterFunc(k.delay, func() {
		deliver(protocol.Response{}, &transport.StatusError{DC: dc, Code: 400, Status: "400 Bad Request", Body: k.body})
	})
}

func (k *keepRefuser) sent() []bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.sends)
}

// keepRound commits round 0 up to its decision, dc0's transcoder target
// asking to keep 1 buffered instance, and starts an engine whose
// transport is k (it resumes the round at step 4).
func keepRound(t *testing.T, all bool, delay time.Duration) (*harness, *Engine, *keepRefuser, []protocol.DCDecision) {
	t.Helper()
	return optionalRound(t, all, delay, oldKeepBody, func(tg *protocol.VNFTarget) {
		tg.KeepBuffered, tg.Reason = 1, "plan; stage floor asks to keep up to 1 buffered"
	})
}

// optionalRound is keepRound with dc0's transcoder target set by mark
// and the refusals answered with body.
func optionalRound(t *testing.T, all bool, delay time.Duration, body string, mark func(*protocol.VNFTarget)) (*harness, *Engine, *keepRefuser, []protocol.DCDecision) {
	t.Helper()
	h := newHarness(t, 3, transportCfgNone, Hooks{}, nil)
	k := &keepRefuser{h: h, inner: h.mem, dc: "dc0", all: all, delay: delay, body: body}
	var dec []protocol.DCDecision
	for _, dc := range h.topo.DCs {
		d := protocol.DCDecision{DC: dc, Interval: 1}
		for _, v := range vnfNames(h.topo) {
			tg := protocol.VNFTarget{VNF: v, Working: 1, Reason: "plan"}
			if dc == "dc0" && v == "transcoder" {
				mark(&tg)
			}
			d.Targets = append(d.Targets, tg)
		}
		dec = append(dec, d)
	}
	prov := map[string]protocol.ProvisionReport{}
	for _, dc := range h.topo.DCs {
		prov[dc] = protocol.ProvisionReport{DC: dc, Features: []string{protocol.FeatureKeepBuffered, protocol.FeatureNoRise}}
	}
	for _, c := range []fsm.Command{
		fsm.RoundStarted{Round: 0},
		fsm.RoundStepDone{Round: 0, Step: protocol.StepPredict, Prediction: &fsm.Prediction{}},
		fsm.RoundStepDone{Round: 0, Step: protocol.StepAcquire, Provisions: prov},
		fsm.DecisionCommitted{Round: 0, Decision: dec},
	} {
		mustApply(t, h.store, c)
	}
	e, err := New(h.cfg, Deps{Clock: h.clk, Transport: k, Forecaster: newAR1(), Store: h.store})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return h, e, k, dec
}

// runStep4 advances the clock until round 0's step 4 is committed (step
// deadline 5 s; bounded at 20 s).
func runStep4(t *testing.T, h *harness) {
	t.Helper()
	for h.clk.Now().Before(t0.Add(20 * time.Second)) {
		if st := h.store.State(); st.Round == nil || st.Round.Done >= protocol.StepBroadcast {
			return
		}
		h.clk.Advance(10 * time.Millisecond)
	}
	t.Fatal("round 0's step 4 not committed within 20 s")
}

// A local controller rolled back between step 2 and step 4 refuses the
// decision with keepBuffered (HTTP 400 naming the field): the engine sends
// it once more at once, without the field, and not as a retransmission;
// the DC is not given up; the committed decision keeps its hold, and the
// step's commit (the DC's outcome and the round record) says the hold was
// refused.
func TestEngineResendsWithoutKeep(t *testing.T) {
	h, e, k, dec := keepRound(t, false, time.Millisecond)
	runStep4(t, h)
	if got := k.sent(); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("dc0's step-4 sends (carried keepBuffered): %v, want [true false]", got)
	}
	st := e.Stats()
	if st.KeepRefused != 1 || st.Retransmissions != 0 || st.TransportErrors != 0 || st.Unreachable != 0 {
		t.Fatalf("stats %+v: want KeepRefused 1 and no retransmission, transport error or DC given up", st)
	}
	if n := h.parts["dc0"].actedCount(0, protocol.StepBroadcast); n != 1 {
		t.Fatalf("dc0 applied decision 0 %d times, want 1", n)
	}
	outs := h.store.Outcomes()
	if len(outs) != 1 {
		t.Fatalf("outcomes %+v", outs)
	}
	for i, d := range outs[0].DCs {
		if d.KeepRefused != (d.DC == "dc0") || d.State != fsm.OutcomeApplied {
			t.Errorf("outcome of %s: %+v, want applied, keepRefused only for dc0", d.DC, d)
		}
		if d.DC != dec[i].DC || !slices.Equal(d.Targets, dec[i].Targets) {
			t.Errorf("the committed decision of %s changed: %+v, want %+v", d.DC, d.Targets, dec[i].Targets)
		}
	}
	r := e.Records()
	if len(r) != 1 || len(r[0].Results) != 3 || !r[0].Results[0].KeepRefused || r[0].Results[1].KeepRefused {
		t.Errorf("round record %+v: want dc0's result only with keepRefused", r)
	}
}

// A second refusal, of the decision already sent without the field, is a
// transport error like any other (no loop): the engine retransmits the
// stripped decision until the step deadline gives the DC up.
func TestEngineKeepRefusedTwice(t *testing.T) {
	h, e, k, _ := keepRound(t, true, time.Millisecond)
	runStep4(t, h)
	got := k.sent()
	if len(got) < 3 || !got[0] || slices.Contains(got[1:], true) {
		t.Fatalf("dc0's step-4 sends (carried keepBuffered): %v, want the field once, then only without it", got)
	}
	if st := e.Stats(); st.KeepRefused != 1 || st.TransportErrors != len(got)-1 || st.Unreachable != 1 {
		t.Fatalf("stats %+v after %d sends: want KeepRefused 1, every later 400 a transport error, dc0 given up", st, len(got))
	}
}

// A refusal that arrives after the step deadline gave the DC up is not
// answered with a resend.
func TestEngineKeepRefusedAfterDeadline(t *testing.T) {
	h, e, k, _ := keepRound(t, false, 6*time.Second)
	runStep4(t, h)
	h.clk.Advance(10 * time.Second) // every refusal arrives
	got := k.sent()
	if len(got) == 0 || slices.Contains(got, false) {
		t.Fatalf("dc0's step-4 sends (carried keepBuffered): %v, want only the decision with the field", got)
	}
	if st := e.Stats(); st.KeepRefused != 0 || st.Unreachable != 1 {
		t.Fatalf("stats %+v: want no resend without keepBuffered, dc0 given up", st)
	}
}

// A local controller rolled back between step 2 (where it advertised
// noRise) and step 4 refuses the decision's noRise (HTTP 400 naming the
// field): the engine sends it again at once without the flags (counted
// RiseRefused), the DC is not given up and applies it; no hold was refused
// (the outcome's keepRefused stays false).
func TestEngineResendsWithoutNoRise(t *testing.T) {
	body := `{"type":"about:blank","title":"Bad Request","status":400,"detail":"request body: json: unknown field \"noRise\""}`
	h, e, k, _ := optionalRound(t, false, time.Millisecond, body, func(tg *protocol.VNFTarget) {
		tg.NoRise, tg.Fast, tg.Reason = true, true, "plan; no rise foreseen"
	})
	runStep4(t, h)
	if got := k.sent(); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("dc0's step-4 sends (carried noRise/fast): %v, want [true false]", got)
	}
	if st := e.Stats(); st.RiseRefused != 1 || st.KeepRefused != 0 || st.Unreachable != 0 || st.Retransmissions != 0 {
		t.Fatalf("stats %+v: want one resend without the flags (RiseRefused, not KeepRefused), no DC given up", st)
	}
	if n := h.parts["dc0"].actedCount(0, protocol.StepBroadcast); n != 1 {
		t.Fatalf("dc0 applied decision 0 %d times, want 1", n)
	}
	if outs := h.store.Outcomes(); len(outs) != 1 || outs[0].DCs[0].KeepRefused || outs[0].DCs[0].State != fsm.OutcomeApplied {
		t.Fatalf("outcomes %+v: want dc0's decision applied, no hold refused", outs)
	}
}
