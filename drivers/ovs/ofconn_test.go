package ovs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// fakeSwitch is the switch side of an OpenFlow connection (a pipe): it
// answers hello, bundle open, barrier and commit, refuses a flow mod of
// table 99, and records the flow mods' tables. onCommit, when set,
// replaces the commit's answer (a lost answer: close the connection).
// fullTable, when set, fails the commit as ovs-vswitchd does when a flow
// mod of that table finds it full: the flow mod's error (its xid), then
// the commit's BUNDLE_FAILED.
type fakeSwitch struct {
	mu       sync.Mutex
	dials    int
	tables   []uint8
	commands []uint8
	echoed   chan uint32
	onCommit func(c net.Conn)
	// onBarrier, when set, replaces the barrier's answer (before the
	// commit)
	onBarrier func(c net.Conn)
	// fullTable: the table whose flow mods fail at commit (0: none)
	fullTable uint8
	addXids   map[uint32]uint8 // the bundle's flow mods' xids: their tables
	conns     []net.Conn
}

func (f *fakeSwitch) dial(_ context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	f.mu.Lock()
	f.dials++
	f.conns = append(f.conns, b)
	f.mu.Unlock()
	go f.serve(b)
	return a, nil
}

func (f *fakeSwitch) serve(c net.Conn) {
	defer c.Close()
	reply := func(typ uint8, xid uint32, body []byte) bool {
		_, err := c.Write(message(typ, xid, body))
		return err == nil
	}
	for {
		m, err := readMessage(c)
		if err != nil {
			return
		}
		xid := binary.BigEndian.Uint32(m[4:])
		ok := true
		switch m[1] {
		case ofptHello:
			ok = reply(ofptHello, xid, nil)
		case ofptEchoReply:
			f.echoed <- xid
		case ofptBarrierRequest:
			if f.onBarrier != nil {
				f.onBarrier(c)
				return
			}
			ok = reply(ofptBarrierReply, xid, nil)
		case ofptBundleAdd:
			inner := m[16:]
			table := inner[8+16]
			f.mu.Lock()
			f.tables = append(f.tables, table)
			f.commands = append(f.commands, inner[8+17])
			if f.addXids == nil {
				f.addXids = map[uint32]uint8{}
			}
			f.addXids[xid] = table
			f.mu.Unlock()
			if table == 99 {
				ok = reply(ofptError, xid, []byte{0, 5, 0, 1}) // FLOW_MOD_FAILED
			}
		case ofptBundleControl:
			typ := binary.BigEndian.Uint16(m[12:])
			if typ == bundleCommitRequest && f.onCommit != nil {
				f.onCommit(c)
				return
			}
			if typ == bundleCommitRequest && f.fullTable != 0 {
				failed := false
				for x, table := range f.addXids {
					if table == f.fullTable {
						failed = true
						ok = ok && reply(ofptError, x, []byte{0, 5, 0, 1}) // FLOW_MOD_FAILED TABLE_FULL
					}
				}
				if failed {
					ok = ok && reply(ofptError, xid, []byte{0, 17, 0, 13}) // BUNDLE_FAILED MSG_FAILED
					f.addXids = nil
					break
				}
			}
			f.addXids = nil
			body := append([]byte(nil), m[8:]...)
			binary.BigEndian.PutUint16(body[4:], typ+1) // the request's reply
			ok = reply(ofptBundleControl, xid, body)
		}
		if !ok {
			return
		}
	}
}

func testConn(t *testing.T) (*ofConn, *fakeSwitch) {
	f := &fakeSwitch{echoed: make(chan uint32, 1)}
	o := newOfConn("unix:/nonexistent/br.mgmt")
	o.dial = f.dial
	t.Cleanup(o.close)
	return o, f
}

// fakeConnSwitch is a Switch (bridge md0, no switch behind ovs-ofctl)
// whose OpenFlow connection goes to a fakeSwitch.
func fakeConnSwitch(t *testing.T) (*Switch, *fakeSwitch) {
	sw := (&Daemon{cfg: Config{Prefix: "m", Dir: t.TempDir()}}).NewSwitch("md0")
	t.Cleanup(sw.Close)
	f := &fakeSwitch{echoed: make(chan uint32, 1)}
	sw.conn = newOfConn("unix:/nonexistent/md0.mgmt")
	sw.conn.dial = f.dial
	return sw, f
}

func encoded(t *testing.T, lines ...string) []flowMod {
	t.Helper()
	fms, err := encodeBundle(lines)
	if err != nil {
		t.Fatal(err)
	}
	return fms
}

// A bundle commits over one connection, the next uses the same one, and
// between bundles the connection answers the switch's echo requests (an
// unanswered echo makes ovs-vswitchd close it).
func TestConnBundleCommitsAndAnswersEchoes(t *testing.T) {
	o, f := testConn(t)
	ctx := context.Background()
	lines := []string{"add table=1,priority=1,reg0=1,cookie=0x1,actions=output:2", "delete_strict table=2,priority=3,reg3=0x1"}
	for range 2 {
		if err := o.bundle(ctx, encoded(t, lines...), lines); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	dials, tables, sw := f.dials, f.tables, f.conns[0]
	f.mu.Unlock()
	if dials != 1 || len(tables) != 4 || tables[0] != 1 || tables[1] != 2 {
		t.Fatalf("%d dials, tables %v: want one connection, the flow mods in order", dials, tables)
	}
	if _, err := sw.Write(message(ofptEchoRequest, 777, []byte("ping"))); err != nil {
		t.Fatal(err)
	}
	if x := <-f.echoed; x != 777 {
		t.Fatalf("echo reply xid %d", x)
	}
}

// A refused flow mod fails the bundle with an error naming its line, and
// the bundle is discarded, not committed.
func TestConnRefusedRuleIsNamedAndDiscarded(t *testing.T) {
	o, f := testConn(t)
	f.onCommit = func(net.Conn) { panic("a bundle with a refused rule was committed") }
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop", "add table=99,priority=1,reg0=2,actions=output:3"}
	err := o.bundle(context.Background(), encoded(t, lines...), lines)
	if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "FLOW_MOD_FAILED") || !strings.Contains(err.Error(), lines[1]) ||
		strings.Contains(err.Error(), lines[0]) {
		t.Fatalf("%v: want a refusal naming the second line", err)
	}
}

// A flow mod that fails at commit (a full table: ovs-vswitchd checks it
// only then) fails the bundle with an error naming its line, as ovs-ofctl
// names it, besides the commit's BUNDLE_FAILED.
func TestConnCommitFailureNamesTheRule(t *testing.T) {
	o, f := testConn(t)
	f.fullTable = 7
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop", "add table=7,priority=3,reg1=0x3,actions=output:3", "delete_strict table=2,priority=3,reg3=0x1"}
	err := o.bundle(context.Background(), encoded(t, lines...), lines)
	if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "BUNDLE_FAILED") ||
		!strings.Contains(err.Error(), "FLOW_MOD_FAILED code 1: "+lines[1]) || strings.Contains(err.Error(), lines[0]) || strings.Contains(err.Error(), lines[2]) {
		t.Fatalf("%v: want the commit's refusal naming the second line", err)
	}
	// the connection goes on
	f.fullTable = 0
	if err := o.bundle(context.Background(), encoded(t, lines...), lines); err != nil || f.dials != 1 {
		t.Fatalf("%v, %d dials: want the next bundle committed on the same connection", err, f.dials)
	}
}

// A Switch whose bundles fall back from the connection to ovs-ofctl
// says so to its ReportTo once per cause (lines the encoder does not
// know; the connection not there), not once per bundle.
func TestSwitchReportsAFallBackOncePerCause(t *testing.T) {
	sw, _ := fakeConnSwitch(t)
	var reports []string
	sw.ReportTo(func(err error) { reports = append(reports, err.Error()) })
	ctx := context.Background()
	rule := Flow{Table: 1, Priority: 5, Cookie: CookieStatic, Match: "reg0=1", Actions: "output:3"}
	if _, err := sw.Apply(ctx, []Flow{rule}); err != nil || len(reports) != 0 {
		t.Fatalf("%v, reports %q: want the rule over the connection, nothing reported", err, reports)
	}
	// the fallbacks' ovs-ofctl fails (no switch): only the reports count
	for i := range 2 {
		learn := Flow{Table: 2, Priority: 5, Cookie: CookieStatic, Match: fmt.Sprintf("reg0=%d", i+2), Actions: "learn(table=3,NXM_NX_REG0[])"}
		_, _ = sw.Apply(ctx, []Flow{rule, learn})
	}
	if len(reports) != 1 || !strings.Contains(reports[0], "md0: a bundle went through ovs-ofctl") || !strings.Contains(reports[0], "learn(") {
		t.Fatalf("reports %q: want one naming the unsupported action", reports)
	}
	sw.conn.close()
	for i := range 2 {
		_, _ = sw.Apply(ctx, []Flow{{Table: 1, Priority: 6, Cookie: CookieStatic, Match: fmt.Sprintf("reg0=%d", i+9), Actions: "drop"}})
	}
	if len(reports) != 2 || !strings.Contains(reports[1], "not sent") {
		t.Fatalf("reports %q: want a second one, for the bundles not sent", reports)
	}
	if p := sw.BundlePaths(); p.Unsupported != 2 || p.NotSent != 2 || p.Conn != 1 {
		t.Fatalf("bundle paths %+v", p)
	}
}

// A closed connection does not dial again: a later bundle is not sent
// (its Switch runs ovs-ofctl) and leaves no connection or reader behind.
func TestConnClosedDoesNotRedial(t *testing.T) {
	o, f := testConn(t)
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop"}
	if err := o.bundle(context.Background(), encoded(t, lines...), lines); err != nil {
		t.Fatal(err)
	}
	o.close()
	err := o.bundle(context.Background(), encoded(t, lines...), lines)
	f.mu.Lock()
	dials := f.dials
	f.mu.Unlock()
	if !errors.Is(err, errNotSent) || dials != 1 || o.c != nil {
		t.Fatalf("%v, %d dials: want not sent and no new connection after close", err, dials)
	}
}

// The connection lost after the commit went out: the outcome is unknown
// (neither not-sent nor refused: the Switch marks the rules dirty), and
// the next bundle dials again.
func TestConnLostAnswerIsUnknownAndRedials(t *testing.T) {
	o, f := testConn(t)
	f.onCommit = func(c net.Conn) { _ = c.Close() }
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop"}
	err := o.bundle(context.Background(), encoded(t, lines...), lines)
	if err == nil || errors.Is(err, errNotSent) || errors.Is(err, errRefused) || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("%v: want an unknown outcome", err)
	}
	f.onCommit = nil
	if err := o.bundle(context.Background(), encoded(t, lines...), lines); err != nil {
		t.Fatal(err)
	}
	if f.dials != 2 {
		t.Fatalf("%d dials, want 2", f.dials)
	}
}

// A caller that stops while the answer is awaited gets an unknown
// outcome; no connection (dial fails) is not-sent (ovs-ofctl may run it).
func TestConnStoppedAndNotSent(t *testing.T) {
	o, f := testConn(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.onCommit = func(c net.Conn) { cancel(); _, _ = readMessage(c) } // the answer never comes
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop"}
	err := o.bundle(ctx, encoded(t, lines...), lines)
	if !errors.Is(err, context.Canceled) || errors.Is(err, errNotSent) || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("%v: want an unknown outcome", err)
	}
	o.dial = func(context.Context) (net.Conn, error) { return nil, errors.New("connection refused") }
	if err := o.bundle(context.Background(), encoded(t, lines...), lines); !errors.Is(err, errNotSent) {
		t.Fatalf("%v: want not sent", err)
	}
}

// A Switch whose bundle over the connection lost its answer (the
// connection broke after the commit went out) marks the bundle's rules
// dirty, and its next bundle rewrites them (delete, then add); one the
// switch refused changed nothing and leaves nothing dirty.
func TestSwitchOverTheConnectionMarksALostAnswerDirty(t *testing.T) {
	sw, f := fakeConnSwitch(t)
	ctx := context.Background()
	rule := Flow{Table: 1, Priority: 5, Cookie: CookieStatic, Match: "reg0=1", Actions: "output:3"}
	f.onCommit = func(c net.Conn) { _ = c.Close() }
	if _, err := sw.Apply(ctx, []Flow{rule}); !errors.Is(err, errOutcomeUnknown) {
		t.Fatalf("%v: want an unknown outcome", err)
	}
	if !sw.dirty[rule.Key()] {
		t.Fatalf("dirty %v: want the rule of the lost bundle", sw.dirty)
	}
	f.onCommit = nil
	f.commands = nil
	if _, err := sw.Apply(ctx, []Flow{rule}); err != nil {
		t.Fatal(err)
	}
	if got := f.commands; len(got) != 2 || got[0] != ofpfcDeleteStrict || got[1] != ofpfcAdd || len(sw.dirty) != 0 {
		t.Fatalf("flow mods %v, dirty %v: want the rule rewritten (delete_strict, add) and nothing dirty", got, sw.dirty)
	}
	refused := Flow{Table: 99, Priority: 5, Cookie: CookieStatic, Match: "reg0=2", Actions: "output:3"}
	if _, err := sw.Apply(ctx, []Flow{rule, refused}); !errors.Is(err, errRefused) {
		t.Fatalf("%v: want a refusal", err)
	}
	if len(sw.dirty) != 0 {
		t.Fatalf("dirty %v after a refused bundle: want nothing", sw.dirty)
	}
	if p := sw.BundlePaths(); p.Conn != 3 || p.Ofctl != 0 {
		t.Fatalf("bundle paths %+v", p)
	}
}

// An answer the reader handed over before the connection broke (or the
// caller stopped) is the bundle's answer, not an unknown outcome (revOF
// F7): nextLocked's select, with the answer and the end both ready,
// picks either at random, so each case is tried many times (without the
// fix, 64 tries all taking the answer has a chance of 2^-64).
func TestConnAnswerBeforeTheEndIsNotLost(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		dead bool
	}{{"connection closed", context.Background(), true}, {"caller stopped", ended, false}} {
		for i := range 64 {
			a, b := net.Pipe()
			o := newOfConn("unix:/nonexistent/br.mgmt")
			o.c, o.dead = a, make(chan struct{})
			if tc.dead {
				close(o.dead)
			} else {
				go func(dead chan struct{}) { // a's reader: ends when a is closed
					_, _ = a.Read(make([]byte, 1))
					close(dead)
				}(o.dead)
			}
			w := &ofWaiter{first: 1, last: 3, ch: make(chan []byte, 1)}
			w.ch <- message(ofptBarrierReply, 3, nil)
			m, err := o.nextLocked(tc.ctx, w, true)
			if err != nil || m[1] != ofptBarrierReply {
				t.Fatalf("%s, try %d: %v: want the answer already received", tc.name, i, err)
			}
			o.close()
			_ = b.Close()
		}
	}
}

// A bundle whose wait ends before its commit was written (the connection
// lost, or the caller stopped, while the barrier is awaited) changed
// nothing: ovs-vswitchd discards a connection's open bundles with it. It
// is not sent (revOF F6), not an unknown outcome; its Switch does not mark
// its rules dirty (before: rewritten, counters reset, for nothing) and,
// its caller still there, runs it through ovs-ofctl.
func TestConnLostBeforeTheCommitIsNotSent(t *testing.T) {
	lines := []string{"add table=1,priority=1,reg0=1,actions=drop"}
	o, f := testConn(t)
	f.onCommit = func(net.Conn) { panic("committed") }
	f.onBarrier = func(c net.Conn) { _ = c.Close() }
	if err := o.bundle(context.Background(), encoded(t, lines...), lines); !errors.Is(err, errNotSent) || errors.Is(err, errOutcomeUnknown) {
		t.Fatalf("connection lost at the barrier: %v; want not sent", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.onBarrier = func(c net.Conn) { cancel(); _, _ = readMessage(c) } // the answer never comes
	if err := o.bundle(ctx, encoded(t, lines...), lines); !errors.Is(err, errNotSent) || errors.Is(err, errOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("caller stopped at the barrier: %v; want not sent", err)
	}

	sw, f := fakeConnSwitch(t)
	rule := Flow{Table: 1, Priority: 5, Cookie: CookieStatic, Match: "reg0=1", Actions: "output:3"}
	f.onCommit = func(net.Conn) { panic("committed") }
	f.onBarrier = func(c net.Conn) { _ = c.Close() }
	// the fallback's ovs-ofctl fails (no switch behind md0): nothing changed
	if _, err := sw.Apply(context.Background(), []Flow{rule}); err == nil || len(sw.dirty) != 0 {
		t.Fatalf("%v, dirty %v: want the fallback's failure, nothing dirty", err, sw.dirty)
	}
	ctx, cancel = context.WithCancel(context.Background())
	f.onBarrier = func(c net.Conn) { cancel(); _, _ = readMessage(c) }
	if _, err := sw.Apply(ctx, []Flow{rule}); !errors.Is(err, errNotSent) || len(sw.dirty) != 0 {
		t.Fatalf("%v, dirty %v: want not sent, nothing dirty", err, sw.dirty)
	}
	if p := sw.BundlePaths(); p.NotSent != 2 || p.Ofctl != 1 || p.Conn != 0 {
		t.Fatalf("bundle paths %+v: want 2 not sent, the first through ovs-ofctl", p)
	}
}
