package daemon

import (
	"fmt"
	"regexp"
	"testing"
)

// dpPrefix is a valid ovs prefix, the same for the same run dir, and spread
// wide: 20 000 run dirs share far fewer prefixes than with 4 096 values
// (where at least 15 904 of them would share one).
func TestDPPrefixIsStableAndWide(t *testing.T) {
	form := regexp.MustCompile(`^i[a-z0-9]{4}$`)
	seen := map[string]int{}
	for i := 0; i < 20000; i++ {
		dir := fmt.Sprintf("/var/lib/ims-orch/run-%d", i)
		p := dpPrefix(dir)
		if !form.MatchString(p) {
			t.Fatalf("dpPrefix(%q) = %q, want %s", dir, p, form)
		}
		if dpPrefix(dir) != p {
			t.Fatalf("dpPrefix(%q) differs between calls", dir)
		}
		seen[p]++
	}
	if shared := 20000 - len(seen); shared > 1000 {
		t.Errorf("%d of 20 000 run dirs share a prefix (%d distinct), want ≤ 1 000", shared, len(seen))
	}
}
