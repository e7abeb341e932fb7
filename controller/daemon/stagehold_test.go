package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers"
)

// Session 12's step-4 request, the wire schema of a local controller that
// predates the stage hold: no VNFTarget.KeepBuffered.
type (
	oldTarget struct {
		VNF      string `json:"vnf"`
		Working  int    `json:"working"`
		Reuse    int    `json:"reuse"`
		Create   int    `json:"create"`
		ToBuffer int    `json:"toBuffer"`
		Reason   string `json:"reason"`
	}
	oldDecision struct {
		DC       string               `json:"dc"`
		Interval uint64               `json:"interval"`
		Targets  []oldTarget          `json:"targets"`
		Paths    []protocol.PathEntry `json:"paths"`
		Drain    bool                 `json:"drain,omitempty"`
		Limits   []protocol.VNFLimit  `json:"limits,omitempty"`
	}
	oldRequest struct {
		protocol.Header
		Decision *oldDecision `json:"decision,omitempty"`
		Expires  time.Time    `json:"expires,omitzero"`
	}
)

// oldLocal stands in front of one DC's protocol endpoint as a local
// controller of session 12 would answer: it decodes every request strictly
// in that version's schema (a field it does not know: HTTP 400 naming it,
// transport.BodyError, as session 12's handler did) and hands what it
// accepts to the daemon's real local controller. With advertise false
// its step-2 reports leave features out (an old local all along); with
// advertise true they keep them (a local rolled back between the round's
// step 2 and step 4).
type oldLocal struct {
	target    string // the DC's base URL on the daemon (…/dc/<name>)
	advertise bool
	client    *http.Client // its own pool, closed before the daemon stops

	mu      sync.Mutex
	keep    int // requests that carried keepBuffered
	refused int // requests answered 400
}

func (o *oldLocal) counts() (keep, refused int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.keep, o.refused
}

func (o *oldLocal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, transport.MaxBodyBytes))
	if err != nil {
		transport.BodyError(w, err)
		return
	}
	var req oldRequest
	derr := transport.DecodeStrict(bytes.NewReader(body), &req, "request body")
	o.mu.Lock()
	if bytes.Contains(body, []byte(`"keepBuffered"`)) {
		o.keep++
	}
	if derr != nil {
		o.refused++
	}
	o.mu.Unlock()
	if derr != nil {
		transport.BodyError(w, derr)
		return
	}
	fw, err := http.NewRequestWithContext(r.Context(), http.MethodPost, o.target+transport.ProtocolPath, bytes.NewReader(body))
	if err != nil {
		transport.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	fw.Header = r.Header.Clone()
	res, err := o.client.Do(fw)
	if err != nil {
		transport.WriteError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer res.Body.Close()
	var resp protocol.Response
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&resp) != nil {
		transport.WriteError(w, http.StatusBadGateway, "the local controller behind answered "+res.Status)
		return
	}
	if resp.Provision != nil && !o.advertise {
		resp.Provision.Features = nil
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// stageHoldRun is a one-node cluster daemon on a virtual clock whose round
// engine reaches its four local controllers over the protocol's HTTP
// transport, tokyo's through an oldLocal; the sim driver, the default
// traffic (it falls from 60 s on) and a declared profile that rises 2.5×
// at 90 s (10 s profile hours), so that round 8 (at 90 s) buffers
// instances the falling load leaves idle while the profile's rise is
// ahead: the stage floor's hold.
type stageHoldRun struct {
	d   *Daemon
	old *oldLocal
	// buffered: after each round's enter, dc/vnf → the instances the local
	// controller holds in its buffer
	buffered map[uint64]map[string][]string
	mu       sync.Mutex
	gone     map[string]time.Time // instance → when the cloud terminated it
}

func (s *stageHoldRun) goneAt(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.gone[id]
	return at, ok
}

// riseRound is the record of the round that starts at riseAt.
func (s *stageHoldRun) riseRound() (global.RoundRecord, bool) {
	for _, r := range s.d.engine.Records() {
		if r.Started.Equal(time.Unix(1_800_000_000, 0).Add(riseAt)) {
			return r, true
		}
	}
	return global.RoundRecord{}, false
}

func (s *stageHoldRun) record(round uint64) (global.RoundRecord, bool) {
	for _, r := range s.d.engine.Records() {
		if r.Round == round {
			return r, true
		}
	}
	return global.RoundRecord{}, false
}

// inflight counts the round engine's protocol requests whose answer (or
// error) has not been handled yet: Send to the return of deliver, which
// handles it under the engine's lock, including the commits and the plan
// it leads to.
type inflight struct {
	inner transport.Transport
	mu    sync.Mutex
	n     int
}

func (f *inflight) Send(dc string, req protocol.Request, deliver transport.Deliver) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	f.inner.Send(dc, req, func(resp protocol.Response, err error) {
		defer func() {
			f.mu.Lock()
			f.n--
			f.mu.Unlock()
		}()
		deliver(resp, err)
	})
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// quiescentClock is the daemon's virtual clock: after every timer's
// callback it waits until the work done in real time that the callback
// started is over (quiet), so that whatever is left waits on the virtual
// clock and the next timer sees the same state in every run.
type quiescentClock struct {
	*clock.Virtual
	quiet func() // nil until the daemon runs
}

func (c *quiescentClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return c.Virtual.AfterFunc(d, func() {
		f()
		if c.quiet != nil {
			c.quiet()
		}
	})
}

// riseAt is when the scenario's declared profile rises (hour 9 of 10 s
// hours): the round starting then is the one the stage floor holds in.
const riseAt = 90 * time.Second

// runStageHold runs the scenario for 100 virtual seconds with
// policy.declaredProfile.stageFloor floor in stageFloorMode hold (the
// default, launch, sends no keepBuffered). After each timer the clock
// fires it waits until the daemon is quiet: no protocol request of the
// round engine in flight (their answers handled: the commits and plans
// they lead to are done, the engine's are synchronous) and the workload
// reporter idle or waiting for its retry timer. Every state it accepts
// waits on the virtual clock; every state it refuses has real-time work
// under way, bounded by the long request timeouts (realTimeout).
func runStageHold(t *testing.T, floor float64, advertise bool) *stageHoldRun {
	t.Helper()
	return runStageHoldWith(t, floor, advertise, nil)
}

// runStageHoldWith is runStageHold with edit (nil: none) applied to the
// config before it is normalized.
func runStageHoldWith(t *testing.T, floor float64, advertise bool, edit func(*Config)) *stageHoldRun {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "protocol-token")
	if err := os.WriteFile(tokenFile, []byte("test-protocol-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	url := "http://" + ln.Addr().String()
	const realTimeout = time.Minute // a loaded machine's slow answer is not a loss
	old := &oldLocal{target: url + "/dc/tokyo", advertise: advertise,
		client: &http.Client{Timeout: realTimeout, Transport: &http.Transport{}}}
	proxy := httptest.NewServer(old)
	t.Cleanup(proxy.Close)
	cfg := DefaultConfig()
	cfg.Node = NodeConfig{ID: "n1", RaftBind: "127.0.0.1:0", RaftDir: t.TempDir(), Bootstrap: true}
	cfg.API.URL = url
	cfg.Role = RoleConfig{Global: true, Locals: cfg.dcNames(), ProtocolTokenFile: tokenFile, ProbePeriod: "off",
		LocalEndpoints: map[string]string{}}
	for _, dc := range cfg.dcNames() {
		cfg.Role.LocalEndpoints[dc] = url
	}
	cfg.Role.LocalEndpoints["tokyo"] = proxy.URL + "/" // the transport appends ProtocolPath
	cfg.Policy.DeclaredProfile = declaredProfile(cfg)
	cfg.Policy.DeclaredProfile.StageFloor = floor
	// the hold mode: the default (launch, since session 14) raises counts
	// and sends no keepBuffered, which is what this test follows
	cfg.Policy.DeclaredProfile.StageFloorMode = global.StageFloorHold
	rates := make([]float64, global.HoursPerDay)
	for h := range rates {
		rates[h] = 10
		if time.Duration(h)*10*time.Second >= riseAt {
			rates[h] = 25
		}
	}
	for i := range cfg.Policy.DeclaredProfile.DCs {
		cfg.Policy.DeclaredProfile.DCs[i].Rates = rates
	}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	clk := &quiescentClock{Virtual: clock.NewVirtual(time.Unix(1_800_000_000, 0))}
	s := &stageHoldRun{old: old, buffered: map[uint64]map[string][]string{}, gone: map[string]time.Time{}}
	var sends *inflight
	d := startDaemon(t, cfg, Options{Clock: clk, Listener: ln, Raft: testRaft(), Logger: slog.New(slog.DiscardHandler),
		ShutdownTimeout: 3 * time.Second, BootstrapProbeTimeout: 200 * time.Millisecond, realTimeout: realTimeout,
		wrapProtocol: func(tr transport.Transport) transport.Transport {
			sends = &inflight{inner: tr}
			return sends
		}}, func(d *Daemon) {
		if d.simCloud == nil {
			t.Fatal("no simulated cloud")
		}
		d.simCloud.Subscribe(func(ev drivers.Event) {
			if ev.State == drivers.StateGone {
				s.mu.Lock()
				s.gone[ev.ID] = ev.At
				s.mu.Unlock()
			}
		})
	})
	t.Cleanup(old.client.CloseIdleConnections) // before the daemon's shutdown (cleanups run last first)
	s.d = d
	eventually(t, 20*time.Second, "n1 to lead", func() bool { return d.Node().Raft.State() == raft.Leader })
	eventually(t, 20*time.Second, "n1 ready", func() bool { return d.Backend().Ready(context.Background()) == nil })
	eventually(t, 20*time.Second, "the round engine running", d.engine.Running)
	if sends == nil {
		t.Fatal("the round engine's transport was not wrapped")
	}
	clk.quiet = func() {
		eventually(t, 2*realTimeout, "the daemon quiet (no protocol request in flight, the reporter idle or waiting)", func() bool {
			rs := d.reports.reporter.Stats()
			return sends.count() == 0 && (rs.QueueLen == 0 || rs.Waiting)
		})
	}
	seen := 0
	for range 100 {
		clk.Advance(time.Second)
		if !d.engine.Running() {
			t.Fatalf("the round engine stopped at +%v", clk.Now().Sub(time.Unix(1_800_000_000, 0)))
		}
		recs := d.engine.Records()
		for _, r := range recs[seen:] {
			b := map[string][]string{}
			for _, dc := range cfg.dcNames() {
				for _, v := range cfg.Topology.Chain {
					for _, e := range d.locals[dc].Buffer(v.Name) {
						b[dc+"/"+v.Name] = append(b[dc+"/"+v.Name], e.ID)
					}
				}
			}
			s.buffered[r.Round] = b
		}
		seen = len(recs)
	}
	clk.quiet = nil
	return s
}

// The stage hold on the real daemon (stageFloorMode hold, which
// runStageHold sets): the round engine reaches the local
// controllers over HTTP, a rise of the declared profile makes a round ask
// a DC to keep k buffered instances, and the instances that DC buffered at
// that round are not terminated in the cloud (drivers/sim, the daemon's
// driver with traffic) before the interval ends; with
// policy.declaredProfile.stageFloor 1 (off) the trims terminate the same
// round's buffered instances within the interval. Tokyo's local controller
// does not advertise keepBuffered (session 12's wire schema, oldLocal):
// its request bodies never carry the field, its targets say why, and it is
// never given up.
func TestDaemonStageHoldKeepsBuffered(t *testing.T) {
	s := runStageHold(t, 0, false)
	var round uint64
	var held string
	var keep int
	for _, r := range s.d.engine.Records() {
		for _, dd := range r.Decision {
			for _, tg := range dd.Targets {
				if tg.KeepBuffered > 0 && dd.DC == "tokyo" {
					t.Errorf("round %d: tokyo's %s target carries keepBuffered %d; tokyo does not advertise it", r.Round, tg.VNF, tg.KeepBuffered)
				}
				if k := dd.DC + "/" + tg.VNF; tg.KeepBuffered > 0 && held == "" && len(s.buffered[r.Round][k]) > 0 {
					round, held, keep = r.Round, k, tg.KeepBuffered
				}
			}
		}
		if _, gone := r.Unreachable["tokyo"]; gone {
			t.Errorf("round %d: tokyo given up (%v)", r.Round, r.Unreachable)
		}
	}
	if held == "" {
		t.Fatal("no round asked a DC to keep buffered instances it had buffered")
	}
	next, ok := s.record(round + 1)
	if !ok {
		t.Fatalf("round %d did not run", round+1)
	}
	ids := s.buffered[round][held]
	t.Logf("round %d asks %s to keep %d buffered: %v, the interval ends at round %d's start (+%v)", round, held, keep, ids,
		round+1, next.Started.Sub(time.Unix(1_800_000_000, 0)))
	for _, id := range ids[:min(keep, len(ids))] {
		if at, gone := s.goneAt(id); gone && at.Before(next.Started) {
			t.Errorf("%s (%s, held by round %d) terminated in the cloud at +%v, before the interval ended", id, held, round,
				at.Sub(time.Unix(1_800_000_000, 0)))
		}
	}
	tokyoWould := false
	for _, r := range s.d.engine.Records() {
		for _, dd := range r.Decision {
			for _, tg := range dd.Targets {
				tokyoWould = tokyoWould || dd.DC == "tokyo" && strings.Contains(tg.Reason, "does not advertise keepBuffered")
			}
		}
	}
	if !tokyoWould {
		t.Error("no tokyo target says the hold was left out for want of the feature: the scenario never held tokyo")
	}
	if k, refused := s.old.counts(); k != 0 || refused != 0 {
		t.Errorf("tokyo's local received keepBuffered in %d requests, refused %d; want none", k, refused)
	}

	if rise, ok := s.riseRound(); !ok || rise.Round != round {
		t.Errorf("the hold is at round %d, not at the round that starts at the rise (+%v)", round, riseAt)
	}

	// the same scenario without the stage floor, read on its own: no round
	// asks to keep anything, and the trims terminate every instance
	// buffered at the rise before its interval ends
	off := runStageHold(t, 1, false)
	for _, r := range off.d.engine.Records() {
		for _, dd := range r.Decision {
			for _, tg := range dd.Targets {
				if tg.KeepBuffered > 0 {
					t.Errorf("stageFloor 1: round %d asks %s/%s to keep %d buffered", r.Round, dd.DC, tg.VNF, tg.KeepBuffered)
				}
			}
		}
	}
	rise, ok := off.riseRound()
	if !ok {
		t.Fatalf("stageFloor 1: no round starts at the rise (+%v)", riseAt)
	}
	next, ok = off.record(rise.Round + 1)
	if !ok {
		t.Fatalf("stageFloor 1: round %d did not run", rise.Round+1)
	}
	n := 0
	for _, k := range slices.Sorted(maps.Keys(off.buffered[rise.Round])) {
		for _, id := range off.buffered[rise.Round][k] {
			n++
			at, gone := off.goneAt(id)
			t.Logf("stageFloor 1: %s (%s) terminated %v at +%v", id, k, gone, at.Sub(time.Unix(1_800_000_000, 0)))
			if !gone || !at.Before(next.Started) {
				t.Errorf("stageFloor 1: %s (%s, buffered by round %d) not terminated before the interval ended: the trims would not have destroyed it", id, k, rise.Round)
			}
		}
	}
	if n == 0 {
		t.Fatalf("stageFloor 1: nothing buffered at round %d (the rise): the scenario does not test the trims", rise.Round)
	}
}

// A local controller rolled back between a round's step 2 (it advertised
// keepBuffered) and step 4 refuses the decision with the field (HTTP 400
// naming it, as session 12's strict decoding does): the engine sends the
// decision again without it, so the DC gets its decision that round and
// is never given up.
func TestDaemonStageHoldLocalRolledBack(t *testing.T) {
	s := runStageHold(t, 0, true)
	k, refused := s.old.counts()
	if refused == 0 || k == 0 {
		t.Fatalf("tokyo's local refused %d requests (%d with keepBuffered): the scenario never sent it the field", refused, k)
	}
	// each refusal of a decision with the field is answered by one resend
	// without it; a retransmission of the refused body may be refused too
	// (a transport error then): the proxy counts at least the engine's
	st := s.d.engine.Stats()
	if st.KeepRefused < 1 || refused < st.KeepRefused+st.RiseRefused {
		t.Errorf("engine counted %d refusals of keepBuffered and %d of noRise/fast only, tokyo refused %d: want 1 ≤ engine ≤ tokyo", st.KeepRefused, st.RiseRefused, refused)
	}
	if m := s.d.Backend().MetricsSnapshot(); m.KeepRefused != uint64(st.KeepRefused) {
		t.Errorf("metrics: keep refused %d, the engine counted %d", m.KeepRefused, st.KeepRefused)
	}
	// decisions to tokyo that carried the rise flags (riseFlags is on by
	// default) but no keepBuffered were refused for the flags alone, and
	// /metrics says how many
	if st.RiseRefused < 1 {
		t.Errorf("engine counted %d refusals of noRise/fast only: the scenario never sent tokyo a flag without a hold", st.RiseRefused)
	}
	text := scrape(t, s.d.URL())
	if v := metricValue(t, text, "ims_orch_rise_refused_total"); v != float64(st.RiseRefused) || !strings.Contains(text, "# TYPE ims_orch_rise_refused_total counter") {
		t.Errorf("/metrics: ims_orch_rise_refused_total %g, the engine counted %d:\n%s", v, st.RiseRefused, grep(text, "refused"))
	}
	// GET /decisions: tokyo's holds are shown refused, none applied
	refusedIn := 0
	w := newWatcher(s.d)
	w.mu.Lock()
	ds := w.outcomeDecisions(map[string]local.VNFConfig{})
	w.mu.Unlock()
	for _, dd := range ds {
		if _, ok := dd.Detail["keepRefused"]; ok {
			refusedIn++
			if dd.DC != "tokyo" {
				t.Errorf("round %d: %s/%s shown as refusing keepBuffered", dd.Round, dd.DC, dd.VNF)
			}
		}
		if _, ok := dd.Detail["keepBuffered"]; ok && dd.DC == "tokyo" {
			t.Errorf("round %d: tokyo/%s's hold shown as applied (%v): its local controller refused it", dd.Round, dd.VNF, dd.Detail)
		}
	}
	if refusedIn < st.KeepRefused {
		t.Errorf("/decisions shows %d refused holds, the engine counted %d refusals", refusedIn, st.KeepRefused)
	}
	for _, r := range s.d.engine.Records() {
		if _, gone := r.Unreachable["tokyo"]; gone {
			t.Errorf("round %d: tokyo given up at step %v", r.Round, r.Unreachable["tokyo"])
		}
		for _, res := range r.Results {
			if res.DC == "tokyo" && res.Error != "" {
				t.Errorf("round %d: tokyo's step 4: %s", r.Round, res.Error)
			}
		}
	}
}

// policy.rise reaches the round engine of a running daemon: with bars no
// load reaches (stepRise and fastRise of 100 instance capacities per
// round) no round flags a stage noRise or fast, so tokyo's rolled-back
// local controller refuses nothing for them, where the defaults flag
// stages and it refuses some (TestDaemonStageHoldLocalRolledBack).
func TestDaemonRisePolicyFromConfig(t *testing.T) {
	s := runStageHoldWith(t, 0, true, func(c *Config) {
		c.Policy.Rise = &RiseConfig{StepRise: 100, FastRise: 100}
	})
	flagged := 0
	for _, r := range s.d.engine.Records() {
		for _, dd := range r.Decision {
			for _, tg := range dd.Targets {
				if tg.NoRise || tg.Fast {
					flagged++
					t.Errorf("round %d: %s/%s flagged noRise %v fast %v with stepRise and fastRise 100", r.Round, dd.DC, tg.VNF, tg.NoRise, tg.Fast)
				}
			}
		}
	}
	if len(s.d.engine.Records()) < 8 {
		t.Fatalf("%d rounds recorded: the scenario did not run", len(s.d.engine.Records()))
	}
	st := s.d.engine.Stats()
	if st.RiseRefused != 0 {
		t.Errorf("engine counted %d refusals of noRise/fast, want none (no flag sent)", st.RiseRefused)
	}
	if v := metricValue(t, scrape(t, s.d.URL()), "ims_orch_rise_refused_total"); v != 0 {
		t.Errorf("/metrics: ims_orch_rise_refused_total %g, want 0", v)
	}
}
