package dpfwd

import (
	"context"
	"strings"
	"testing"
)

// Bad command lines and missing interfaces end the forwarder with a clear
// error (its forwarding is exercised on real namespaces by drivers/netns
// and controller/dataplane).
func TestBadInput(t *testing.T) {
	if code := Main([]string{"-bogus"}); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
	if code := Main([]string{"-in", "no-such-if0", "-out", "no-such-if1"}); code != 1 {
		t.Fatalf("missing interface: exit %d, want 1", code)
	}
	err := Run(context.Background(), "lo", "no-such-if1", func() { t.Error("ready called before the out socket was bound") })
	if err == nil || !strings.HasPrefix(err.Error(), "out:") {
		t.Fatalf("missing out interface: %v, want an error naming out", err)
	}
}
