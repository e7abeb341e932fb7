package global

import (
	"errors"
	"strings"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// optionalFields are the VNFTarget fields sent only to a DC that
// advertised their feature at step 2, by their names on the wire:
// KeepBuffered (protocol.FeatureKeepBuffered), NoRise and Fast
// (protocol.FeatureNoRise).
var optionalFields = []string{"keepBuffered", "noRise", "fast"}

// refusesOptional reports whether err is a local controller's refusal of
// a decision for carrying one of the optionalFields: HTTP 400 whose
// problem detail names exactly that field as unknown (an older local
// controller decodes requests strictly; encoding/json's
// `unknown field "noRise"`, its quotes escaped in the detail string). A DC
// whose local controller advertised the feature at step 2 and was rolled
// back before step 4 answers so.
func refusesOptional(err error) bool {
	var se *transport.StatusError
	if !errors.As(err, &se) || se.Code != 400 {
		return false
	}
	for _, f := range optionalFields {
		if strings.Contains(se.Body, `unknown field \"`+f+`\"`) {
			return true
		}
	}
	return false
}

// withoutOptional is d with every target's optional fields (KeepBuffered,
// NoRise, Fast) cleared (nil: d had none to clear), and whether a
// KeepBuffered was among them. d is not changed: its targets are the
// committed decision's.
func withoutOptional(d *protocol.DCDecision) (_ *protocol.DCDecision, keep bool) {
	if d == nil {
		return nil, false
	}
	var out *protocol.DCDecision
	for j, tg := range d.Targets {
		var gone []string
		if tg.KeepBuffered != 0 {
			gone, keep = append(gone, "keepBuffered"), true
		}
		if tg.NoRise {
			gone = append(gone, "noRise")
		}
		if tg.Fast {
			gone = append(gone, "fast")
		}
		if len(gone) == 0 {
			continue
		}
		if out == nil {
			c := *d
			c.Targets = append([]protocol.VNFTarget(nil), d.Targets...)
			out = &c
		}
		out.Targets[j].KeepBuffered, out.Targets[j].NoRise, out.Targets[j].Fast = 0, false, false
		out.Targets[j].Reason += "; the local controller refused " + strings.Join(gone, ", ") + " (rolled back after its step-2 report): sent without it"
	}
	return out, keep
}
