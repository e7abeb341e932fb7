package ovs

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
)

// On the real switch, a rule update whose ovs-ofctl is killed (its
// context ended) with the bundle's outcome unknown (committed before the
// kill, or never run) is undone or
// completed by the next update, whichever it was: the next bundle deletes
// each rule the failed one changed (delete_strict of a rule that is not
// there is no error in a bundle) and adds those its set wants. Here the
// failed update ended call 1 (its pair 0→1 left the rule set: its counter
// rule deleted, read first) and started call 2; before the caller's retry
// call 2 ended too and a new call 3 of pair 0→1 came: the switch then
// holds the two counter rules and call 3's rule, and call 3's packets
// count on 0→1, with no loss reported. Before, when the failed bundle had
// committed, call 2's rule stayed (forwarding) and 0→1's counter rule
// stayed missing (the record said it was there): call 3 counted nowhere.
func TestAnUnknownOutcomeIsRewrittenOnTheRealSwitch(t *testing.T) {
	for _, committed := range []bool{true, false} {
		name := "not run"
		if committed {
			name = "committed"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d, sw := realSwitch(t)
			sw.hold = 0 // ended entry rules go at once: the counter rule goes in the failed bundle
			// the failed update's context ends while its ovs-ofctl runs:
			// after the real commit, or before it ran
			killed, kill := context.WithCancel(ctx)
			sw.ofctl = func(c context.Context, stdin io.Reader, args ...string) (string, error) {
				if c != killed || !slices.Contains(args, "--bundle") {
					return run(c, d.cfg.Dir, stdin, "ovs-ofctl", args...)
				}
				if committed {
					if _, err := run(c, d.cfg.Dir, stdin, "ovs-ofctl", args...); err != nil {
						return "", err
					}
				}
				kill()
				return "", fmt.Errorf("test: ovs-ofctl killed, the bundle's outcome unknown: %w", c.Err())
			}
			frame := udpFrame() // 10.0.0.1:6000 → 10.0.0.2:7000
			a, b := Pair{0, 1}, Pair{0, 2}
			entry := func(p Pair, serial uint32, port string) Flow {
				return Flow{Table: 0, Priority: 200, Cookie: EntryCookie(p, serial), Match: "udp,nw_src=10.0.0.1,tp_src=" + port, Actions: CountPair(p, "drop")}
			}
			e1, e2, e3 := entry(a, 1, "6001"), entry(b, 2, "6002"), entry(a, 3, "6000")
			if _, err := sw.Apply(ctx, []Flow{PairCounter(a), PairCounter(b), e1}); err != nil {
				t.Fatal(err)
			}
			if _, err := sw.Apply(killed, []Flow{PairCounter(b), e2}); err == nil {
				t.Fatal("the failed update: no error")
			}
			want := []Flow{PairCounter(a), PairCounter(b), e3}
			if _, err := sw.Apply(ctx, want); err != nil {
				t.Fatal(err)
			}
			fs, err := sw.Counts(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got, exp []uint64
			for _, f := range fs {
				got = append(got, f.Cookie)
			}
			for _, f := range want {
				exp = append(exp, f.Cookie)
			}
			slices.Sort(got)
			slices.Sort(exp)
			if !slices.Equal(got, exp) {
				out, _ := sw.Ofctl(ctx, "dump-flows")
				t.Fatalf("the switch holds cookies %#x, want %#x\n%s", got, exp, out)
			}
			inject(t, sw, frame, 3)
			ps, err := sw.PairPackets()
			if err != nil || ps[a] != 3 {
				t.Fatalf("PairPackets %v (%v); want 0→1: 3 (call 3's packets), no loss", ps, err)
			}
		})
	}
}
