package ovs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// Flow is one OpenFlow rule in ovs-ofctl syntax. Table, Priority and Match
// identify it (OpenFlow's strict identity); Cookie and Actions are its
// content.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    string // e.g. "udp,reg0=0x2,nw_src=10.200.0.1"; "" matches everything
	Actions  string // e.g. "output:3"; "drop" drops
}

// Key is the rule's identity within a bridge.
func (f Flow) Key() string {
	return fmt.Sprintf("table=%d,priority=%d,%s", f.Table, f.Priority, f.Match)
}

func (f Flow) String() string {
	return fmt.Sprintf("%s,cookie=%#x,actions=%s", f.Key(), f.Cookie, f.Actions)
}

// Changes counts what one Apply did. Conflicts counts the rules of the
// desired set that Resolve dropped (another rule with their identity came
// later). Added, Modified, Deleted and Unchanged compare the set with the
// rules the Switch knows to be on the switch: a rule whose state a killed
// bundle left unknown (dirty, below) and the set keeps is rewritten and
// counts as Added; one the set lacks is deleted uncounted. A dirty pair
// counter rule is settled by a read instead (rewritten only when that read
// fails). No caller uses these four counts but for logs and tests.
type Changes struct {
	Added, Modified, Deleted, Unchanged int
	Conflicts                           int
	// CountsUnread is the error of the pair-counter read that failed just
	// before the bundle ended pair counter rules (PairCounter; deleted or
	// replaced: their pair left the rule set; entry rules end no count):
	// the rules were applied anyway, the packets those rules counted since
	// the last read are lost, and the next PairPackets says so
	// (ErrCountsLost). Nil normally.
	CountsUnread error
	// CountsRead: the update read the pair counters first and the read
	// succeeded (a counter rule ended; CountsUnread nil).
	CountsRead bool
}

// Conflict is two rules of one desired set with one identity (Key) and
// different cookies or actions: the switch can hold one of them only.
// Resolve keeps the later one.
type Conflict struct {
	Kept, Dropped Flow
}

func (c Conflict) String() string {
	return fmt.Sprintf("two rules with identity %s: kept cookie=%#x,actions=%s; dropped cookie=%#x,actions=%s",
		c.Kept.Key(), c.Kept.Cookie, c.Kept.Actions, c.Dropped.Cookie, c.Dropped.Actions)
}

// Resolve returns want with one rule per identity (pure): of rules with one
// identity the last one in want is kept, in the place of the first; each
// earlier one whose cookie or actions differ is a Conflict (an identical
// copy is dropped silently). A conflict costs the dropped rule only, never
// the rest of the set. want is not modified.
func Resolve(want []Flow) ([]Flow, []Conflict) {
	out, _, cs := resolve(want)
	return out, cs
}

// resolve is Resolve, with the rules by identity too (each rule's Key
// made once: an Apply keys its set here alone).
func resolve(want []Flow) ([]Flow, map[string]Flow, []Conflict) {
	out := make([]Flow, 0, len(want))
	keys := make([]string, 0, len(want))
	at := make(map[string]int, len(want))
	var cs []Conflict
	for _, f := range want {
		k := f.Key()
		i, dup := at[k]
		if !dup {
			at[k] = len(out)
			out = append(out, f)
			keys = append(keys, k)
			continue
		}
		if g := out[i]; g != f {
			cs = append(cs, Conflict{Kept: f, Dropped: g})
		}
		out[i] = f
	}
	idx := make(map[string]Flow, len(out))
	for i, f := range out {
		idx[keys[i]] = f
	}
	return out, idx, cs
}

// keyed returns the rules by identity.
func keyed(fs []Flow) map[string]Flow {
	idx := make(map[string]Flow, len(fs))
	for _, f := range fs {
		idx[f.Key()] = f
	}
	return idx
}

// Switch is the OpenFlow side of one bridge: it remembers the rules it
// installed and applies a new desired set as a difference in one bundle.
// Rules the switch learned itself (the learn action) are not in that set and
// are never touched by Apply. Safe for concurrent use.
type Switch struct {
	d      *Daemon
	bridge string
	mu     sync.Mutex
	have   map[string]Flow
	// pair counters: per pair counter rule the Switch installed, the
	// packets last read (0 when installed), and the cumulative total of
	// every pair; readGen counts the changes of the installed
	// counter rules and the reads folded under mu (a PairPackets dump
	// that ran across either is read again: folded after a newer read,
	// its lower counts would read as a restart and count twice); readMu
	// makes PairPackets calls take turns (its dump runs without mu)
	seen    map[uint64]uint64
	pairs   map[Pair]uint64
	readGen uint64
	readMu  sync.Mutex
	// lost: counters ended unread since the last PairPackets (Apply's or
	// Reset's read failed, or a counter rule died with ovs-vswitchd);
	// rebase: a Reset whose outcome is unknown may have made every counter
	// rule again at 0, so the next read takes the counts as their new base
	// (adds nothing) and sets lost
	lost   bool
	rebase bool
	// readCounts reads the counters of the rules of a cookie kind (nil:
	// Counts; tests fail it)
	readCounts func(ctx context.Context, kind uint64) ([]FlowCount, error)
	// ofctl runs ovs-ofctl with args and stdin (nil: the real one; unit
	// tests run a model of the switch)
	ofctl func(ctx context.Context, stdin io.Reader, args ...string) (string, error)
	// conn sends the bundles the encoder takes over one persistent
	// OpenFlow connection (ofconn.go; nil: every bundle runs ovs-ofctl,
	// Config.RulePath); paths counts the bundles by the way they went
	conn  *ofConn
	paths bundlePaths
	// ended entry rules kept as count-then-drop rules until their delayed
	// delete (tomb.go): tombs by rule identity; asked is the rule set the
	// caller gave last (resolved) whose bundle committed or may have (it
	// was killed), which the delayed delete applies; hold
	// is how long a tombstone stays (EndHold; 0: entry rules are deleted
	// at once); clk times it (nil: clock.Real); timer is the pending
	// delayed delete; closed: Close ran, no timer is set any more
	tombs map[string]tombstone
	asked []Flow
	// dirty: the identities of the rules whose state on the switch is
	// unknown: a bundle that changed them was killed, and it may have
	// committed all the same (its ovs-ofctl killed after sending the
	// commit: a caller's context, the delayed delete giving way or its
	// bound). The next bundle rewrites each of them (applyLocked),
	// whatever the killed one did.
	dirty  map[string]bool
	hold   time.Duration
	clk    clock.Clock
	timer  clock.Timer
	closed bool
	// sweepFails: delayed deletes failed in a row (the next waits longer:
	// retry, doubling from EndHold to maxSweepRetry); onErr receives them
	// thinned (ReportTo)
	sweepFails int
	retry      restartBackoff
	retryIn    time.Duration
	onErr      func(error)
	// fellBack: a bundle that would have gone over the OpenFlow
	// connection went through ovs-ofctl, for each cause (reported once
	// to onErr: bundleFellBackLocked)
	fellBack struct{ unsupported, notSent bool }
	// yield makes the delayed delete give way to callers (tomb.go):
	// callers counts the Apply, Reset and Close calls waiting for mu or
	// running, sweepStop cancels the delayed delete's bundle in flight
	// (nil: none), again is the delayed delete set again by one that
	// found mu held, closed: Close ran (none is set again). Lock order:
	// mu before yield.
	yield struct {
		sync.Mutex
		callers   int
		sweepStop context.CancelFunc
		again     clock.Timer
		closed    bool
	}
}

// NewSwitch returns the switch of bridge br (see EnsureBridge). It assumes
// the bridge has no rules yet; call Reset when it may have.
func (d *Daemon) NewSwitch(br string) *Switch {
	s := &Switch{d: d, bridge: br, have: map[string]Flow{}, seen: map[uint64]uint64{}, pairs: map[Pair]uint64{},
		tombs: map[string]tombstone{}, hold: EndHold, clk: d.cfg.Clock, retry: restartBackoff{base: EndHold, max: maxSweepRetry}}
	if d.RulePath() == RulePathOpenFlow {
		s.conn = newOfConn(d.mgmt(br))
	}
	return s
}

// Bridge returns the bridge name.
func (s *Switch) Bridge() string { return s.bridge }

// Ofctl runs ovs-ofctl -O OpenFlow15 cmd <bridge's management socket> args...
func (s *Switch) Ofctl(ctx context.Context, cmd string, args ...string) (string, error) {
	a := append([]string{"-O", "OpenFlow15", cmd, s.d.mgmt(s.bridge)}, args...)
	return s.runOfctl(ctx, nil, a...)
}

func (s *Switch) runOfctl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	if s.ofctl != nil {
		return s.ofctl(ctx, stdin, args...)
	}
	return run(ctx, s.d.cfg.Dir, stdin, "ovs-ofctl", args...)
}

// Diff returns the bundle lines that turn have into want (deletes first).
// want is resolved (Resolve: one rule per identity; Apply resolves it
// once, Changes.Conflicts is Apply's count).
func Diff(have map[string]Flow, want []Flow) ([]string, Changes) {
	return diff(have, keyed(want))
}

// diff is Diff of want by identity.
func diff(have, idx map[string]Flow) ([]string, Changes) {
	var c Changes
	var del, add []string
	for k := range have {
		if _, ok := idx[k]; !ok {
			del = append(del, "delete_strict "+k)
			c.Deleted++
		}
	}
	for k, f := range idx {
		g, ok := have[k]
		switch {
		case !ok:
			add = append(add, "add "+f.String())
			c.Added++
		case g.Cookie != f.Cookie:
			// a new cookie (a flow that took another's 5-tuple over):
			// Open vSwitch modifies actions, never the cookie, so the
			// rule is replaced (in the same bundle: no gap), its
			// counters start at 0
			del = append(del, "delete_strict "+k)
			add = append(add, "add "+f.String())
			c.Modified++
		case g != f:
			// new actions: modified in place, the counters stay
			add = append(add, "modify_strict "+f.String())
			c.Modified++
		default:
			c.Unchanged++
		}
	}
	sort.Strings(del)
	sort.Strings(add)
	return append(del, add...), c
}

// Apply makes want the bridge's rule set: rules already installed and
// unchanged stay as they are, the others are added, replaced or strictly
// deleted, all in one OpenFlow bundle (atomic: all or nothing; a bundle
// the switch refused changed nothing, one whose ovs-ofctl was killed, its
// ctx ended, may have committed: the rules it changed are dirty and the
// next bundle rewrites them, uncertainLocked, and its set is the one the
// delayed delete applies).
// Two rules of want with one identity are resolved (Resolve: the later one
// is installed, Changes.Conflicts counts the other): one such pair never
// keeps the rest of want off the switch.
//
// An entry rule that want ends (a call's end) is not deleted: it is
// modified in place to count on its pair and drop (CountPair(pair,
// "drop"), same cookie), and a delayed delete removes it EndHold later
// (tomb.go), so the packets Open vSwitch credits after the bundle still
// count on the pair; want naming its identity again (a newer call with
// the 5-tuple) takes it over at once. A rule update deletes, in its
// bundle, the tombstones already due whose pair keeps its counter rule in
// want (no counter read). A delayed delete never makes Apply wait for its
// bundle: it gives way to a caller (tomb.go, callerIn).
func (s *Switch) Apply(ctx context.Context, want []Flow, forgetOutputs ...int) (Changes, error) {
	defer s.callerIn()()
	s.mu.Lock()
	defer s.mu.Unlock()
	want, idx, cs := resolve(want)
	c, err := s.applyLocked(ctx, want, idx, forgetOutputs, s.dueLocked(idx))
	if err != nil {
		return c, err
	}
	c.Conflicts = len(cs)
	return c, nil
}

// applyLocked is Apply's rule update of want (resolved, by identity), with
// the tombstones but those of gone (s.mu held; the delayed delete's). It
// owns want: the tombstones are added to it, and after a bundle it is the
// record of the installed rules. asked is want as the caller gave it
// (resolved): the set the delayed delete applies from now on once the
// bundle committed, or may have (killed): a delayed delete towards an
// older set would undo the caller's committed rules.
func (s *Switch) applyLocked(ctx context.Context, asked []Flow, want map[string]Flow, forgetOutputs []int, gone map[string]bool) (Changes, error) {
	// dirty counter rules are settled from a read, not rewritten
	read, unread := s.settleCountersLocked(ctx)
	tombs := maps.Clone(s.tombs)
	s.withTombsLocked(want, gone)
	for k := range gone {
		delete(s.tombs, k)
	}
	// rules a failed bundle changed are in either state (it is atomic:
	// all or none of it): each is deleted (no error when absent) and added
	// again when want has it, so this bundle's outcome is want either way
	have, fix := s.have, s.rewriteDirtyLocked()
	if len(fix) > 0 {
		have = maps.Clone(s.have)
		for k := range s.dirty {
			delete(have, k)
		}
	}
	lines, c := diff(have, want)
	lines = append(fix, lines...)
	// learned rules towards ports that go away are dropped in the same bundle
	for _, p := range forgetOutputs {
		lines = append(lines, fmt.Sprintf("delete cookie=%#x/%#x,out_port=%d", CookieLearned, cookieKindMask, p))
	}
	if len(lines) == 0 {
		// an ended rule that already drops is its own successor: no
		// change, but its delayed delete is due all the same, and
		// towards this set
		s.asked = asked
		s.armLocked()
		return c, nil
	}
	// entry rules (a call's end, a takeover) end no count: their packets
	// are on their pair's counter rule, so a call's rule update reads
	// nothing. Only a counter rule that goes is read first (unless the
	// settling of dirty ones just did), and so is an unknown one
	// (settleCountersLocked; when that read failed it is rewritten: it
	// counts from 0 after the bundle).
	ended := countersEnd(have, want)
	if !read && len(ended) > 0 {
		// best effort: a failed read (a slow or briefly unreachable
		// switch) must not keep the rules off it, it costs the counts
		// since the last read, which the next PairPackets reports lost
		read, unread = true, s.readPairsLocked(ctx)
	}
	if err := ctx.Err(); err != nil {
		// stopped before its bundle ran (a delayed delete giving way
		// during its read): nothing changed, nothing is dirty
		s.tombs = tombs
		return Changes{}, err
	}
	if err := s.bundle(ctx, lines); err != nil {
		s.tombs = tombs
		if s.uncertainLocked(ctx, err, want) {
			s.asked = asked
			if unread != nil {
				// it may have ended (or rewritten) counter rules unread
				s.lost = true
			}
		}
		return Changes{}, err
	}
	if unread != nil {
		s.lost = true
		c.CountsUnread = fmt.Errorf("reading the pair counters before the rule update: %w", unread)
	}
	c.CountsRead = read && unread == nil
	s.asked = asked
	s.installedLocked(have, want, ended)
	s.armLocked()
	return c, nil
}

// uncertainLocked notes a failed bundle towards want run under ctx (s.mu
// held). An ovs-ofctl that failed by itself changed nothing (the switch
// refused the bundle, which is atomic; or it never sent it). One killed
// because ctx ended may have sent the commit first: the bundle changed
// nothing or all of it, so every rule it changed is dirty until a bundle
// rewrites it, and a dump of the counters in flight may have run across
// the change: it is read again (readGen). It says whether the bundle may
// have committed. A bundle over the OpenFlow connection whose answer was
// lost (errOutcomeUnknown: the connection broke after its commit went
// out) is as one killed.
func (s *Switch) uncertainLocked(ctx context.Context, err error, want map[string]Flow) bool {
	if ctx.Err() == nil && !errors.Is(err, errOutcomeUnknown) || errors.Is(err, errNotSent) {
		return false // (not sent over the connection: nothing changed, whatever ctx says)
	}
	if s.dirty == nil {
		s.dirty = map[string]bool{}
	}
	for k, f := range want {
		if g, ok := s.have[k]; !ok || g != f {
			s.dirty[k] = true
		}
	}
	for k := range s.have {
		if _, ok := want[k]; !ok {
			s.dirty[k] = true
		}
	}
	s.readGen++
	return true
}

// settleCountersLocked settles the dirty pair counter rules from a read of
// the counters (s.mu held), the read an update needs before its bundle
// when counter rules are dirty: a counter rule's content is a function of
// its identity (PairCounter), so it is on the switch or not, and the dump
// says which (nothing else writes rules while s.mu is held). Each is
// recorded as it is and is no longer dirty: it is not rewritten, which
// would delete with the old rule the packets the switch credits to it
// while the bundle runs (no read can take them). read says whether it
// read, unread why the read failed (the dirty counter rules stay dirty and
// are rewritten: their counts since the last read are lost).
func (s *Switch) settleCountersLocked(ctx context.Context) (read bool, unread error) {
	if !s.dirtyCountersLocked() {
		return false, nil
	}
	fs, err := s.readPairs(ctx)
	if err != nil {
		return true, err
	}
	s.foldLocked(fs) // while they are dirty: one missing is gone, not lost
	s.readGen++
	on := make(map[string]Flow, len(fs))
	for _, f := range fs {
		if p, ok := CounterOf(f.Cookie); ok {
			c := PairCounter(p)
			on[c.Key()] = c
		}
	}
	for k := range s.dirty {
		if !strings.HasPrefix(k, pairCounterKeyPrefix) {
			continue
		}
		if c, ok := on[k]; ok {
			s.have[k] = c
		} else {
			delete(s.have, k)
		}
		delete(s.dirty, k)
	}
	return true, nil
}

// rewriteDirtyLocked returns the bundle lines that delete the dirty rules
// (s.mu held), sorted; none when the record is certain.
func (s *Switch) rewriteDirtyLocked() []string {
	if len(s.dirty) == 0 {
		return nil
	}
	fix := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		fix = append(fix, "delete_strict "+k)
	}
	sort.Strings(fix)
	return fix
}

// dirtyCountersLocked: a pair counter rule is dirty (s.mu held).
func (s *Switch) dirtyCountersLocked() bool {
	for k := range s.dirty {
		if strings.HasPrefix(k, pairCounterKeyPrefix) {
			return true
		}
	}
	return false
}

// installedLocked records want as the installed rule set after a bundle
// from have (the rules the Switch knew to be there; dirty ones left out:
// rewritten); ended are the counter rules the bundle deleted or replaced:
// their counts are dropped, and a counter rule that is new counts from 0,
// as does a rewritten one. A dirty counter rule that want has not is gone.
func (s *Switch) installedLocked(have, want map[string]Flow, ended []uint64) {
	changed := len(ended) > 0
	for _, ck := range ended {
		delete(s.seen, ck)
	}
	if len(s.dirty) > 0 {
		for ck := range s.seen {
			if s.dirty[PairCounter(cookiePair(ck)).Key()] {
				delete(s.seen, ck)
				changed = true
			}
		}
		s.dirty = nil
	}
	s.have = want
	for k, f := range want {
		if g, ok := have[k]; f.Cookie&cookieKindMask == CookiePair && (!ok || g.Cookie != f.Cookie) {
			s.seen[f.Cookie] = 0
			changed = true
		}
	}
	if changed {
		s.readGen++
	}
}

// countersEnd returns the cookies of the pair counter rules (PairCounter)
// whose counts applying want (resolved) to have ends (pure): the rule is
// deleted, or replaced because its cookie changes (Diff). Their packets
// must be read first. Entry rules end no count.
func countersEnd(have, want map[string]Flow) []uint64 {
	var ended []uint64
	for k, g := range have {
		if f, ok := want[k]; g.Cookie&cookieKindMask == CookiePair && (!ok || f.Cookie != g.Cookie) {
			ended = append(ended, g.Cookie)
		}
	}
	return ended
}

// bundle applies lines in one atomic bundle: over the Switch's OpenFlow
// connection when the encoder takes every line (ofencode.go), else with
// ovs-ofctl (a bundle never goes half one way, half the other). A bundle
// that never reached the switch whole over the connection (no connection:
// ovs-vswitchd down or restarting) runs ovs-ofctl instead.
func (s *Switch) bundle(ctx context.Context, lines []string) error {
	if s.conn != nil && s.ofctl == nil {
		fms, err := encodeBundle(lines)
		if err != nil {
			s.paths.unsupported.Add(1)
			s.bundleFellBackLocked(&s.fellBack.unsupported, err)
		} else {
			err = s.conn.bundle(ctx, fms, lines)
			if !errors.Is(err, errNotSent) {
				s.paths.conn.Add(1)
				return err
			}
			s.paths.notSent.Add(1)
			if ctx.Err() != nil {
				return err
			}
			s.bundleFellBackLocked(&s.fellBack.notSent, err)
		}
	}
	s.paths.ofctl.Add(1)
	in := strings.NewReader(strings.Join(lines, "\n") + "\n")
	_, err := s.runOfctl(ctx, in, "-O", "OpenFlow15", "--bundle", "add-flows", s.d.mgmt(s.bridge), "-")
	return err
}

// Reset deletes every rule of the bridge (installed or learned) and installs
// want, in one bundle: after ovs-vswitchd restarted, or when the rule set on
// the switch is unknown. want is resolved as in Apply. A delayed delete's
// bundle in flight stops for it, as for Apply. A Reset that fails (killed
// or by itself) leaves every rule dirty: the next Apply rewrites the whole
// set, so a retry by Apply does what the Reset did not.
func (s *Switch) Reset(ctx context.Context, want []Flow) error {
	defer s.callerIn()() // the delayed delete gives way, as to Apply
	s.mu.Lock()
	defer s.mu.Unlock()
	want, idx, _ := resolve(want)
	lines, _ := diff(nil, idx)
	// the counter rules' packets since the last read, read first (best
	// effort; Reset is a recovery, not a call's path): after a restart of
	// ovs-vswitchd the installed counters are gone, which the read
	// reports lost unless a read since the restart did
	unread := s.readPairsLocked(ctx)
	if err := s.bundle(ctx, append([]string{"delete"}, lines...)); err != nil {
		// whatever this bundle did (killed: all or nothing; refused or
		// never sent: nothing), the switch's rules are unknown: that is
		// why Reset runs (a restart of ovs-vswitchd emptied the bridge)
		s.resetFailedLocked(idx)
		s.resetUnknownLocked(want)
		return err
	}
	if unread != nil {
		s.lost = true
	}
	s.rebase = false
	clear(s.seen)
	clear(s.tombs) // deleted with every other rule
	s.dirty = nil
	s.sweepFails, s.retryIn, s.retry.streak = 0, 0, 0
	s.asked = want
	s.have = nil
	s.installedLocked(nil, idx, nil)
	s.readGen++
	return nil
}

// resetFailedLocked notes a Reset towards want (by identity) whose bundle
// failed, killed or by itself (s.mu held): every rule of the record and of
// want is dirty, so the next bundle (the caller's retry by Apply, or the
// delayed delete) rewrites each of them and its outcome is its set on the
// switch. Marking only what the bundle changed (uncertainLocked) would
// leave the record of the rules from before a restart of ovs-vswitchd,
// which the switch no longer has: an Apply of the same set sent nothing
// and the bridge stayed empty. Dirty counter rules are settled by the
// next update's read (settleCountersLocked), not rewritten.
func (s *Switch) resetFailedLocked(want map[string]Flow) {
	if s.dirty == nil {
		s.dirty = map[string]bool{}
	}
	for k := range s.have {
		s.dirty[k] = true
	}
	for k := range want {
		s.dirty[k] = true
	}
	s.readGen++
}

// resetUnknownLocked notes a Reset towards want whose bundle failed (s.mu
// held; resetFailedLocked marked the rules dirty): it may have committed. Its
// bundle began with delete: had it committed, every rule was made again,
// which leaves a rule it did not change as the record says, but every
// counter rule counts from 0: the counts since the read before it are
// unknown (rebase: the next read takes the counts as the new base and
// says lost). Its set is the one the delayed delete applies.
func (s *Switch) resetUnknownLocked(want []Flow) {
	s.rebase = true
	s.asked = want
}

// Installed returns how many rules Apply installed (learned rules excluded).
func (s *Switch) Installed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.have)
}

// ForgetOutput deletes the rules the switch learned (cookie CookieLearned)
// that output to port: their flows are learned again from the current rules.
func (s *Switch) ForgetOutput(ctx context.Context, port int) error {
	_, err := s.Ofctl(ctx, "del-flows", fmt.Sprintf("cookie=%#x/%#x,out_port=%d", CookieLearned, cookieKindMask, port))
	return err
}

// ForgetLearned deletes every rule the switch learned.
func (s *Switch) ForgetLearned(ctx context.Context) error {
	_, err := s.Ofctl(ctx, "del-flows", fmt.Sprintf("cookie=%#x/%#x", CookieLearned, cookieKindMask))
	return err
}

// FlowCount is one rule's counters as the switch reports them.
type FlowCount struct {
	Cookie  uint64
	Table   int
	Packets uint64
	Bytes   uint64
}

var dumpRE = regexp.MustCompile(`cookie=(0x[0-9a-f]+).*?table=(\d+), n_packets=(\d+), n_bytes=(\d+)`)

// ParseDump reads `ovs-ofctl dump-flows` output.
func ParseDump(out string) []FlowCount {
	var fs []FlowCount
	for _, l := range strings.Split(out, "\n") {
		m := dumpRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ck, err1 := strconv.ParseUint(m[1], 0, 64)
		tb, err2 := strconv.Atoi(m[2])
		pk, err3 := strconv.ParseUint(m[3], 10, 64)
		by, err4 := strconv.ParseUint(m[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		fs = append(fs, FlowCount{Cookie: ck, Table: tb, Packets: pk, Bytes: by})
	}
	return fs
}

// Counts dumps the counters of the rules whose cookie has kind (a Cookie*
// constant), or of every rule when kind is 0. The pair counter rules
// (CookiePair) are dumped from their table alone (PairTable).
func (s *Switch) Counts(ctx context.Context, kind uint64) ([]FlowCount, error) {
	var args []string
	switch kind {
	case 0:
	case CookiePair:
		args = append(args, fmt.Sprintf("table=%d,cookie=%#x/%#x", PairTable, kind, cookieKindMask))
	default:
		args = append(args, fmt.Sprintf("cookie=%#x/%#x", kind, cookieKindMask))
	}
	out, err := s.Ofctl(ctx, "dump-flows", args...)
	if err != nil {
		return nil, err
	}
	return ParseDump(out), nil
}

// bundleFellBackLocked reports to onErr (s.mu held) the first bundle of
// a cause (once: unsupported lines, or not sent) that went through
// ovs-ofctl instead of the OpenFlow connection: a Switch back at
// ovs-ofctl's speed says so once (BundlePaths counts every one).
func (s *Switch) bundleFellBackLocked(once *bool, err error) {
	if *once || s.onErr == nil {
		return
	}
	*once = true
	s.onErr(fmt.Errorf("ovs: %s: a bundle went through ovs-ofctl, not the OpenFlow connection (said once per switch for this cause; BundlePaths counts them): %w", s.bridge, err))
}

// BundlePaths counts a Switch's bundles by the way they went.
type BundlePaths struct {
	// Conn: sent over the OpenFlow connection (committed, refused, or
	// of unknown outcome: the connection broke or the caller stopped
	// before its answer).
	Conn uint64
	// Ofctl: run by ovs-ofctl (Unsupported and NotSent among them, and
	// every bundle when the connection is off).
	Ofctl uint64
	// Unsupported: a line the encoder does not take (e.g. learn, move).
	Unsupported uint64
	// NotSent: the connection could not take the bundle (no connection).
	NotSent uint64
}

type bundlePaths struct{ conn, ofctl, unsupported, notSent atomic.Uint64 }

// BundlePaths returns how this Switch's bundles went so far.
func (s *Switch) BundlePaths() BundlePaths {
	return BundlePaths{Conn: s.paths.conn.Load(), Ofctl: s.paths.ofctl.Load(),
		Unsupported: s.paths.unsupported.Load(), NotSent: s.paths.notSent.Load()}
}
