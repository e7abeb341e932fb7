package ovs

import (
	"context"
	"errors"
	"maps"
)

// Cookies: the top 16 bits say the rule is ours (0x13) and its kind; entry
// rules carry their entry→exit pair in bits 47..32 and a flow serial in the
// low 32 bits, so per-pair packet counts come from the bridge's counters.
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
)

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
	return Pair{Entry: int(uint8(cookie >> 40)), Exit: int(uint8(cookie >> 32))}, true
}

// ErrCountsLost is what PairPackets returns, with the counts, when entry
// rules' counters ended unread since its previous answer (Apply's read
// before the bundle failed, or Reset deleted every rule): the counts are
// right from now on, but their increase since the previous answer misses
// packets. The interval is a missing measurement, not a low one.
var ErrCountsLost = errors.New("pair counters: entry rules ended unread since the previous read, their packets are missing")

// PairPackets returns, per entry→exit pair, the packets that entered the
// chain at this switch's datacenter since the Switch was created:
// cumulative, never decreasing (rules that were removed keep their last
// count), read from the entry rules' flow counters. A rule that Apply
// deletes or replaces (a new cookie) is read just before its bundle: the
// packets it matches between that read and the bundle's commit (one
// ovs-ofctl run, tens of ms at load) are not counted. When that read
// failed (or Reset deleted the rules) since the previous call, the counts
// come with ErrCountsLost (once: the next call answers nil).
func (s *Switch) PairPackets() (map[Pair]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readPairsLocked(context.Background()); err != nil {
		return nil, err
	}
	var err error
	if s.lost {
		s.lost, err = false, ErrCountsLost
	}
	return maps.Clone(s.pairs), err
}

func (s *Switch) readPairsLocked(ctx context.Context) error {
	read := s.readCounts
	if read == nil {
		read = s.Counts
	}
	fs, err := read(ctx, CookieEntry)
	if err != nil {
		return err
	}
	for _, f := range fs {
		p, ok := PairOf(f.Cookie)
		if !ok {
			continue
		}
		last := s.seen[f.Cookie]
		if f.Packets > last {
			s.pairs[p] += f.Packets - last
		}
		s.seen[f.Cookie] = f.Packets
	}
	return nil
}
