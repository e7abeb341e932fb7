package local

import (
	"errors"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
)

// State is an instance's state in the local controller.
type State string

// Instance states; see the package comment for the transitions.
const (
	StateBooting  State = "booting"
	StateNormal   State = "normal"
	StateOverload State = "overload"
	StateBuffered State = "buffered"
	StateDraining State = "draining" // expired from the buffer, destroyed when its flows reach 0
	StateFailed   State = "failed"
)

// Stats is one statistics report of an instance's agent (every second).
type Stats struct {
	// At is when the agent measured; zero means now.
	At      time.Time `json:"at"`
	CPU     float64   `json:"cpu"`     // percent
	Mem     float64   `json:"mem"`     // percent
	PktRate float64   `json:"pktRate"` // input packets/s
	Flows   int       `json:"flows"`   // active flows (calls) through the instance
	// FlowsUnknown: this report could not count the instance's flows (the
	// real data plane when its switch's rules could not be read), so
	// Flows 0 does not say it is empty: neither the draining rules nor
	// TrimEmpty destroy the instance on it (the drain timeout still
	// applies).
	FlowsUnknown bool `json:"flowsUnknown,omitempty"`
}

// Instance is a copy of one registry entry.
type Instance struct {
	ID         string        `json:"id"`
	VNF        string        `json:"vnf"`
	State      State         `json:"state"`
	CloudState drivers.State `json:"cloudState"`
	CloudID    string        `json:"cloudId,omitempty"`
	Address    string        `json:"address,omitempty"`
	Created    time.Time     `json:"created"`
	// BufferedIn is the interval the instance was buffered in (buffered, draining).
	BufferedIn uint64 `json:"bufferedIn,omitempty"`
	// Last is the last statistics report (zero if none yet).
	Last Stats `json:"last"`
	// Why says why the instance exists (its create action's reason and detail).
	Why string `json:"why,omitempty"`
	// FailReason says why a failed instance failed.
	FailReason string `json:"failReason,omitempty"`
}

// Counts are one VNF's instance counts (for metrics and the API).
type Counts struct {
	Booting  int `json:"booting"`
	Normal   int `json:"normal"`
	Overload int `json:"overload"`
	Buffered int `json:"buffered"`
	Draining int `json:"draining"`
	Failed   int `json:"failed"`
	// Target is the working count the controller maintains (last proactive
	// target, raised by reactive scale-outs, at least Min).
	Target int `json:"target"`
	// Churn counts, since the start, instances reused from the buffer at
	// most ChurnIntervals intervals after they were buffered.
	Churn int `json:"churn"`
	// Hold is the operator's manual floor or ceiling in force (manual.go).
	Hold *Hold `json:"hold,omitempty"`
	// Backoff is the VNF's crash loop (Config.CrashBackoff), nil when none.
	Backoff *Backoff `json:"backoff,omitempty"`
}

// Working returns booting + normal + overload.
func (c Counts) Working() int { return c.Booting + c.Normal + c.Overload }

// ActionKind is what a scale action did.
type ActionKind string

// Action kinds.
const (
	KindCreate  ActionKind = "create"
	KindReuse   ActionKind = "reuse"
	KindBuffer  ActionKind = "buffer"
	KindDestroy ActionKind = "destroy"
	KindReplace ActionKind = "replace"
	// KindHold: an operator's manual hold (floor or ceiling) changed a
	// round's target; no instance moved because of it (InstanceID empty).
	KindHold ActionKind = "hold"
	// KindBackoff: the crash-loop backoff held a replacement back
	// (InstanceID: the failed instance), or ended (InstanceID empty).
	KindBackoff ActionKind = "backoff"
)

// Reason is why a scale action was taken.
type Reason string

// Action reasons.
const (
	ReasonProactive   Reason = "proactive"   // the global controller's decision (step 4), or Min at start
	ReasonManual      Reason = "manual"      // an operator's scale request (API / CLI)
	ReasonReactive    Reason = "reactive"    // a majority of the VNF's instances overloaded
	ReasonReplacement Reason = "replacement" // a working instance failed
	ReasonExpiry      Reason = "expiry"      // buffered for τ intervals
	ReasonFailure     Reason = "failure"     // destroying a failed instance
	// ReasonUnderload: between rounds, the VNF's measured load fitted on
	// one working instance fewer (Config.ScaleIn).
	ReasonUnderload Reason = "underload"
)

// Action is one scale action, for explainability.
type Action struct {
	At         time.Time  `json:"at"`
	DC         string     `json:"dc"`
	VNF        string     `json:"vnf"`
	Kind       ActionKind `json:"kind"`
	Reason     Reason     `json:"reason"`
	InstanceID string     `json:"instanceId"`
	Interval   uint64     `json:"interval"`
	Detail     string     `json:"detail,omitempty"`
}

// RoutableInstance is an instance that may carry flows: active in the cloud,
// normal or overloaded, not buffered.
type RoutableInstance struct {
	ID         string `json:"id"`
	Address    string `json:"address"`
	Overloaded bool   `json:"overloaded"`
}

// PathStore receives the path sets of the two-stage update (paper 5, 5.4):
// StoreNext on step 4, Enter on step 5. Implementations must not call back
// into the Controller.
type PathStore interface {
	StoreNext(interval uint64, paths []protocol.PathEntry)
	Enter(interval uint64)
}

// InstanceSink receives the routable instances of a VNF (sorted by ID)
// whenever that set or an overload state changes. It is called with the
// controller's lock held and must not call back into the Controller.
type InstanceSink interface {
	SetInstances(vnf string, insts []RoutableInstance)
}

// InstanceForgetter is an InstanceSink that also learns when an instance
// is gone from the cloud (destroyed, or vanished): the controller calls
// Forget on every gone event of its datacenter, also for an instance it
// does not know, with its lock held (the rules of SetInstances apply). A
// routing table frees the instance's index then; a sink that wraps another
// passes it on (ForgetIn).
type InstanceForgetter interface {
	Forget(vnf, id string)
}

// ForgetIn calls s.Forget when s is an InstanceForgetter.
func ForgetIn(s InstanceSink, vnf, id string) {
	if f, ok := s.(InstanceForgetter); ok {
		f.Forget(vnf, id)
	}
}

type nopPaths struct{}

func (nopPaths) StoreNext(uint64, []protocol.PathEntry) {}
func (nopPaths) Enter(uint64)                           {}

type nopSink struct{}

func (nopSink) SetInstances(string, []RoutableInstance) {}

// PreferNormal returns the instances new flows may use: the normal ones if
// there are any, else all of them (paper 4.3: avoid overloaded instances
// while normal ones are available).
func PreferNormal(insts []RoutableInstance) []RoutableInstance {
	var normal []RoutableInstance
	for _, in := range insts {
		if !in.Overloaded {
			normal = append(normal, in)
		}
	}
	if len(normal) > 0 {
		return normal
	}
	return insts
}

// ErrUnknownInstance is returned for statistics of an instance the
// controller does not know.
var ErrUnknownInstance = errors.New("unknown instance")

// ring is a bounded history of actions.
type ring struct {
	buf  []Action
	next int
	full bool
}

func (r *ring) add(a Action) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = a
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring) all() []Action {
	if !r.full {
		return append([]Action(nil), r.buf[:r.next]...)
	}
	out := make([]Action, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
