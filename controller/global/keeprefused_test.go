package global

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// refusesOptional knows an older local controller's strict refusal of the
// field (HTTP 400 naming keepBuffered as unknown), wrapped or not, and
// nothing else; withoutOptional clears the field on a copy and leaves the
// committed targets alone.
func TestKeepRefused(t *testing.T) {
	body := `{"type":"about:blank","title":"Bad Request","status":400,"detail":"request body: json: unknown field \"keepBuffered\""}`
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"400 naming it":  {&transport.StatusError{DC: "tokyo", Code: 400, Body: body}, true},
		"wrapped":        {fmt.Errorf("send: %w", &transport.StatusError{DC: "tokyo", Code: 400, Body: body}), true},
		"500":            {&transport.StatusError{DC: "tokyo", Code: 500, Body: body}, false},
		"another field":  {&transport.StatusError{DC: "tokyo", Code: 400, Body: `unknown field \"limits\"`}, false},
		"negative value": {&transport.StatusError{DC: "tokyo", Code: 400, Body: "decision.targets[0].keepBuffered -1: negative"}, false},
		"text only":      {fmt.Errorf("%s", body), false},
		"a longer name":  {&transport.StatusError{DC: "tokyo", Code: 400, Body: `unknown field \"keepBufferedUntil\"`}, false},
		"unquoted":       {&transport.StatusError{DC: "tokyo", Code: 400, Body: "unknown field keepBuffered"}, false},
	} {
		if got := refusesOptional(tc.err); got != tc.want {
			t.Errorf("%s: refusesOptional %v, want %v", name, got, tc.want)
		}
	}
	d := &protocol.DCDecision{DC: "tokyo", Targets: []protocol.VNFTarget{{VNF: "ids", KeepBuffered: 2}, {VNF: "firewall"}}}
	c, keep := withoutOptional(d)
	if c == nil || !keep || c.Targets[0].KeepBuffered != 0 || c.Targets[1].VNF != "firewall" {
		t.Fatalf("withoutOptional: %+v", c)
	}
	if d.Targets[0].KeepBuffered != 2 || d.Targets[0].Reason != "" {
		t.Fatalf("withoutOptional changed the committed decision: %+v", d.Targets[0])
	}
	if c, _ := withoutOptional(c); c != nil {
		t.Fatal("withoutOptional of a decision without keepBuffered: want nil (nothing to resend)")
	}
	if c, _ := withoutOptional(nil); c != nil {
		t.Fatal("withoutOptional of a decision without keepBuffered: want nil (nothing to resend)")
	}
}

// A rolled-back local controller refuses noRise or fast like keepBuffered
// (HTTP 400 naming the field): the decision goes again without every
// optional field, the reason naming what was dropped.
func TestNoRiseRefused(t *testing.T) {
	for _, f := range []string{"noRise", "fast"} {
		err := &transport.StatusError{DC: "tokyo", Code: 400, Body: `{"detail":"request body: json: unknown field \"` + f + `\""}`}
		if !refusesOptional(err) {
			t.Errorf("a refusal naming %s not recognised", f)
		}
	}
	if refusesOptional(&transport.StatusError{DC: "tokyo", Code: 400, Body: `unknown field \"fastest\"`}) {
		t.Error("a longer name recognised")
	}
	d := &protocol.DCDecision{DC: "tokyo", Targets: []protocol.VNFTarget{{VNF: "ids", NoRise: true, Fast: true}, {VNF: "firewall", Fast: true, KeepBuffered: 1}, {VNF: "nat"}}}
	c, keep := withoutOptional(d)
	if c == nil || !keep {
		t.Fatalf("withoutOptional: %+v (keepBuffered dropped %v), want the flags and the hold cleared", c, keep)
	}
	if _, keep := withoutOptional(&protocol.DCDecision{Targets: []protocol.VNFTarget{{VNF: "ids", NoRise: true}}}); keep {
		t.Error("a decision with flags only: keepBuffered reported dropped")
	}
	for j, tg := range c.Targets {
		if tg.NoRise || tg.Fast || tg.KeepBuffered != 0 {
			t.Errorf("target %d keeps an optional field: %+v", j, tg)
		}
	}
	if !strings.Contains(c.Targets[0].Reason, "refused noRise, fast") || !strings.Contains(c.Targets[1].Reason, "refused keepBuffered, fast") || c.Targets[2].Reason != "" {
		t.Errorf("reasons %q %q %q", c.Targets[0].Reason, c.Targets[1].Reason, c.Targets[2].Reason)
	}
	if !d.Targets[0].NoRise || !d.Targets[1].Fast {
		t.Fatal("withoutOptional changed the committed decision")
	}
}
