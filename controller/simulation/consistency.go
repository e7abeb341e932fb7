package simulation

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement"
)

// ConsistencyConfig is the scaling-interval consistency experiment of paper
// 6.3.2, run on the routing tables alone (controller/routing): the paper's
// global controller alternates the paths of 0→1 and 1→0 every interval
// between (0,0,0,1,1)/(1,1,1,0,0) and (0,2,2,2,1)/(1,2,2,2,0), which the
// real planner would never do, so this experiment pushes the path sets
// itself, exactly as step 4 (StoreNext) and step 5 (Enter) would.
type ConsistencyConfig struct {
	// CallsPerSecond between DC 0 and DC 1 (Poisson) [15]; each call has a
	// flow each way.
	CallsPerSecond float64
	Duration       time.Duration // [5 min]
	Interval       time.Duration // [50 s]
	// DelayMs is the one-way delay between DCs 0–1 [10] and between DC 2
	// and DCs 0/1 [400].
	Delay01Ms, Delay2Ms float64
	// EnterSkew: each DC receives "enter new interval" at the boundary plus
	// a uniform random delay in [0, EnterSkew) [1 s: two re-sends of 500 ms].
	EnterSkew time.Duration
	// IgnoreTag is the untagged baseline (routing.Config.IgnoreIntervalTag).
	IgnoreTag bool
	Seed      uint64
}

// ConsistencyResult counts the flows.
type ConsistencyResult struct {
	Flows, Dropped int
	Reasons        map[string]int
}

func (c *ConsistencyConfig) defaults() error {
	if c.CallsPerSecond == 0 {
		c.CallsPerSecond = 15
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Minute
	}
	if c.Interval == 0 {
		c.Interval = 50 * time.Second
	}
	if c.Delay01Ms == 0 {
		c.Delay01Ms = 10
	}
	if c.Delay2Ms == 0 {
		c.Delay2Ms = 400
	}
	if c.EnterSkew == 0 {
		c.EnterSkew = time.Second
	}
	switch {
	case !(c.CallsPerSecond > 0) || c.CallsPerSecond > 1e4:
		return fmt.Errorf("consistency: calls per second %g: must be in (0, 10000]", c.CallsPerSecond)
	case c.Duration < time.Second || c.Duration > MaxDuration:
		return fmt.Errorf("consistency: duration %v: must be in [1s, %v]", c.Duration, MaxDuration)
	case c.Interval < 10*time.Second:
		return fmt.Errorf("consistency: interval %v: must be ≥ 10s", c.Interval)
	case c.EnterSkew < 0 || c.EnterSkew >= c.Interval/4:
		return fmt.Errorf("consistency: enter skew %v: must be in [0, interval/4)", c.EnterSkew)
	case !(c.Delay01Ms >= 0) || !(c.Delay2Ms >= 0) || math.IsInf(c.Delay01Ms+c.Delay2Ms, 0):
		return fmt.Errorf("consistency: delays must be finite and ≥ 0")
	}
	return nil
}

// RunConsistency runs the 6.3.2 experiment in virtual time: flows are
// routed hop by hop, each datacenter deciding when the flow's first packet
// reaches it (entry time + link delays), while the datacenters enter each
// new interval at slightly different times.
func RunConsistency(cfg ConsistencyConfig) (*ConsistencyResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	const n, m = 3, 3
	setA := map[placement.Pair]placement.Path{
		{Entry: 0, Exit: 1}: {0, 0, 0, 1, 1}, {Entry: 1, Exit: 0}: {1, 1, 1, 0, 0},
	}
	setB := map[placement.Pair]placement.Path{
		{Entry: 0, Exit: 1}: {0, 2, 2, 2, 1}, {Entry: 1, Exit: 0}: {1, 2, 2, 2, 0},
	}
	paths := func(iv uint64) map[placement.Pair]placement.Path {
		if iv%2 == 0 {
			return setA
		}
		return setB
	}
	delay := func(a, b int) time.Duration {
		ms := cfg.Delay01Ms
		if a == 2 || b == 2 {
			ms = cfg.Delay2Ms
		}
		return time.Duration(ms * float64(time.Millisecond))
	}
	clk := clock.NewVirtual(time.Unix(1_700_000_000, 0).UTC())
	start := clk.Now()
	tables := make([]*routing.Table, n)
	for d := range tables {
		t, err := routing.NewTable(routing.Config{DC: d, N: n, Stages: m, Paths: setA, IgnoreIntervalTag: cfg.IgnoreTag})
		if err != nil {
			return nil, err
		}
		for s := 1; s <= m; s++ {
			if err := t.SetInstances(s, []routing.InstanceLoad{{Index: n}}); err != nil {
				return nil, err
			}
		}
		tables[d] = t
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6332))
	res := &ConsistencyResult{Reasons: map[string]int{}}
	var errs []error

	// Interval boundaries: step 4 a few seconds before, step 5 at the
	// boundary plus each DC's skew.
	for k := uint64(1); time.Duration(k)*cfg.Interval < cfg.Duration; k++ {
		b := time.Duration(k) * cfg.Interval
		next := paths(k)
		for d := range tables {
			t := tables[d]
			clk.AfterFunc(b-5*time.Second, func() {
				if err := t.StoreNext(k, next); err != nil {
					errs = append(errs, err)
				}
			})
			skew := time.Duration(rng.Int64N(int64(cfg.EnterSkew) + 1))
			clk.AfterFunc(b+skew, func() {
				if err := t.Enter(k); err != nil {
					errs = append(errs, err)
				}
			})
		}
	}

	// Calls: Poisson arrivals; a flow each way, routed hop by hop.
	var callID uint32
	var route func(dir int, c routing.Call, p routing.Packet, dc int, hops int)
	route = func(dir int, c routing.Call, p routing.Packet, dc int, hops int) {
		d := tables[dc].Route(p)
		if d.Verdict != routing.Forward {
			res.Dropped++
			res.Reasons[d.Reason.String()]++
			return
		}
		if d.Exit || hops > m+2 {
			return
		}
		p.From, p.DstIP, p.DstPort = routing.FromTunnel, d.DstIP, d.DstPort
		clk.AfterFunc(delay(dc, d.Next), func() { route(dir, c, p, d.Next, hops+1) })
	}
	t := 0.0
	end := cfg.Duration.Seconds()
	for {
		t += rng.ExpFloat64() / cfg.CallsPerSecond
		if t >= end {
			break
		}
		at := time.Duration(t * float64(time.Second))
		id := callID
		callID++
		clk.AfterFunc(at, func() {
			caller, callee := int(id%2), int(1-id%2)
			ip := (2 * id) & userMask
			c := routing.Call{CallerDC: caller, CalleeDC: callee,
				CallerIP: routing.IPv4(userNet + ip), CalleeIP: routing.IPv4(userNet + (ip+1)&userMask),
				CallerSendPort: callerSend, CallerRecvPort: callerRecv, CalleeSendPort: calleeSend, CalleeRecvPort: calleeRecv,
				CallerEntryIP: entryIP(caller), CalleeEntryIP: entryIP(callee)}
			for _, d := range []int{caller, callee} {
				if err := tables[d].AddCall(c); err != nil {
					errs = append(errs, err)
				}
			}
			for dir := 0; dir < 2; dir++ {
				src, port, entry := c.CallerIP, uint16(callerSend), caller
				if dir == 1 {
					src, port, entry = c.CalleeIP, calleeSend, callee
				}
				res.Flows++
				route(dir, c, routing.Packet{From: routing.FromUser, Proto: udp, SrcIP: src, SrcPort: port,
					DstIP: entryIP(entry), DstPort: mediaEntryPort, Load: 1}, entry, 0)
			}
			// the mappings outlive the flows' set-up (a 60 s call)
			clk.AfterFunc(60*time.Second, func() {
				tables[caller].RemoveCall(c)
				tables[callee].RemoveCall(c)
			})
		})
	}
	clk.RunUntil(start.Add(cfg.Duration + 2*time.Minute))
	if len(errs) > 0 {
		return nil, fmt.Errorf("consistency: %d routing errors, first: %w", len(errs), errs[0])
	}
	return res, nil
}
