package ovs

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// LearnedFlow is one per-flow rule the switch learned itself (a tag rule's
// learn action, cookie CookieLearned): where it sends its flow. The switch
// creates these rules on a flow's first packet and deletes them after their
// idle timeout, so only the switch knows them.
type LearnedFlow struct {
	// DstIP is the destination address the rule writes (the routing bytes
	// of the flow's instances); 0 when it writes none.
	DstIP uint32
	// OutPort is the OpenFlow port it outputs to; 0 when none.
	OutPort int
}

// LearnedRules is one read of the rules the switch learned.
type LearnedRules struct {
	Flows []LearnedFlow
	// Skipped has one error per rule line that could not be read (naming
	// the line): such a rule counts nowhere, the others still do.
	Skipped []error
}

// ParseLearned reads `ovs-ofctl dump-flows` output of learned rules: each
// rule line's `set_field:A.B.C.D->ip_dst` (or `load:0x…->NXM_OF_IP_DST[]`,
// `mod_nw_dst:A.B.C.D`) and `output:N` (a port number: Learned asks for
// no names). Lines without a cookie (the reply header) are not rules; a rule
// line whose actions cannot be read is skipped with an error naming the line.
func ParseLearned(out string) LearnedRules {
	var r LearnedRules
	eachLearned(out, func(_ string, e learnedEntry) {
		if e.err != nil {
			r.Skipped = append(r.Skipped, e.err)
		} else {
			r.Flows = append(r.Flows, e.f)
		}
	})
	return r
}

// eachLearned calls fn with each rule line of a dump, in order: its key
// (learnedKey) and what it says, or the error naming the line.
func eachLearned(out string, fn func(key string, e learnedEntry)) {
	for n, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "cookie=") {
			continue
		}
		f, err := parseLearnedLine(l)
		if err != nil {
			err = fmt.Errorf("dump-flows line %d: %w", n+1, err)
		}
		fn(learnedKey(l), learnedEntry{f: f, err: err})
	}
}

// learnedKey is the identity of the rule on a dump-flows or flow-monitor
// line: its match, the last field before the actions, without the priority
// (the monitor does not print it; every learned rule has the same one).
func learnedKey(l string) string {
	i := strings.LastIndex(l, " actions=")
	if i < 0 {
		i = len(l)
	}
	head := strings.TrimSpace(l[:i])
	m := head[strings.LastIndex(head, " ")+1:]
	if strings.HasPrefix(m, "priority=") {
		if j := strings.IndexByte(m, ','); j >= 0 {
			return m[j+1:]
		}
		return ""
	}
	return m
}

// parseLearnedLine reads one rule line (a dump-flows line starting
// "cookie=", or a flow-monitor event line).
func parseLearnedLine(l string) (LearnedFlow, error) {
	i := strings.LastIndex(l, " actions=")
	if i < 0 {
		return LearnedFlow{}, fmt.Errorf("no actions in %q", l)
	}
	var f LearnedFlow
	for _, a := range splitActions(l[i+len(" actions="):]) {
		var err error
		switch {
		case strings.HasPrefix(a, "set_field:") && strings.HasSuffix(a, "->ip_dst"):
			f.DstIP, err = parseIP(strings.TrimSuffix(strings.TrimPrefix(a, "set_field:"), "->ip_dst"))
		case strings.HasPrefix(a, "mod_nw_dst:"):
			f.DstIP, err = parseIP(strings.TrimPrefix(a, "mod_nw_dst:"))
		case strings.HasPrefix(a, "load:") && strings.HasSuffix(a, "->NXM_OF_IP_DST[]"):
			var v uint64
			v, err = strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(a, "load:"), "->NXM_OF_IP_DST[]"), 0, 32)
			f.DstIP = uint32(v)
		case strings.HasPrefix(a, "output:"):
			var p uint64
			p, err = strconv.ParseUint(strings.TrimPrefix(a, "output:"), 10, 16)
			f.OutPort = int(p)
		}
		if err != nil {
			return LearnedFlow{}, fmt.Errorf("action %q: %v", a, err)
		}
	}
	return f, nil
}

// splitActions splits an action list at the commas outside parentheses.
func splitActions(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseIP(s string) (uint32, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("not an IPv4 address: %q", s)
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// Learned returns the rules the switch learned (one `ovs-ofctl dump-flows`
// of the learned cookie; no statistics, port numbers, never names: ovs-ofctl
// prints names by default when its output is a terminal). The error is only
// ovs-ofctl's; unreadable rules are in Skipped.
func (s *Switch) Learned(ctx context.Context) (LearnedRules, error) {
	out, err := s.dumpLearnedText(ctx)
	if err != nil {
		return LearnedRules{}, err
	}
	return ParseLearned(out), nil
}

func (s *Switch) dumpLearnedText(ctx context.Context) (string, error) {
	return s.Ofctl(ctx, "dump-flows", "--no-stats", "--no-names", fmt.Sprintf("cookie=%#x/%#x", CookieLearned, cookieKindMask))
}
