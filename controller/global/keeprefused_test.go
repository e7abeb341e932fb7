package global

import (
	"fmt"
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// refusesKeep knows an older local controller's strict refusal of the
// field (HTTP 400 naming keepBuffered as unknown), wrapped or not, and
// nothing else; withoutKeep clears the field on a copy and leaves the
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
		if got := refusesKeep(tc.err); got != tc.want {
			t.Errorf("%s: refusesKeep %v, want %v", name, got, tc.want)
		}
	}
	d := &protocol.DCDecision{DC: "tokyo", Targets: []protocol.VNFTarget{{VNF: "ids", KeepBuffered: 2}, {VNF: "firewall"}}}
	c := withoutKeep(d)
	if c == nil || c.Targets[0].KeepBuffered != 0 || c.Targets[1].VNF != "firewall" {
		t.Fatalf("withoutKeep: %+v", c)
	}
	if d.Targets[0].KeepBuffered != 2 || d.Targets[0].Reason != "" {
		t.Fatalf("withoutKeep changed the committed decision: %+v", d.Targets[0])
	}
	if withoutKeep(c) != nil || withoutKeep(nil) != nil {
		t.Fatal("withoutKeep of a decision without keepBuffered: want nil (nothing to resend)")
	}
}
