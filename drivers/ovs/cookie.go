package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// Cookies: the top 16 bits say the rule is ours (0x13) and its kind; entry
// rules carry their entry→exit pair in bits 47..32 and a flow serial in the
// low 32 bits; pair counter rules (PairCounter) carry their pair in bits
// 47..32, so per-pair packet counts come from the bridge's counters.
const (
	cookieOurs     uint64 = 0x13 << 56
	cookieKindMask uint64 = 0xffff << 48

	CookieClassify = cookieOurs | 1<<48 // table 0: in_port → source register
	CookieStatic   = cookieOurs | 2<<48 // between stages and into tunnels
	CookieTag      = cookieOurs | 3<<48 // tunnel arrivals by interval tag
	CookieEntry    = cookieOurs | 4<<48 // a flow entering the chain here
	CookieExit     = cookieOurs | 5<<48 // Table 1 exit translation
	CookieMiss     = cookieOurs | 6<<48 // nothing matched: drop, counted
	CookieLearned  = cookieOurs | 7<<48 // learned per-flow rules
	CookiePair     = cookieOurs | 8<<48 // a pair's packet counter (PairCounter)
)

// PairTable is the table of the pair counter rules: no packet looks it up
// but through an entry rule's CountPair prefix.
const PairTable = 2

// Pair counters: every entry rule's actions start with CountPair's prefix,
// which writes its pair into reg3 and looks table PairTable up
// (resubmit), where the pair's counter rule (PairCounter) matches it,
// counts it and does nothing else; the entry rule's own actions follow. A
// pair's counter rule lives as long as the bridge's rule set names the
// pair, so deleting or replacing entry rules (a call's end, a takeover)
// needs no read. Open vSwitch credits a packet to every rule its
// translation went through when the revalidator pulls the datapath flow's
// stats; but after a bundle it first translates the flow again against the
// new rules and credits the stats it had not pulled to those (the packets
// of the last revalidator period, ≤ max-revalidator, 100 ms). So a call's
// end does not delete its entry rule: Apply rewrites it to count-then-drop
// (CountPair(pair, "drop")) and deletes it EndHold later (tomb.go), and a
// still-sending flow's packets, before and after the end, count on its
// pair, none on table 1's miss rule; a takeover's window goes to the new
// rule's pair. Every other packet counts once on its pair, in the first
// PairPackets after the switch credited it (docs/dataplane.md "Pair
// counters").
const pairReg = "reg3"

// PairCookie is the cookie of pair p's counter rule.
func PairCookie(p Pair) uint64 {
	return CookiePair | uint64(uint8(p.Entry))<<40 | uint64(uint8(p.Exit))<<32
}

// pairID is the value CountPair writes into pairReg for p.
func pairID(p Pair) uint64 { return uint64(uint8(p.Entry))<<8 | uint64(uint8(p.Exit)) }

// PairCounter is pair p's counter rule (table PairTable): it matches the
// packets an entry rule of p sent through CountPair and does nothing with
// them (an empty action list in a resubmitted table returns to the entry
// rule's actions).
func PairCounter(p Pair) Flow {
	return Flow{Table: PairTable, Priority: 100, Cookie: PairCookie(p),
		Match: fmt.Sprintf("%s=%#x", pairReg, pairID(p)), Actions: "drop"}
}

// pairCounterKeyPrefix begins the identity (Flow.Key) of every pair
// counter rule.
var pairCounterKeyPrefix = fmt.Sprintf("table=%d,priority=100,%s=", PairTable, pairReg)

// CountPair returns an entry rule's actions for pair p: the packet is
// counted by p's counter rule (PairCounter), then actions ("drop" or ""
// for none) run.
func CountPair(p Pair, actions string) string {
	pre := fmt.Sprintf("set_field:%#x->%s,resubmit(,%d)", pairID(p), pairReg, PairTable)
	if actions == "" || actions == "drop" {
		return pre
	}
	return pre + "," + actions
}

// Pair is an entry→exit datacenter pair.
type Pair struct{ Entry, Exit int }

// EntryCookie is the cookie of an entry rule of pair p, flow serial.
func EntryCookie(p Pair, serial uint32) uint64 {
	return CookieEntry | uint64(uint8(p.Entry))<<40 | uint64(uint8(p.Exit))<<32 | uint64(serial)
}

// PairOf returns the pair an entry cookie carries.
func PairOf(cookie uint64) (Pair, bool) {
	if cookie&cookieKindMask != CookieEntry {
		return Pair{}, false
	}
	return cookiePair(cookie), true
}

// CounterOf returns the pair a pair counter rule's cookie carries.
func CounterOf(cookie uint64) (Pair, bool) {
	if cookie&cookieKindMask != CookiePair {
		return Pair{}, false
	}
	return cookiePair(cookie), true
}

func cookiePair(cookie uint64) Pair {
	return Pair{Entry: int(uint8(cookie >> 40)), Exit: int(uint8(cookie >> 32))}
}

// ErrCountsLost is what PairPackets returns, with the counts, when pair
// counter rules ended unread since its previous answer (Apply deleted one
// and its read before the bundle failed, or Reset deleted every rule, or
// a Reset was killed and may have made them again at 0): the
// counts are right from now on, but their increase since the previous
// answer misses packets. The interval is a missing measurement, not a low
// one.
var ErrCountsLost = errors.New("pair counters: counter rules ended unread since the previous read, their packets are missing")

// PairPackets returns, per entry→exit pair, the packets that entered the
// chain at this switch's datacenter since the Switch was created:
// cumulative, never decreasing, read from the pair counter rules
// (PairCounter; one ovs-ofctl dump-flows). Entry rules come and go without
// a read: their packets are on their pair's counter rule, which stays.
// The dump runs without the Switch's rule lock, so a rule update (Apply)
// never waits for it; calls of PairPackets run one at a time. A counter
// rule that Apply deletes (its pair left the rule set) is read just before
// its bundle, and a counter rule added again counts from 0.
// When counts were lost since the previous call, the counts come with
// ErrCountsLost (once: the next call answers nil): that read failed; Reset
// ran with a failed read, or was killed (it may have committed); or a counter rule the Switch installed is gone
// from the switch, or counts less than before (ovs-vswitchd restarted: its
// rules and their counts died with it, which the first read after the
// restart reports, not the one after the Reset that follows).
func (s *Switch) PairPackets() (map[Pair]uint64, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	gen := s.readGen
	s.mu.Unlock()
	fs, err := s.readPairs(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.readGen != gen {
		// the counter rules changed while the dump ran (it may miss a
		// new one or hold an ended one's count), or a newer read was
		// folded (Apply's or Reset's): read again (rare: the pairs of
		// the topology are fixed)
		if err := s.readPairsLocked(context.Background()); err != nil {
			return nil, err
		}
	} else {
		s.foldLocked(fs)
	}
	if s.lost {
		s.lost, err = false, ErrCountsLost
	}
	return maps.Clone(s.pairs), err
}

// readPairs dumps the pair counter rules' counters.
func (s *Switch) readPairs(ctx context.Context) ([]FlowCount, error) {
	read := s.readCounts
	if read == nil {
		read = s.Counts
	}
	return read(ctx, CookiePair)
}

// readPairsLocked reads the counters and adds their increase to the
// pairs (s.mu held). It bumps readGen: a PairPackets dump in flight is
// older than this read and must not be folded after it (revC L1: Apply's
// read before a bundle that then failed left the counter set unchanged).
func (s *Switch) readPairsLocked(ctx context.Context) error {
	fs, err := s.readPairs(ctx)
	if err != nil {
		return err
	}
	s.foldLocked(fs)
	s.readGen++
	return nil
}

// foldLocked adds the increase of each counter rule since the last read
// to its pair. seen holds the counter rules the Switch installed (added
// by Apply or Reset at 0) and the counts last read: one installed but
// missing from the dump, or counting less than before, died with its
// counts (ovs-vswitchd restarted): the counts are marked lost, once.
func (s *Switch) foldLocked(fs []FlowCount) {
	dumped := make(map[uint64]bool, len(fs))
	rebase := s.rebase
	if rebase {
		// a Reset of unknown outcome may have made them again at 0: their
		// counts since the read before it are unknown, these are the base
		s.rebase, s.lost = false, true
	}
	for _, f := range fs {
		p, ok := CounterOf(f.Cookie)
		if !ok {
			continue
		}
		dumped[f.Cookie] = true
		last := s.seen[f.Cookie]
		switch {
		case rebase:
		case f.Packets < last:
			s.lost = true // re-created behind the Switch's back: its count restarted
		default:
			s.pairs[p] += f.Packets - last
		}
		s.seen[f.Cookie] = f.Packets
	}
	for ck := range s.seen {
		if !dumped[ck] && s.dirty[PairCounter(cookiePair(ck)).Key()] {
			// a failed bundle that deleted it committed (its count was
			// read before it): gone, not lost
			delete(s.seen, ck)
			continue
		}
		if !dumped[ck] {
			s.lost = true
			delete(s.seen, ck) // reported once; Reset installs it again
		}
	}
}
