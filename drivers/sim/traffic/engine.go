package traffic

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// DefaultCallDuration is a call's media time when Config.CallDuration is 0.
const DefaultCallDuration = 60 * time.Second

// Flow is one direction of a call's media as the Router sees it.
type Flow struct {
	ID   uint64 // 2·Call + Dir
	Call uint64
	// Dir is 0 for caller → callee, 1 for callee → caller.
	Dir int
	// Entry and Exit are the DC indices the flow enters and leaves the chain at.
	Entry, Exit int
	// Rate is the packet rate (packets/s).
	Rate float64
	At   time.Time
}

// Hop is the instance a flow uses for one DP stage.
type Hop struct {
	DC       int
	Instance string
}

// Router decides a new flow's DP instances, one Hop per stage in chain
// order; an error drops the flow (counted). The flow keeps these instances
// for its life (pinned, as OpenFlow rules would pin it). Release is called
// once when a routed flow ends.
type Router interface {
	Route(f Flow) ([]Hop, error)
	Release(f Flow, hops []Hop)
}

// CPBalancer lists the instances of a CP VNF that take new transactions in
// a DC (the DNS view of paper 4.4); nil in Config means every active
// instance of the cloud.
type CPBalancer interface {
	CPInstances(dc int, vnf string) []string
}

// PairLoad is the workload of one entry → exit DC pair.
type PairLoad struct {
	Entry, Exit int
	Rate        float64 // CP: SIP transactions/s; DP: packets/s
}

// WorkloadSink receives what the S-CSCFs and entry DCs measure per pair
// (paper 4.2 step 1): CP every CPReportEvery (transactions/s averaged over
// the window), DP every second (offered packets/s). Pairs with no load are
// left out; the slices are sorted by (Entry, Exit) and not reused.
type WorkloadSink interface {
	CPWorkload(at time.Time, loads []PairLoad)
	DPWorkload(at time.Time, loads []PairLoad)
}

// Config configures an Engine. Zero values take the defaults in brackets.
type Config struct {
	Cloud    *sim.Cloud
	Delays   *sim.Delays
	Schedule *Schedule
	Router   Router
	Seed     uint64
	// Start is the experiment start [the clock's time at New]; the engine
	// ticks at Start+1 s, Start+2 s, … up to Start+Duration.
	Start    time.Time
	Duration time.Duration
	// ArrivalsUntil stops user arrivals after this offset [Duration].
	ArrivalsUntil time.Duration
	// SCSCFDC is the S-CSCF datacenter index.
	SCSCFDC int
	// PCSCF and SCSCF are the CP VNF names ["P-CSCF", "S-CSCF"].
	PCSCF, SCSCF string
	// Chain is the DP chain [firewall, ids, transcoder].
	Chain []string
	// CallDuration is the media time of a call [DefaultCallDuration].
	CallDuration time.Duration
	// MediaKbps is the bit rate each way [80]; PacketBytes the packet size
	// with RTP/UDP/IP headers [200: 160 B of G.711 20 ms payload + 40 B],
	// so a flow is MediaKbps·1000/8/PacketBytes = 50 packets/s.
	MediaKbps   float64
	PacketBytes float64
	// Pairing is how users are paired [FirstComeFirstMatch].
	Pairing Pairing
	// CPReportEvery is the CP workload report period [5 s].
	CPReportEvery time.Duration
	CPBalancer    CPBalancer
	Workload      WorkloadSink
	// FlowLog, if set, gets one CSV line per finished flow (see FlowLogHeader).
	FlowLog io.Writer
}

// SIP transactions per call and where they go.
const (
	// TxRegister: one REGISTER per user, on arrival: P-CSCF(user DC) → S-CSCF,
	// counted on pair (user DC, user DC).
	TxRegister = 1
	// TxInvite and TxBye: per call, P-CSCF(caller) → S-CSCF → P-CSCF(callee),
	// counted on pair (caller DC, callee DC).
	TxInvite = 1
	TxBye    = 1
)

type flow struct {
	Flow
	units []*sim.Unit // nil: dropped
	hops  []Hop
	path  []int // entry, stage DCs, exit
	// per-second scratch
	surv, queue, oneway float64
	// life totals
	pkts, lost, rttSum float64
	rttN               int
}

type call struct {
	id             uint64
	caller, callee int
	end            time.Time
	flows          [2]*flow
}

type user struct {
	dc int
	at float64 // seconds since start
}

// Engine is the traffic generator and fluid data/control-plane model.
type Engine struct {
	clk   clock.Clock
	cfg   Config
	n, m  int
	rngs  []*rand.Rand
	chain []sim.VNFType
	rate  float64 // packets/s per flow

	timer   clock.Timer
	tick    int
	last    int
	done    bool
	stopped bool

	waiting []user
	nextID  uint64
	calls   []*call // active, in start order (= end order)
	head    int

	// per-second scratch, indexed by Unit.Index()
	acc     []float64
	cnt     []int
	perf    []sim.Perf
	touched []*sim.Unit

	cpWin     []float64 // n×n transaction counts in the current CP window
	cpWinSecs int

	rec *Recorder
}

// New validates cfg and returns an engine; Start schedules it on clk.
func New(clk clock.Clock, cfg Config) (*Engine, error) {
	switch {
	case clk == nil:
		return nil, fmt.Errorf("traffic: clock: must not be nil")
	case cfg.Cloud == nil:
		return nil, fmt.Errorf("traffic: config cloud: must not be nil")
	case cfg.Delays == nil:
		return nil, fmt.Errorf("traffic: config delays: must not be nil")
	case cfg.Schedule == nil:
		return nil, fmt.Errorf("traffic: config schedule: must not be nil")
	case cfg.Router == nil:
		return nil, fmt.Errorf("traffic: config router: must not be nil")
	}
	n := len(cfg.Cloud.DCs())
	if cfg.Delays.N() != n {
		return nil, fmt.Errorf("traffic: config delays: %d datacenters, the cloud has %d", cfg.Delays.N(), n)
	}
	if err := cfg.Schedule.Validate(n); err != nil {
		return nil, err
	}
	if cfg.Start.IsZero() {
		cfg.Start = clk.Now()
	}
	if cfg.Duration < time.Second {
		return nil, fmt.Errorf("traffic: config duration %v: must be at least 1s", cfg.Duration)
	}
	if cfg.ArrivalsUntil <= 0 || cfg.ArrivalsUntil > cfg.Duration {
		cfg.ArrivalsUntil = cfg.Duration
	}
	if cfg.SCSCFDC < 0 || cfg.SCSCFDC >= n {
		return nil, fmt.Errorf("traffic: config scscfDC %d: not a datacenter index (0..%d)", cfg.SCSCFDC, n-1)
	}
	if cfg.PCSCF == "" {
		cfg.PCSCF = vnf.PCSCF
	}
	if cfg.SCSCF == "" {
		cfg.SCSCF = vnf.SCSCF
	}
	if cfg.Chain == nil {
		cfg.Chain = vnf.DataPlaneChain()
	}
	if cfg.CallDuration == 0 {
		cfg.CallDuration = DefaultCallDuration
	}
	if cfg.MediaKbps == 0 {
		cfg.MediaKbps = 80
	}
	if cfg.PacketBytes == 0 {
		cfg.PacketBytes = 200
	}
	if cfg.Pairing == "" {
		cfg.Pairing = FirstComeFirstMatch
	}
	if cfg.Pairing != FirstComeFirstMatch && cfg.Pairing != CrossDC {
		return nil, fmt.Errorf("traffic: config pairing %q: must be %q or %q", cfg.Pairing, FirstComeFirstMatch, CrossDC)
	}
	if cfg.CPReportEvery == 0 {
		cfg.CPReportEvery = 5 * time.Second
	}
	switch {
	case cfg.CallDuration < time.Second || cfg.CallDuration%time.Second != 0:
		return nil, fmt.Errorf("traffic: config callDuration %v: must be a whole number of seconds ≥ 1s", cfg.CallDuration)
	case cfg.CPReportEvery < time.Second || cfg.CPReportEvery%time.Second != 0:
		return nil, fmt.Errorf("traffic: config cpReportEvery %v: must be a whole number of seconds ≥ 1s", cfg.CPReportEvery)
	case !(cfg.MediaKbps > 0) || math.IsInf(cfg.MediaKbps, 0):
		return nil, fmt.Errorf("traffic: config mediaKbps %v: must be a finite number > 0", cfg.MediaKbps)
	case !(cfg.PacketBytes > 0) || math.IsInf(cfg.PacketBytes, 0):
		return nil, fmt.Errorf("traffic: config packetBytes %v: must be a finite number > 0", cfg.PacketBytes)
	}
	cat := cfg.Cloud.Catalog()
	for _, f := range []struct {
		name, v string
		want    vnf.Plane
	}{{"Config.PCSCF", cfg.PCSCF, vnf.ControlPlane}, {"Config.SCSCF", cfg.SCSCF, vnf.ControlPlane}} {
		t, ok := cat.Lookup(f.v)
		if !ok || t.Plane != f.want {
			return nil, fmt.Errorf("traffic: %s %q: not a control-plane VNF of the catalog", f.name, f.v)
		}
	}
	e := &Engine{clk: clk, cfg: cfg, n: n, m: len(cfg.Chain)}
	if e.m == 0 {
		return nil, fmt.Errorf("traffic: config chain: at least one stage is needed")
	}
	for i, name := range cfg.Chain {
		t, ok := cat.Lookup(name)
		if !ok || t.Plane != vnf.DataPlane {
			return nil, fmt.Errorf("traffic: config chain[%d] %q: not a data-plane VNF of the catalog", i, name)
		}
		for _, prev := range e.chain {
			if vnf.Same(prev.Name, t.Name) {
				return nil, fmt.Errorf("traffic: config chain[%d] %q: duplicate stage", i, name)
			}
		}
		e.chain = append(e.chain, t)
	}
	e.rate = cfg.MediaKbps * 1000 / 8 / cfg.PacketBytes
	for dc := 0; dc < n; dc++ {
		e.rngs = append(e.rngs, rand.New(rand.NewPCG(cfg.Seed, uint64(dc)*0x9E3779B97F4A7C15+1)))
	}
	e.last = int(cfg.Duration / time.Second)
	e.cpWin = make([]float64, n*n)
	e.rec = newRecorder(cfg.Start, cfg.Cloud.DCs(), cfg.FlowLog)
	return e, nil
}

// PacketRate is the packet rate of one flow (packets/s).
func (e *Engine) PacketRate() float64 { return e.rate }

// Recorder returns the results (complete once Done).
func (e *Engine) Recorder() *Recorder { return e.rec }

// Done reports whether the engine ran its last second.
func (e *Engine) Done() bool { return e.done }

// Start schedules the first second at Start+1s on the clock.
func (e *Engine) Start() {
	e.schedule()
}

// Stop cancels the next second; the results so far stay available.
func (e *Engine) Stop() {
	e.stopped = true
	if e.timer != nil {
		e.timer.Stop()
	}
}

func (e *Engine) schedule() {
	at := e.cfg.Start.Add(time.Duration(e.tick+1) * time.Second)
	e.timer = e.clk.AfterFunc(at.Sub(e.clk.Now()), e.step)
}

func (e *Engine) step() {
	if e.stopped || e.done {
		return
	}
	e.tick++
	at := e.cfg.Start.Add(time.Duration(e.tick) * time.Second)
	e.second(at)
	if e.tick >= e.last {
		e.finish(at)
		return
	}
	e.schedule()
}

// poisson draws a Poisson(lambda) count (Knuth's product method on chunks
// of at most 30, which sum to an exact Poisson).
func poisson(r *rand.Rand, lambda float64) int {
	n := 0
	for lambda > 0 {
		l := math.Min(lambda, 30)
		lambda -= l
		limit := math.Exp(-l)
		p := r.Float64()
		for p > limit {
			n++
			p *= r.Float64()
		}
	}
	return n
}

// Pairing is how users are paired into calls.
type Pairing string

// Pairings.
const (
	// FirstComeFirstMatch pairs each user with the user waiting, if any
	// (paper 6.1): at most one user waits at a time.
	FirstComeFirstMatch Pairing = "fcfm"
	// CrossDC pairs each user with the earliest waiting user of another DC
	// (for the interval-consistency experiment of 6.3.2, calls between DC 0
	// and DC 1 only). At most MaxWaiting users wait; beyond that the
	// earliest one gives up (counted in Recorder.Abandoned).
	CrossDC Pairing = "cross-dc"
)

// MaxWaiting bounds the users waiting for a CrossDC partner.
const MaxWaiting = 10000

// pairUsers pairs users in arrival order: each user is paired with a
// waiting user (who becomes the caller) or waits. FCFM takes the user
// waiting whatever its DC; CrossDC the earliest one of another DC. It
// returns the pairs (caller, callee), the users left waiting and how many
// gave up.
func pairUsers(mode Pairing, waiting []user, users []user) (pairs [][2]user, left []user, abandoned int) {
	for _, u := range users {
		k := -1
		for i := range waiting {
			if mode != CrossDC || waiting[i].dc != u.dc {
				k = i
				break
			}
		}
		if k < 0 {
			waiting = append(waiting, u)
			if len(waiting) > MaxWaiting {
				waiting = waiting[1:]
				abandoned++
			}
			continue
		}
		pairs = append(pairs, [2]user{waiting[k], u})
		waiting = append(waiting[:k], waiting[k+1:]...)
	}
	return pairs, waiting, abandoned
}

// cp holds one second's CP transactions.
type cpSecond struct {
	pc   []float64 // P-CSCF transactions per DC
	sc   float64
	reg  []float64 // REGISTERs per DC
	call []float64 // INVITE+BYE per (caller, callee)
}

func (e *Engine) second(at time.Time) {
	sec := e.tick
	off := time.Duration(sec-1) * time.Second // the second (off, off+1s]
	row := Second{T: sec}
	cps := cpSecond{pc: make([]float64, e.n), reg: make([]float64, e.n), call: make([]float64, e.n*e.n)}

	// 1. Arrivals, REGISTER, pairing.
	var users []user
	if off < e.cfg.ArrivalsUntil {
		for dc := 0; dc < e.n; dc++ {
			k := poisson(e.rngs[dc], e.cfg.Schedule.Rate(dc, off))
			for i := 0; i < k; i++ {
				users = append(users, user{dc: dc, at: float64(sec-1) + e.rngs[dc].Float64()})
			}
		}
	}
	slices.SortStableFunc(users, func(a, b user) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return a.dc - b.dc
	})
	row.Arrivals = len(users)
	var newCalls []*call
	for _, u := range users {
		cps.reg[u.dc] += TxRegister
		e.cpWin[u.dc*e.n+u.dc] += TxRegister
	}
	var pairs [][2]user
	var abandoned int
	pairs, e.waiting, abandoned = pairUsers(e.cfg.Pairing, e.waiting, users)
	e.rec.Abandoned += abandoned
	for _, p := range pairs {
		newCalls = append(newCalls, &call{id: e.nextID, caller: p[0].dc, callee: p[1].dc, end: at.Add(e.cfg.CallDuration)})
		e.nextID++
	}

	// 2. Calls that end: BYE, release.
	for e.head < len(e.calls) && !e.calls[e.head].end.After(at) {
		c := e.calls[e.head]
		e.calls[e.head] = nil
		e.head++
		cps.call[c.caller*e.n+c.callee] += TxBye
		e.cpWin[c.caller*e.n+c.callee] += TxBye
		for _, f := range c.flows {
			e.finishFlow(f, false)
		}
	}
	if e.head > 1024 && e.head*2 > len(e.calls) {
		e.calls = append(e.calls[:0], e.calls[e.head:]...)
		e.head = 0
	}

	// 3. New calls: INVITE, route both flows.
	for _, c := range newCalls {
		cps.call[c.caller*e.n+c.callee] += TxInvite
		e.cpWin[c.caller*e.n+c.callee] += TxInvite
		e.startCall(c, at, &row)
	}
	row.Calls = len(e.calls) - e.head

	// 4a. Control plane.
	e.controlPlane(at, &cps, &row)
	// 4b. Data plane.
	e.dataPlane(at, &row)

	// 5. Workload reports and agents.
	if w := e.cfg.Workload; w != nil {
		w.DPWorkload(at, e.dpPairs())
	}
	e.cpWinSecs++
	if e.cpWinSecs >= int(e.cfg.CPReportEvery/time.Second) {
		loads := e.pairLoads(e.cpWin, float64(e.cpWinSecs))
		clear(e.cpWin)
		e.cpWinSecs = 0
		if w := e.cfg.Workload; w != nil {
			w.CPWorkload(at, loads)
		}
	}
	totals, sinkErrs := e.cfg.Cloud.Report(at)
	row.SinkErrors = sinkErrs
	e.rec.addSecond(row, totals)
}

// startCall routes both media flows of a new call and makes it active.
func (e *Engine) startCall(c *call, at time.Time, row *Second) {
	for dir := 0; dir < 2; dir++ {
		entry, exit := c.caller, c.callee
		if dir == 1 {
			entry, exit = exit, entry
		}
		f := &flow{Flow: Flow{ID: 2*c.id + uint64(dir), Call: c.id, Dir: dir, Entry: entry, Exit: exit, Rate: e.rate, At: at}}
		e.route(f, row)
		c.flows[dir] = f
	}
	e.calls = append(e.calls, c)
}

func (e *Engine) route(f *flow, row *Second) {
	row.NewFlows++
	e.rec.FlowsTotal++
	hops, err := e.cfg.Router.Route(f.Flow)
	if err == nil {
		err = e.check(f, hops)
	}
	if err != nil {
		row.DroppedFlows++
		e.rec.FlowsDropped++
		e.rec.dropReasons[err.Error()]++
		return
	}
	f.hops = slices.Clone(hops)
	f.path = make([]int, 0, e.m+2)
	f.path = append(f.path, f.Entry)
	for _, h := range hops {
		f.path = append(f.path, h.DC)
	}
	f.path = append(f.path, f.Exit)
}

// check resolves the hops to instances; an error names the problem (it is
// counted as a drop reason, so it carries no flow ids).
func (e *Engine) check(f *flow, hops []Hop) error {
	if len(hops) != e.m {
		return fmt.Errorf("route has %d hops, the chain %d stages", len(hops), e.m)
	}
	units := make([]*sim.Unit, e.m)
	for s, h := range hops {
		u, ok := e.cfg.Cloud.Unit(h.Instance)
		switch {
		case !ok:
			return fmt.Errorf("stage %d: unknown instance", s+1)
		case u.DC() != h.DC:
			return fmt.Errorf("stage %d: instance in another DC", s+1)
		case u.Key() != e.chain[s].Key():
			return fmt.Errorf("stage %d: instance of another VNF", s+1)
		}
		units[s] = u
	}
	f.units = units
	return nil
}

func (e *Engine) finishFlow(f *flow, truncated bool) {
	if f.units != nil {
		e.cfg.Router.Release(f.Flow, f.hops)
	}
	e.rec.addFlow(f, truncated)
}

func (e *Engine) cpUnits(dc int, vnf string) []*sim.Unit {
	if e.cfg.CPBalancer == nil {
		return e.cfg.Cloud.Active(dc, vnf)
	}
	var out []*sim.Unit
	for _, id := range e.cfg.CPBalancer.CPInstances(dc, vnf) {
		if u, ok := e.cfg.Cloud.Unit(id); ok {
			out = append(out, u)
		}
	}
	return out
}

// loadCP spreads tx transactions/s evenly over the instances and returns
// the mean queueing delay and loss (loss 1 when there is no instance).
func (e *Engine) loadCP(units []*sim.Unit, tx float64) (queueMs, loss float64) {
	if len(units) == 0 {
		if tx > 0 {
			return 0, 1
		}
		return 0, 0
	}
	share := tx / float64(len(units))
	for _, u := range units {
		p := e.cfg.Cloud.SetLoad(u, share, int(math.Round(share)))
		queueMs += p.QueueMs
		loss += p.Loss
	}
	k := float64(len(units))
	return queueMs / k, loss / k
}

func (e *Engine) controlPlane(at time.Time, cps *cpSecond, row *Second) {
	s := e.cfg.SCSCFDC
	for dc := 0; dc < e.n; dc++ {
		cps.pc[dc] += cps.reg[dc]
		cps.sc += cps.reg[dc]
		for b := 0; b < e.n; b++ {
			x := cps.call[dc*e.n+b]
			cps.pc[dc] += x
			cps.pc[b] += x
			cps.sc += x
		}
	}
	wP := make([]float64, e.n)
	lP := make([]float64, e.n)
	for dc := 0; dc < e.n; dc++ {
		wP[dc], lP[dc] = e.loadCP(e.cpUnits(dc, e.cfg.PCSCF), cps.pc[dc])
	}
	wS, lS := e.loadCP(e.cpUnits(s, e.cfg.SCSCF), cps.sc)
	D := e.cfg.Delays.Matrix(at)
	h := &e.rec.secSIP
	h.Reset()
	add := func(count, ms, ok float64) {
		row.CPTx += count
		row.CPFailed += count * (1 - ok)
		h.Add(ms, count*ok)
		e.rec.SIP.Add(ms, count*ok)
	}
	for a := 0; a < e.n; a++ {
		if x := cps.reg[a]; x > 0 {
			add(x, 2*D[a][s]+2*(wP[a]+wS), (1-lP[a])*(1-lS))
		}
		for b := 0; b < e.n; b++ {
			if x := cps.call[a*e.n+b]; x > 0 {
				add(x, 2*(D[a][s]+D[s][b])+2*(wP[a]+wS+wP[b]), (1-lP[a])*(1-lS)*(1-lP[b]))
			}
		}
	}
	e.rec.CPTx += row.CPTx
	e.rec.CPFailed += row.CPFailed
	row.SIPMeanMs, row.SIPP95Ms = h.Mean(), h.Quantile(0.95)
}

func (e *Engine) grow(idx int) {
	for len(e.acc) <= idx {
		e.acc = append(e.acc, 0)
		e.cnt = append(e.cnt, 0)
		e.perf = append(e.perf, sim.Perf{})
	}
}

func (e *Engine) dataPlane(at time.Time, row *Second) {
	active := e.calls[e.head:]
	for _, c := range active {
		for _, f := range c.flows {
			f.surv, f.queue = 0, 0
			if f.units != nil {
				f.surv = f.Rate
			}
		}
	}
	for s := 0; s < e.m; s++ {
		e.touched = e.touched[:0]
		for _, c := range active {
			for _, f := range c.flows {
				if f.units == nil {
					continue
				}
				u := f.units[s]
				i := u.Index()
				e.grow(i)
				if e.cnt[i] == 0 {
					e.touched = append(e.touched, u)
				}
				e.acc[i] += f.surv
				e.cnt[i]++
			}
		}
		for _, u := range e.touched {
			i := u.Index()
			e.perf[i] = e.cfg.Cloud.SetLoad(u, e.acc[i], e.cnt[i])
			e.acc[i], e.cnt[i] = 0, 0
		}
		for _, c := range active {
			for _, f := range c.flows {
				if f.units == nil {
					continue
				}
				p := e.perf[f.units[s].Index()]
				f.surv *= 1 - p.Loss
				f.queue += p.QueueMs
			}
		}
	}
	D := e.cfg.Delays.Matrix(at)
	h := &e.rec.secRTT
	h.Reset()
	for _, c := range active {
		for _, f := range c.flows {
			f.pkts += f.Rate
			row.DPOffered += f.Rate
			lost := f.Rate - f.surv
			f.lost += lost
			row.DPLost += lost
			if f.units == nil {
				continue
			}
			row.Flows++
			d := 0.0
			for k := 1; k < len(f.path); k++ {
				d += D[f.path[k-1]][f.path[k]]
			}
			f.oneway = d + f.queue
		}
		for dir, f := range c.flows {
			o := c.flows[1-dir]
			if f.units == nil || o.units == nil || !(f.surv > 0) || !(o.surv > 0) {
				continue // no packet made the round trip this second
			}
			rtt := f.oneway + o.oneway
			f.rttSum += rtt
			f.rttN++
			h.Add(rtt, 1)
		}
	}
	if row.DPOffered > 0 {
		row.DPLoss = row.DPLost / row.DPOffered
	}
	row.RTTMeanMs, row.RTTP50Ms, row.RTTP95Ms = h.Mean(), h.Quantile(0.5), h.Quantile(0.95)
	e.rec.DPOffered += row.DPOffered
	e.rec.DPLost += row.DPLost
}

func (e *Engine) dpPairs() []PairLoad {
	m := make([]float64, e.n*e.n)
	for _, c := range e.calls[e.head:] {
		for _, f := range c.flows {
			m[f.Entry*e.n+f.Exit] += f.Rate
		}
	}
	return e.pairLoads(m, 1)
}

func (e *Engine) pairLoads(m []float64, secs float64) []PairLoad {
	var out []PairLoad
	for a := 0; a < e.n; a++ {
		for b := 0; b < e.n; b++ {
			if x := m[a*e.n+b]; x > 0 {
				out = append(out, PairLoad{Entry: a, Exit: b, Rate: x / secs})
			}
		}
	}
	return out
}

func (e *Engine) finish(at time.Time) {
	for _, c := range e.calls[e.head:] {
		for _, f := range c.flows {
			e.finishFlow(f, true)
		}
	}
	e.calls, e.head = nil, 0
	e.done = true
	e.rec.End = at
	if err := e.rec.Flush(); err != nil {
		e.rec.flowLogErr = err
	}
}
