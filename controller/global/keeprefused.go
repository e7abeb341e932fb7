package global

import (
	"errors"
	"strings"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// keepBufferedField is VNFTarget.KeepBuffered's name on the wire.
const keepBufferedField = "keepBuffered"

// keepUnknown is how an older local controller's problem answer (JSON,
// transport.BodyError) names the field: encoding/json's
// `unknown field "keepBuffered"`, its quotes escaped in the detail string.
const keepUnknown = `unknown field \"` + keepBufferedField + `\"`

// refusesKeep reports whether err is a local controller's refusal of a
// decision for carrying VNFTarget.KeepBuffered: HTTP 400 whose problem
// detail names exactly that field as unknown (an older local controller
// decodes requests strictly). A DC whose local controller advertised the
// feature at step 2 and was rolled back before step 4 answers so.
func refusesKeep(err error) bool {
	var se *transport.StatusError
	return errors.As(err, &se) && se.Code == 400 && strings.Contains(se.Body, keepUnknown)
}

// withoutKeep is d with every target's KeepBuffered cleared (nil: d had
// none to clear). d is not changed: its targets are the committed
// decision's.
func withoutKeep(d *protocol.DCDecision) *protocol.DCDecision {
	if d == nil {
		return nil
	}
	var out *protocol.DCDecision
	for j, tg := range d.Targets {
		if tg.KeepBuffered == 0 {
			continue
		}
		if out == nil {
			c := *d
			c.Targets = append([]protocol.VNFTarget(nil), d.Targets...)
			out = &c
		}
		out.Targets[j].KeepBuffered = 0
		out.Targets[j].Reason += "; the local controller refused keepBuffered (rolled back after its step-2 report): sent without it"
	}
	return out
}
