package ovs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// modelBridge is a model of one bridge's rule counters for unit tests of
// the pair accounting, as Open vSwitch keeps them: a packet sent through an
// installed rule is credited to that rule and, when its actions resubmit to
// a counter rule (CountPair), to that one too, each once; the credit
// reaches the rules' counters only at the next flush (the revalidator pulls
// the datapath's stats). A flush after a bundle first translates each
// pending credit's packets again against the rules then installed (the
// revalidator rebuilds a datapath flow's xcache when the tables changed,
// then pushes the stats it had not pulled to the new one: ofproto-dpif-
// upcall.c revalidate_ukey): a credit whose entry rule was deleted goes to
// the miss rule (missed), one whose rule was replaced goes to the new rule
// and its pair. It answers the ovs-ofctl commands Switch runs: a bundle
// (add, modify_strict, delete_strict, delete) and dump-flows with a cookie
// filter.
type modelBridge struct {
	rules   map[string]*modelRule // by Flow.Key
	pending []credit
	// seq counts bundles (Open vSwitch's reval_seq)
	seq uint64
	// missed: packets credited to table 1's miss rule; window: per pair,
	// packets a bundle took from their entry rule before a flush credited
	// them (each once)
	missed uint64
	window map[Pair]uint64
	// dumps: dump-flows runs; runs: every ovs-ofctl run
	dumps, runs int
}

type modelRule struct {
	f       Flow
	packets uint64
}

// credit is n packets of the datapath flow key (an entry rule's
// identity), translated at bundle seq to rules.
type credit struct {
	key      string
	seq      uint64
	rules    []*modelRule
	n        uint64
	windowed bool
}

func newModelBridge() *modelBridge {
	return &modelBridge{rules: map[string]*modelRule{}, window: map[Pair]uint64{}}
}

// translate returns the rules a packet of key goes through: the rule at
// key and the counter rule it resubmits to; none for a miss.
func (m *modelBridge) translate(key string) []*modelRule {
	r, ok := m.rules[key]
	if !ok {
		return nil
	}
	rs := []*modelRule{r}
	if sub := resubmitRE.FindStringSubmatch(r.f.Actions); sub != nil {
		if pc, ok := m.rules[fmt.Sprintf("table=%s,priority=100,%s=%s", sub[3], pairReg, sub[1])]; ok && sub[2] == pairReg {
			rs = append(rs, pc)
		}
	}
	return rs
}

// send credits n packets of key to the rules of their translation (the
// rule at key and its pair's counter rule, resubmitted to) at the next
// flush; a key with no rule is a miss.
func (m *modelBridge) send(key string, n uint64) {
	m.pending = append(m.pending, credit{key: key, seq: m.seq, rules: m.translate(key), n: n})
}

var resubmitRE = regexp.MustCompile(`^set_field:(0x[0-9a-f]+)->(reg\d+),resubmit\(,(\d+)\)`)

// flush credits every pending packet to the rules it went through,
// translated again when a bundle ran since (none: the miss rule).
func (m *modelBridge) flush() {
	for _, c := range m.pending {
		if c.seq != m.seq {
			c.rules = m.translate(c.key)
		}
		if len(c.rules) == 0 {
			m.missed += c.n
		}
		for _, r := range c.rules {
			r.packets += c.n
		}
	}
	m.pending = nil
}

// bundled notes, after a bundle, the pending packets whose entry rule it
// deleted or replaced: they are credited elsewhere (window).
func (m *modelBridge) bundled() {
	m.seq++
	for i := range m.pending {
		c := &m.pending[i]
		if c.windowed || len(c.rules) == 0 || m.rules[c.key] == c.rules[0] {
			continue
		}
		if p, ok := PairOf(c.rules[0].f.Cookie); ok {
			m.window[p] += c.n
		}
		c.windowed = true
	}
}

func (m *modelBridge) ofctl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err // as exec.CommandContext: not started
	}
	m.runs++
	switch {
	case slices.Contains(args, "--bundle"):
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			cmd, rest, _ := strings.Cut(sc.Text(), " ")
			switch cmd {
			case "delete":
				if rest == "" {
					clear(m.rules)
				} // learned rules towards a port: none in the model
			case "delete_strict":
				delete(m.rules, rest)
			case "add":
				f := parseFlow(rest)
				m.rules[f.Key()] = &modelRule{f: f}
			case "modify_strict":
				f := parseFlow(rest)
				if r, ok := m.rules[f.Key()]; ok {
					r.f.Actions = f.Actions // the cookie and the counters stay
				} else {
					m.rules[f.Key()] = &modelRule{f: f}
				}
			default:
				return "", fmt.Errorf("model: bundle line %q", sc.Text())
			}
		}
		m.bundled()
		return "", nil
	case slices.Contains(args, "dump-flows"):
		m.dumps++
		var kind uint64
		table := -1
		f := args[len(args)-1]
		if t, rest, ok := strings.Cut(f, ","); ok && strings.HasPrefix(t, "table=") {
			fmt.Sscanf(t, "table=%d", &table)
			f = rest
		}
		if strings.HasPrefix(f, "cookie=") {
			fmt.Sscanf(f, "cookie=%v/", &kind)
		}
		var b strings.Builder
		for _, r := range m.rules {
			if (kind == 0 || r.f.Cookie&cookieKindMask == kind) && (table < 0 || int(r.f.Table) == table) {
				fmt.Fprintf(&b, " cookie=%#x, duration=1s, table=%d, n_packets=%d, n_bytes=%d, %s actions=%s\n",
					r.f.Cookie, r.f.Table, r.packets, 100*r.packets, r.f.Match, r.f.Actions)
			}
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("model: ovs-ofctl %v", args)
}

// modelSwitch is a Switch on model bridge m, its delayed deletes on a
// virtual clock (advanced by the test alone).
func modelSwitch(t testing.TB, m *modelBridge) (*Switch, *clock.Virtual) {
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sw := (&Daemon{cfg: Config{Prefix: "m", Dir: t.TempDir(), Clock: clk}}).NewSwitch("md0")
	sw.ofctl = m.ofctl
	return sw, clk
}

// parseFlow reads Flow.String back.
func parseFlow(s string) Flow {
	i := strings.LastIndex(s, ",cookie=")
	key, rest := s[:i], s[i+len(",cookie="):]
	ck, acts, _ := strings.Cut(rest, ",actions=")
	f := Flow{Match: strings.SplitN(key, ",", 3)[2], Actions: acts}
	fmt.Sscanf(ck, "%v", &f.Cookie)
	fmt.Sscanf(key, "table=%d,priority=%d,", &f.Table, &f.Priority)
	return f
}

// Calls start and end (each with a media 5-tuple of its own, or taking a
// 5-tuple over from an earlier call: a new cookie, maybe another pair),
// some flows still send after their call's end, their packets reach the
// counters late (the revalidator's lag: a flush at least once per
// revalidator period of the virtual clock) and the pair counters are read
// now and then (the DP meter's period), in a random but seeded order. No
// rule update of calls runs a counter read (one ovs-ofctl run, the
// bundle), and the increases PairPackets reported are the packets each
// pair's entry rules matched within the documented bound (cookie.go,
// docs/dataplane.md "Pair counters"): a call's end keeps its rule as
// count-then-drop until the delayed delete, so no packet goes to table 1's
// miss rule; only a takeover's window (the packets the switch had not
// credited when a newer call's rule replaced the older one) goes to the
// new rule's pair, so a pair counts at least its packets less its window
// and at most that plus the other pairs' windows, and every packet is
// counted once (none lost by the Switch's bookkeeping, none counted
// twice). A pair that leaves the rule set and comes back counts again
// from 0. Every tombstone is gone at the end. Before (session 15), a
// call's end deleted its entry rule: the window of every still-sending
// flow's end went to the miss rule (missed 4429 here).
func TestPairCountsWithinTheUnpulledWindowAcrossRuleUpdates(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	pairs := []Pair{{0, 0}, {0, 1}, {0, 2}}
	counters := map[Pair]bool{}
	for _, p := range pairs {
		counters[p] = true
	}
	type call struct {
		key   string // the entry rule's identity (its 5-tuple)
		match string
		pair  Pair
	}
	var open []call
	var serial uint32
	cookies := map[string]uint64{} // the cookie each open call's rule has
	type endedCall struct {
		call
		cookie uint64
	}
	var ended []endedCall
	// the cost: ovs-ofctl runs of the delayed deletes, revalidator
	// periods, the most tombstones alive at once
	var sweeps, periods, maxTombs int
	want := func() []Flow {
		var fs []Flow
		for _, p := range pairs {
			if counters[p] {
				fs = append(fs, PairCounter(p))
			}
		}
		for _, c := range open {
			fs = append(fs, Flow{Table: 1, Priority: 200, Cookie: cookies[c.match], Match: c.match, Actions: CountPair(c.pair, "output:10")})
		}
		return fs
	}
	sent := map[Pair]uint64{}    // packets the entry rules matched
	counted := map[Pair]uint64{} // increases PairPackets reported
	var last map[Pair]uint64
	read := func() {
		got, err := sw.PairPackets()
		if err != nil {
			t.Fatalf("PairPackets: %v", err)
		}
		for p, v := range got {
			if v < last[p] {
				t.Fatalf("pair %v went back from %d to %d", p, last[p], v)
			}
			counted[p] += v - last[p]
		}
		last = got
	}
	apply := func(what string) {
		t.Helper()
		runs, dumps := m.runs, m.dumps
		if _, err := sw.Apply(ctx, want()); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if m.dumps != dumps || m.runs-runs > 1 {
			t.Fatalf("%s: the rule update ran %d ovs-ofctl, %d of them dump-flows; want the bundle alone", what, m.runs-runs, m.dumps-dumps)
		}
	}
	// a pair's packets, sent while its entry rule is installed
	sendOn := func(c call, n uint64) {
		m.send(c.key, n)
		sent[c.pair] += n
	}
	apply("the counters")
	rng := rand.New(rand.NewPCG(14, 1))
	for step := range 4000 {
		switch r := rng.IntN(100); {
		case r < 25 || len(open) == 0: // a call with a 5-tuple of its own
			c := call{pair: pairs[rng.IntN(len(pairs))], match: fmt.Sprintf("udp,reg0=1,nw_src=10.0.0.1,tp_src=%d", 10000+step)}
			if !counters[c.pair] {
				continue
			}
			c.key = "table=1,priority=200," + c.match
			serial++
			cookies[c.match] = EntryCookie(c.pair, serial)
			open = append(open, c)
			apply("a call's start")
		case r < 45: // a call ends
			i := rng.IntN(len(open))
			ended = append(ended, endedCall{open[i], cookies[open[i].match]})
			open = slices.Delete(open, i, i+1)
			apply("a call's end")
			maxTombs = max(maxTombs, sw.Tombstones())
		case r < 52: // a newer call takes a 5-tuple over (a new cookie; maybe another pair)
			i := rng.IntN(len(open))
			pr := pairs[rng.IntN(len(pairs))]
			if !counters[pr] {
				continue
			}
			serial++
			open[i].pair, cookies[open[i].match] = pr, EntryCookie(pr, serial)
			apply("a takeover")
		case r < 72:
			c := open[rng.IntN(len(open))]
			sendOn(c, uint64(1+rng.IntN(20)))
		case r < 80: // a flow still sending after its call's end, at the entry switch
			if len(ended) == 0 {
				continue
			}
			c := ended[rng.IntN(len(ended))]
			if r, ok := m.rules[c.key]; ok && r.f.Cookie == c.cookie {
				sendOn(c.call, uint64(1+rng.IntN(20)))
			}
		case r < 90:
			m.flush()
			if r < 86 { // a revalidator period passes (each pulls first)
				runs := m.runs
				clk.Advance(100 * time.Millisecond)
				sweeps += m.runs - runs
				periods++
			}
		case r < 97:
			read()
		default: // a pair leaves the rule set (its calls end first) or comes back
			p := pairs[1+rng.IntN(len(pairs)-1)]
			if counters[p] {
				open = slices.DeleteFunc(open, func(c call) bool { return c.pair == p })
				apply("a pair's calls end")
				m.flush() // its packets are on its counter before it goes
				counters[p] = false
				if _, err := sw.Apply(ctx, want()); err != nil {
					t.Fatal(err)
				}
			} else {
				counters[p] = true
				apply("a pair's counter back")
			}
		}
	}
	m.flush()
	clk.Advance(time.Second) // every delayed delete runs
	read()
	var allSent, allCounted, allWindow uint64
	for _, p := range pairs {
		allSent, allCounted, allWindow = allSent+sent[p], allCounted+counted[p], allWindow+m.window[p]
	}
	if allWindow == 0 {
		t.Fatalf("no packet was in a takeover's window (%v): the test does not exercise the bound", m.window)
	}
	if m.missed != 0 {
		t.Errorf("%d packets the entry rules matched went to the miss rule (a call's end); want 0", m.missed)
	}
	if allCounted+m.missed != allSent {
		t.Errorf("the pairs counted %d packets and the miss rule %d, the entry rules matched %d", allCounted, m.missed, allSent)
	}
	for _, p := range pairs {
		lo, hi := sent[p]-m.window[p], sent[p]+allWindow-m.window[p]
		if counted[p] < lo || counted[p] > hi {
			t.Errorf("pair %v: PairPackets counted %d packets, its entry rules matched %d (window %d): want %d..%d", p, counted[p], sent[p], m.window[p], lo, hi)
		}
	}
	entries := 0
	for _, r := range m.rules {
		if _, ok := PairOf(r.f.Cookie); ok {
			entries++
		}
	}
	if entries != len(open) || sw.Tombstones() != 0 {
		t.Errorf("%d entry rules on the switch and %d tombstones after the delayed deletes, want the %d open calls' rules alone", entries, sw.Tombstones(), len(open))
	}
	t.Logf("sent %v counted %v window %v missed %d", sent, counted, m.window, m.missed)
	t.Logf("cost: %d call ends, %d delayed-delete ovs-ofctl runs over %d revalidator periods, at most %d tombstones alive", len(ended), sweeps, periods, maxTombs)
}

// The DP meter's read (PairPackets) runs its dump-flows without the
// Switch's rule lock: a rule update (a call's open, with the P-CSCF's
// /start waiting for it) goes ahead while the dump is in flight, and the
// read then counts what the dump saw; a counter rule that changed meanwhile
// makes the read dump again rather than fold a dump that missed it. Before
// (revO H1), PairPackets held the lock across its dump, so an update waited
// for a whole ovs-ofctl run (≈ 0.5 s at load) behind the meter.
func TestRuleUpdateDoesNotWaitForTheMetersRead(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, g := gatedSwitch(t, m)
	a, b := Pair{0, 1}, Pair{0, 2}
	e := func(p Pair, serial uint32, port int) Flow {
		return Flow{Table: 1, Priority: 200, Cookie: EntryCookie(p, serial), Match: fmt.Sprintf("udp,tp_src=%d", port), Actions: CountPair(p, "output:10")}
	}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e(a, 1, 6000)}); err != nil {
		t.Fatal(err)
	}
	m.send("table=1,priority=200,udp,tp_src=6000", 5)
	m.flush()
	ch, release := g.readInFlight(sw)
	if !sw.mu.TryLock() {
		t.Fatal("PairPackets holds the Switch's rule lock while its dump runs: a rule update would wait for it")
	}
	sw.mu.Unlock()
	// a call's end and another's start while the dump is in flight
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e(a, 2, 6002)}); err != nil {
		t.Fatal(err)
	}
	release()
	if r := <-ch; r.err != nil || r.got[a] != 5 {
		t.Fatalf("PairPackets %v %v, want 0→1: 5", r.got, r.err)
	}
	// a counter rule added while the dump runs: the dump missed it, the
	// read dumps again (folded, the missing rule would read as died)
	ch, release = g.readInFlight(sw)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), PairCounter(b), e(b, 3, 6004)}); err != nil {
		t.Fatal(err)
	}
	m.send("table=1,priority=200,udp,tp_src=6004", 7)
	m.flush()
	release()
	if r := <-ch; r.err != nil || r.got[a] != 5 || r.got[b] != 7 {
		t.Fatalf("PairPackets %v %v, want 0→1: 5, 0→2: 7 and no loss", r.got, r.err)
	}
}

// ovs-vswitchd restarted (its rules and their counts died with it): the
// first read after the restart answers ErrCountsLost (the span that lost
// the packets is the missing one), the Reset that installs the rules again
// reads first and loses nothing more, and the next read's span, complete,
// is counted. Before (revO M1), the read after the restart answered the
// counts as good (a low rate for the crash's span), and Reset marked the
// next, complete span lost.
func TestCountsLostInARestartAreTheRestartsSpan(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, _ := modelSwitch(t, m)
	a := Pair{0, 1}
	entry := Flow{Table: 1, Priority: 200, Cookie: EntryCookie(a, 1), Match: "udp,tp_src=6000", Actions: CountPair(a, "output:10")}
	rules := []Flow{PairCounter(a), entry}
	if _, err := sw.Apply(ctx, rules); err != nil {
		t.Fatal(err)
	}
	key := entry.Key()
	pairs := func(when string, want uint64, wantErr error) {
		t.Helper()
		m.flush()
		got, err := sw.PairPackets()
		if err != wantErr || got[a] != want {
			t.Fatalf("%s: PairPackets %v %v, want 0→1: %d, error %v", when, got, err, want, wantErr)
		}
	}
	m.send(key, 3)
	pairs("before", 3, nil)
	m.send(key, 2)
	m.flush()
	clear(m.rules) // ovs-vswitchd restarted: no rule, no count
	pairs("the first read after the restart", 3, ErrCountsLost)
	if err := sw.Reset(ctx, rules); err != nil {
		t.Fatal(err)
	}
	m.send(key, 4)
	pairs("after the Reset", 7, nil)
	// a restart with no read before the Reset: its read reports it
	m.send(key, 1)
	m.flush()
	clear(m.rules)
	if err := sw.Reset(ctx, rules); err != nil {
		t.Fatal(err)
	}
	m.send(key, 6)
	pairs("a Reset right after a restart", 13, ErrCountsLost)
	m.send(key, 2)
	pairs("after that", 15, nil)
}

// The meter's read dumps the pair counter rules' table alone (revC M1's
// NIT: a cookie mask alone made ovs-vswitchd walk and format every table's
// matching rules; docs/dataplane.md says "of table 2").
func TestPairCountsDumpThePairTableOnly(t *testing.T) {
	var dumps [][]string
	sw, _ := modelSwitch(t, newModelBridge())
	sw.ofctl = func(_ context.Context, _ io.Reader, args ...string) (string, error) {
		dumps = append(dumps, args)
		return "", nil
	}
	if _, err := sw.PairPackets(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("table=%d,cookie=%#x/%#x", PairTable, CookiePair, cookieKindMask)
	if len(dumps) != 1 || !slices.Contains(dumps[0], "dump-flows") || dumps[0][len(dumps[0])-1] != want {
		t.Fatalf("ovs-ofctl runs %q, want one dump-flows of %s", dumps, want)
	}
}

// A rule update that deletes a counter rule reads the counters first (under
// the rule lock) and its bundle then fails, while the meter's dump, taken
// before that read, is in flight: the read folds the newer counts, so the
// older dump must not be folded after it (it would count less than the
// last read: a spurious ErrCountsLost, and the next read would add the
// difference again). The counts are 12, with no loss, now and at the next
// read. Before (revC L1), only a change of the counter rules made the
// dump read again: 12 with ErrCountsLost, then 19.
func TestAStaleDumpIsNotFoldedAfterANewerRead(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, g := gatedSwitch(t, m)
	a, b := Pair{0, 1}, Pair{0, 2}
	entry := Flow{Table: 1, Priority: 200, Cookie: EntryCookie(a, 1), Match: "udp,tp_src=6000", Actions: CountPair(a, "output:10")}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), PairCounter(b), entry}); err != nil {
		t.Fatal(err)
	}
	m.send(entry.Key(), 5)
	m.flush()
	ch, release := g.readInFlight(sw) // the dump saw 0→1: 5
	m.send(entry.Key(), 7)
	m.flush()
	// b's counter rule goes: read first (0→1: 12), then the bundle fails
	g.failBundle = true
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), entry}); err == nil {
		t.Fatal("the failing bundle: want an error")
	}
	g.failBundle = false
	release()
	if r := <-ch; r.err != nil || r.got[a] != 12 {
		t.Fatalf("the read in flight: PairPackets %v %v, want 0→1: 12 and no loss", r.got, r.err)
	}
	if got, err := sw.PairPackets(); err != nil || got[a] != 12 {
		t.Fatalf("the next read: PairPackets %v %v, want 0→1: 12", got, err)
	}
}

// dumpGate answers a Switch's ovs-ofctl from a model bridge and can hold
// a dump-flows after the switch answered (readInFlight) or fail bundles.
type dumpGate struct {
	m                 *modelBridge
	block, failBundle bool
	entered, release  chan struct{}
}

type pairsAnswer struct {
	got map[Pair]uint64
	err error
}

// gatedSwitch is a Switch on model bridge m through a dumpGate.
func gatedSwitch(t *testing.T, m *modelBridge) (*Switch, *dumpGate) {
	g := &dumpGate{m: m}
	sw, _ := modelSwitch(t, m)
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		if g.failBundle && slices.Contains(args, "--bundle") {
			return "", fmt.Errorf("model: the bundle fails")
		}
		out, err := m.ofctl(ctx, stdin, args...)
		if g.block && slices.Contains(args, "dump-flows") {
			// the switch answered; the answer is on its way
			g.block = false
			close(g.entered)
			<-g.release
		}
		return out, err
	}
	return sw, g
}

// readInFlight starts a PairPackets whose dump is held after the switch
// answered, until release; its answer comes on the channel.
func (g *dumpGate) readInFlight(sw *Switch) (<-chan pairsAnswer, func()) {
	g.entered, g.release = make(chan struct{}), make(chan struct{})
	g.block = true
	ch := make(chan pairsAnswer, 1)
	go func() {
		got, err := sw.PairPackets()
		ch <- pairsAnswer{got, err}
	}()
	<-g.entered
	release := g.release
	return ch, func() { close(release) }
}
