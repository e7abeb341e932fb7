package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// takeoverBed is one datacenter (caller and callee both enter there) with
// one firewall instance, a fake switch that keeps the last rule set, and
// the plane's reported errors.
type takeoverBed struct {
	p    *Plane
	t    *routing.Table
	sw   *fakeSwitch
	errs []error
}

var takeoverPaths = map[placement.Pair]placement.Path{{Entry: 0, Exit: 0}: {0, 0, 0}}

func newTakeoverBed(t *testing.T) *takeoverBed {
	t.Helper()
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 1, Stages: 1, Paths: takeoverPaths})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 3}}); err != nil {
		t.Fatal(err)
	}
	b := &takeoverBed{t: tb, sw: &fakeSwitch{}}
	st := &dcState{t: tb, sw: b.sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	st.live[0] = map[uint8]Ports{3: InstancePorts(1, 3)}
	b.p = &Plane{dcs: []*dcState{st}, cfg: Config{OnError: func(err error) { b.errs = append(b.errs, err) }}}
	return b
}

// sipCall is a call as SIPp makes it: every call of one SIPp sends its
// media from one port (6000) of the UA's address to the peer's port 6000.
func sipCall(caller, callee string) routing.Call {
	return routing.Call{CallerDC: 0, CalleeDC: 0, CallerIP: ip(caller), CalleeIP: ip(callee),
		CallerSendPort: 6000, CallerRecvPort: 6000, CalleeSendPort: 6000, CalleeRecvPort: 6000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(0)}
}

// startState changes the plane's state for c's start (its caller's flow
// into DC 0) without a rule update, as StartCall does before its commit;
// it returns the change's generations.
func (b *takeoverBed) startState(t *testing.T, c routing.Call) map[int]uint64 {
	t.Helper()
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	_, gens, err := b.p.startCallState(c, []FlowStart{{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: c.CallerIP, SrcPort: 6000, DstIP: EntryIP(0), DstPort: 6000}}})
	if err != nil {
		t.Fatal(err)
	}
	return gens
}

// next enters the next interval (steps 4 and 5, same paths).
func (b *takeoverBed) next(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	iv := b.t.Interval() + 1
	if err := b.p.StoreNext(ctx, 0, iv, takeoverPaths); err != nil {
		t.Fatal(err)
	}
	if err := b.p.Enter(ctx, 0, iv); err != nil {
		t.Fatal(err)
	}
}

// arrivals returns the last rule set's arrival rules (entry cookies) by
// their identity, each identity's rules in set order.
func (b *takeoverBed) arrivals() map[string][]ovs.Flow {
	out := map[string][]ovs.Flow{}
	for _, f := range b.sw.want {
		if _, ok := ovs.PairOf(f.Cookie); ok {
			out[f.Key()] = append(out[f.Key()], f)
		}
	}
	return out
}

// exits returns the last rule set's per-call exit translations by sender
// (nw_src,tp_src), with their actions.
func (b *takeoverBed) exits() map[string]string {
	out := map[string]string{}
	for _, f := range b.sw.want {
		if f.Cookie == ovs.CookieExit && strings.Contains(f.Actions, "->ip_src") && strings.Contains(f.Match, "reg0=2,") {
			i := strings.Index(f.Match, "nw_src=")
			out[strings.Split(f.Match[i:], ",nw_dst")[0]] = f.Actions
		}
	}
	return out
}

func tagPort(t *testing.T, interval uint64) uint16 {
	t.Helper()
	p, err := routing.NewTag(0, 0, interval).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *takeoverBed) load() float64 {
	var sum float64
	for _, in := range b.t.Instances(1) {
		sum += in.Load
	}
	return sum
}

// Two calls of one SIPp (one media 5-tuple per side), the second started
// in a later interval while the first is still up (rehearsal 2 of session
// 12: 160 warnings "two rules with identity …", hold/resume re-INVITEs
// answered 408): the rule set holds one arrival rule per 5-tuple, the newer
// call's (its interval's tag), and the switch gets it; when the older call
// ends first, the newer call's rules and Table 1 mappings stay; when the
// newer one ends, nothing of either is left (rules, mappings, load).
// Before, both calls' rules went to the switch (which refused the whole
// set), and the first call's end removed the second call's flows too (the
// two calls are equal routing.Calls, so they shared one byCall entry).
func TestNewerCallTakesItsMediaTupleOver(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	a := sipCall("127.0.0.101", "127.0.0.91")
	if err := b.p.OpenCall(ctx, a); err != nil {
		t.Fatal(err)
	}
	cookies := map[string]uint64{}
	for k, fs := range b.arrivals() {
		cookies[k] = fs[0].Cookie
	}
	if len(cookies) != 2 {
		t.Fatalf("one call: %d arrival rules, want 2 (one per side)", len(cookies))
	}
	b.next(t)
	later := a // the same UA and peer, the same ports: an equal call
	if err := b.p.OpenCall(ctx, later); err != nil {
		t.Fatalf("the second call: %v", err)
	}
	check := func(when string) {
		t.Helper()
		arr := b.arrivals()
		if len(arr) != 2 {
			t.Fatalf("%s: arrival rules for %d 5-tuples, want 2", when, len(arr))
		}
		tag := fmt.Sprintf("set_field:%d->udp_dst", tagPort(t, 1))
		for k, fs := range arr {
			if len(fs) != 1 {
				t.Fatalf("%s: %d rules with identity %s, want 1 (one 5-tuple is routed one way):\n%v", when, len(fs), k, fs)
			}
			if !strings.Contains(fs[0].Actions, tag) {
				t.Errorf("%s: rule %s, want the newer call's tag %q (interval 1)", when, fs[0], tag)
			}
			if fs[0].Cookie != cookies[k] {
				// one pair: modified in place, the counter goes on (a
				// new cookie would cost a counter read and a replace)
				t.Errorf("%s: rule %s, want the first call's cookie %#x", when, fs[0], cookies[k])
			}
		}
		if x := b.exits(); len(x) != 2 {
			t.Errorf("%s: exit translations %v, want one per sender", when, x)
		}
		if l := b.load(); l != 2 {
			t.Errorf("%s: firewall load %g, want 2 (the two flows routed now; a flow taken over leaves)", when, l)
		}
	}
	check("both calls up")
	if err := b.p.CloseCall(ctx, a); err != nil {
		t.Fatal(err)
	}
	check("the older call ended")
	if _, _, ok := b.t.EntryMapping(routing.Endpoint{IP: ip("127.0.0.101"), Port: 6000}); !ok {
		t.Fatal("the older call's end deleted the newer call's mapping 1")
	}
	if err := b.p.CloseCall(ctx, later); err != nil {
		t.Fatal(err)
	}
	if arr, x := b.arrivals(), b.exits(); len(arr) != 0 || len(x) != 0 {
		t.Fatalf("both calls ended: arrival rules %v, exit translations %v; want none", arr, x)
	}
	if e, x := b.t.Mappings(); e != 0 || x != 0 || b.load() != 0 || len(b.p.Calls(0)) != 0 {
		t.Fatalf("both calls ended: %d entry and %d exit mappings, load %g, calls %v; want none", e, x, b.load(), b.p.Calls(0))
	}
	if len(b.errs) != 0 {
		t.Fatalf("errors reported: %v", b.errs)
	}
	if got := b.p.FlowTakeoversByDC(); got["dc0"] != (FlowTakeovers{Takeovers: 2}) {
		t.Fatalf("takeovers %v, want 2 in dc0 (both sides of the second call), no conflict", got)
	}
}

// Two calls from one UA endpoint to different peers that listen on one
// port: the caller's media 5-tuple is the same (it sends to its entry
// address and the peer's port). The newer call takes the 5-tuple over; the
// older call's end leaves the newer call's mappings (its peer's exit
// translation for the caller's packets) and rules. Before, the older call's
// end deleted the endpoint's mappings, and the newer call's exit rule for
// the caller's packets went with them.
func TestOlderCallEndLeavesTheNewerCallsMappings(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	a, c := sipCall("127.0.0.101", "127.0.0.91"), sipCall("127.0.0.101", "127.0.0.92")
	for _, x := range []routing.Call{a, c} {
		if err := b.p.OpenCall(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if arr := b.arrivals(); len(arr) != 3 {
		t.Fatalf("arrival rules for %d 5-tuples, want 3 (the caller's shared one, each callee's)", len(arr))
	}
	if err := b.p.CloseCall(ctx, a); err != nil {
		t.Fatal(err)
	}
	arr := b.arrivals()
	if len(arr) != 2 {
		t.Fatalf("after the older call's end: arrival rules for %d 5-tuples, want 2 (the newer call's)", len(arr))
	}
	for k, fs := range arr {
		if len(fs) != 1 || strings.Contains(k, "nw_src=127.0.0.91") {
			t.Fatalf("after the older call's end: rules %v for %s", fs, k)
		}
	}
	// the caller's packets leave the chain towards the newer call's callee
	want := map[string]string{}
	for _, s := range []struct{ from, to string }{{"127.0.0.101", "127.0.0.92"}, {"127.0.0.92", "127.0.0.101"}} {
		want["nw_src="+s.from+",tp_src=6000"] = fmt.Sprintf("set_field:%s->ip_src,set_field:%s->ip_dst,set_field:6000->udp_dst,set_field:%s->eth_dst,output:%d",
			EntryIP(0), s.to, UsersMAC(0), UserPort)
	}
	if got := b.exits(); !maps.Equal(got, want) {
		t.Fatalf("exit translations after the older call's end\n%v\nwant\n%v", got, want)
	}
	if peer, _, ok := b.t.EntryMapping(routing.Endpoint{IP: ip("127.0.0.101"), Port: 6000}); !ok || peer != ip("127.0.0.92") {
		t.Fatalf("the caller's mapping 1: peer %v %v, want the newer call's callee", peer, ok)
	}
	if err := b.p.CloseCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if e, x := b.t.Mappings(); e != 0 || x != 0 || len(b.arrivals()) != 0 || b.load() != 0 {
		t.Fatalf("both ended: %d+%d mappings, rules %v, load %g; want none", e, x, b.arrivals(), b.load())
	}
}

// A rule conflict that reaches the plane's rule set (two flows with one
// 5-tuple stored without the takeover: a compiler bug) costs the older
// flow's rule only: the sync succeeds, the newer flow's rule and every
// other rule go to the switch, the conflict is reported once naming both
// rules and counted. Before, the switch refused the whole set, so no rule
// of the datacenter changed until one of the flows went.
func TestRuleConflictCostsTheOlderRuleOnly(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	if err := b.t.AddCall(sipCall("127.0.0.101", "127.0.0.91")); err != nil {
		t.Fatal(err)
	}
	pkt := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: ip("127.0.0.101"), SrcPort: 6000, DstIP: EntryIP(0), DstPort: 6000}
	other := pkt
	if err := b.t.AddCall(sipCall("127.0.0.102", "127.0.0.91")); err != nil {
		t.Fatal(err)
	}
	other.SrcIP = ip("127.0.0.102")
	st := b.p.dcs[0]
	d1 := b.t.Route(pkt)
	b.next(t)
	d2, d3 := b.t.Route(pkt), b.t.Route(other)
	st.flows[7] = Flow{Serial: 7, Decision: d1}
	st.flows[8] = Flow{Serial: 8, Decision: d2}
	st.flows[9] = Flow{Serial: 9, Decision: d3}
	for i := 0; i < 2; i++ {
		if err := b.p.Sync(ctx, 0); err != nil {
			t.Fatalf("sync %d: %v", i+1, err)
		}
	}
	arr := b.arrivals()
	if len(arr) != 2 {
		t.Fatalf("arrival rules for %d 5-tuples, want 2", len(arr))
	}
	for _, fs := range arr {
		if len(fs) != 1 {
			t.Fatalf("rules %v with one identity went to the switch", fs)
		}
		if f := fs[0]; strings.Contains(f.Match, "nw_src=127.0.0.101") && f.Cookie != ovs.EntryCookie(ovs.Pair{}, 8) {
			t.Fatalf("rule %s kept, want the newer flow's (serial 8)", f)
		}
	}
	if len(b.errs) != 1 || !strings.Contains(b.errs[0].Error(), "rule conflict") ||
		!strings.Contains(b.errs[0].Error(), fmt.Sprintf("set_field:%d->udp_dst", tagPort(t, 0))) ||
		!strings.Contains(b.errs[0].Error(), fmt.Sprintf("set_field:%d->udp_dst", tagPort(t, 1))) {
		t.Fatalf("reported %v, want one rule conflict naming both rules' tags", b.errs)
	}
	if got := b.p.FlowTakeoversByDC()["dc0"]; got.Conflicts != 1 {
		t.Fatalf("conflicts counted %d, want 1 (reported once while it lasts)", got.Conflicts)
	}
}

// An OpenCall whose rule update fails leaves nothing of the call (the media
// hook keeps its halves pending and tries again on a repeated start; no end
// comes for a call it never opened), and the rules of an equal call still
// up stay. Before, the failed call stayed in the plane for good: its
// mappings and flows, and an extra copy in the calls list.
func TestFailedOpenHoldsNothing(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	a := sipCall("127.0.0.101", "127.0.0.91")
	b.sw.err = errors.New("ovs-ofctl: timeout")
	if err := b.p.OpenCall(ctx, a); err == nil {
		t.Fatal("a failed rule update: no error")
	}
	st := b.p.dcs[0]
	if e, x := b.t.Mappings(); e+x != 0 || len(st.flows) != 0 || len(b.p.Calls(0)) != 0 || b.load() != 0 {
		t.Fatalf("after the failed open: %d+%d mappings, %d flows, calls %v, load %g; want none", e, x, len(st.flows), b.p.Calls(0), b.load())
	}
	b.sw.err = nil
	if err := b.p.OpenCall(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.sw.err = errors.New("ovs-ofctl: timeout")
	if err := b.p.OpenCall(ctx, a); err == nil {
		t.Fatal("a failed rule update: no error")
	}
	b.sw.err = nil
	if err := b.p.Sync(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if arr := b.arrivals(); len(arr) != 2 || len(b.p.Calls(0)) != 1 || b.load() != 2 {
		t.Fatalf("an equal call's failed open: arrival rules %v, calls %v, load %g; want the first call's 2 rules, 1 call, load 2", arr, b.p.Calls(0), b.load())
	}
	if err := b.p.CloseCall(ctx, a); err != nil {
		t.Fatal(err)
	}
	if e, x := b.t.Mappings(); e+x != 0 || len(b.arrivals()) != 0 || b.load() != 0 {
		t.Fatalf("the call's end: %d+%d mappings, rules %v, load %g; want none", e, x, b.arrivals(), b.load())
	}
}

// Two calls changed while a rule update ran (their StartCalls queued for
// the lock) share one update: the second commit finds its change covered
// by the first one's update and answers with that update's result, on
// success and on failure (then both calls are undone by their StartCalls).
// Before, each call ran its own ovs-ofctl bundle behind the lock, so a burst
// of call setups on a loaded host waited seconds each.
func TestCallChangesShareOneRuleUpdate(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	open := func(c routing.Call) map[int]uint64 { return b.startState(t, c) }
	for _, fail := range []bool{false, true} {
		b.sw.forget, b.sw.err = nil, nil
		if fail {
			b.sw.err = errors.New("ovs-ofctl: timeout")
		}
		ga := open(sipCall("127.0.0.101", "127.0.0.91"))
		gb := open(sipCall("127.0.0.102", "127.0.0.91"))
		ea, eb := b.p.commit(ctx, ga), b.p.commit(ctx, gb)
		// a failed update answers only its caller: the other one tries
		// again with its own context
		if want := map[bool]int{false: 1, true: 2}[fail]; len(b.sw.forget) != want {
			t.Fatalf("fail=%v: %d rule updates for two queued call changes, want %d", fail, len(b.sw.forget), want)
		}
		if (ea != nil) != fail || (eb != nil) != fail {
			t.Fatalf("fail=%v: commits answered %v, %v; want both failed iff the switch fails", fail, ea, eb)
		}
		if fail {
			continue
		}
		if arr := b.arrivals(); len(arr) != 2 {
			t.Fatalf("the shared update installed arrival rules for %d 5-tuples, want both calls' 2", len(arr))
		}
		for _, c := range []routing.Call{sipCall("127.0.0.101", "127.0.0.91"), sipCall("127.0.0.102", "127.0.0.91")} {
			if err := b.p.EndCall(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The group commit answers each caller for its own change (review F1): an
// update that failed because of its caller's context (the media hook's
// timeout runs out while its request waits for the lock) does not fail the
// other call it covered, which updates with its own context; and a call
// whose rules a successful update installed is not told of a later
// update's failure (StartCall would undo a call whose rules are fine).
func TestCommitAnswersEachCallerItsOwnResult(t *testing.T) {
	ctx := context.Background()
	var b *takeoverBed
	t.Run("expired context of the first caller", func(t *testing.T) {
		b = newTakeoverBed(t)
		ga := b.startState(t, sipCall("127.0.0.101", "127.0.0.91"))
		gb := b.startState(t, sipCall("127.0.0.102", "127.0.0.91"))
		dead, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.p.commit(dead, ga); !errors.Is(err, context.Canceled) {
			t.Fatalf("commit with an expired context answered %v, want context.Canceled", err)
		}
		if err := b.p.commit(ctx, gb); err != nil {
			t.Fatalf("the second caller (live context) got %v, the first caller's error", err)
		}
		if arr := b.arrivals(); len(arr) != 2 {
			t.Fatalf("after the second caller's commit %d arrival rules, want both calls' 2", len(arr))
		}
	})
	t.Run("a later update fails", func(t *testing.T) {
		b = newTakeoverBed(t)
		gc := b.startState(t, sipCall("127.0.0.103", "127.0.0.92"))
		if err := b.p.commit(ctx, gc); err != nil {
			t.Fatal(err)
		}
		b.sw.err = errors.New("ovs-ofctl: timeout")
		b.p.mu.Lock()
		serr := b.p.sync(ctx, 0)
		b.p.mu.Unlock()
		if serr == nil {
			t.Fatal("the failing switch: no error")
		}
		if err := b.p.commit(ctx, gc); err != nil {
			t.Fatalf("a call already installed was answered with a later update's error: %v", err)
		}
	})
}

// Two calls that are not equal share the callee's 5-tuple (one callee
// called by two callers: TestChaos's callee side, 127.0.0.91:6000 → the
// entry's 6000); the newer call took it over. When the newer call ends
// first, the older call, still open, gets its arrival rule back (review
// F2: before, it got its mappings back but no rule, so the callee's
// packets to it were dropped); the same when the newer call's start
// fails.
func TestNewerCallEndGivesTheTupleBack(t *testing.T) {
	ctx := context.Background()
	a, c := sipCall("127.0.0.101", "127.0.0.91"), sipCall("127.0.0.102", "127.0.0.91")
	calleeOwner := func(b *takeoverBed) (routing.Call, bool) {
		st := b.p.dcs[0]
		for sr, f := range st.flows {
			if f.Decision.Packet.SrcIP == ip("127.0.0.91") {
				o, ok := st.callOf[sr]
				return o, ok
			}
		}
		return routing.Call{}, false
	}
	calleeRules := func(b *takeoverBed) int {
		n := 0
		for k := range b.arrivals() {
			if strings.Contains(k, "nw_src=127.0.0.91,") {
				n++
			}
		}
		return n
	}
	t.Run("the newer call ends", func(t *testing.T) {
		b := newTakeoverBed(t)
		for _, x := range []routing.Call{a, c} {
			if err := b.p.OpenCall(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.p.CloseCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		if n := calleeRules(b); n != 1 {
			t.Fatalf("after the newer call's end: %d arrival rules from the callee 127.0.0.91, want the older open call's 1", n)
		}
		if o, ok := calleeOwner(b); !ok || o != a {
			t.Fatalf("the callee's 5-tuple is owned by %v (%v), want the older open call", o, ok)
		}
		if err := b.p.CloseCall(ctx, a); err != nil {
			t.Fatal(err)
		}
		if e, x := b.t.Mappings(); e != 0 || x != 0 || len(b.arrivals()) != 0 || b.load() != 0 {
			t.Fatalf("both ended: %d+%d mappings, rules %v, load %g; want none", e, x, b.arrivals(), b.load())
		}
	})
	t.Run("the newer call's start fails", func(t *testing.T) {
		b := newTakeoverBed(t)
		if err := b.p.OpenCall(ctx, a); err != nil {
			t.Fatal(err)
		}
		b.sw.err = errors.New("ovs-ofctl: timeout")
		if err := b.p.OpenCall(ctx, c); err == nil {
			t.Fatal("failing switch: the open succeeded")
		}
		b.sw.err = nil
		if o, ok := calleeOwner(b); !ok || o != a {
			t.Fatalf("after the failed open the callee's 5-tuple is owned by %v (%v), want the older open call", o, ok)
		}
		if err := b.p.CloseCall(ctx, a); err != nil {
			t.Fatal(err)
		}
		if e, x := b.t.Mappings(); e != 0 || x != 0 || len(b.arrivals()) != 0 || b.load() != 0 {
			t.Fatalf("both ended: %d+%d mappings, rules %v, load %g; want none", e, x, b.arrivals(), b.load())
		}
	})
}
