// Package drivers owns the cloud boundary: one Driver interface that every
// backend implements (fake for tests, sim for the simulator, openstack through
// gophercloud, local for processes on this machine). Controllers, the
// simulator and the daemon use a backend only through this interface.
//
// Instance lifecycle as a driver reports it:
//
//	Launch ──▶ booting ──▶ active ──▶ gone (Terminate, or vanished)
//	              │           │
//	              └──▶ error ◀┘  (the controller terminates and replaces it)
package drivers

import (
	"context"
	"errors"
	"time"
)

// State is an instance's state as the cloud sees it.
type State string

// Instance states reported by drivers.
const (
	StateBooting State = "booting"
	StateActive  State = "active"
	StateError   State = "error"
	StateGone    State = "gone"
)

// Metadata keys that mark an instance as ims-orch's own.
const (
	MetaManagedBy = "ims-orch.managed-by" // value ManagedBy
	MetaDC        = "ims-orch.dc"
	MetaVNF       = "ims-orch.vnf"
	MetaPool      = "ims-orch.pool"
	MetaID        = "ims-orch.instance-id"
)

// ManagedBy is the value of MetaManagedBy on ims-orch's instances.
const ManagedBy = "ims-orch"

// Spec describes an instance to launch.
type Spec struct {
	// ID is ims-orch's instance id; a driver must make Launch idempotent on it
	// (a retried Launch with the same ID never makes a second instance).
	ID       string
	DC       string
	VNF      string
	Pool     string // N+k pool (anti-affinity group); "" means DC/VNF
	Image    string
	Flavor   string
	Networks []string
	KeyName  string
	// UserData is handed to the instance (its statistics agent's settings).
	UserData []byte
	// Metadata is extra metadata; drivers add the Meta* keys themselves.
	Metadata map[string]string
	// Replaces is the ID of a failed instance this one replaces (""
	// otherwise). A driver may stop what is left of it and hand its address
	// to the replacement (drivers/local does: in-dialog requests, Path and
	// Record-Route headers naming the failed instance reach its successor).
	Replaces string
}

// DefaultPool returns the spec's pool, DC/VNF when it names none.
func (s Spec) DefaultPool() string {
	if s.Pool != "" {
		return s.Pool
	}
	return s.DC + "/" + s.VNF
}

// CloudMetadata returns a copy of the spec's metadata with the Meta* keys
// that mark the instance as ims-orch's, in pool pool.
func (s Spec) CloudMetadata(pool string) map[string]string {
	md := make(map[string]string, len(s.Metadata)+5)
	for k, v := range s.Metadata {
		md[k] = v
	}
	md[MetaManagedBy] = ManagedBy
	md[MetaDC] = s.DC
	md[MetaVNF] = s.VNF
	md[MetaPool] = pool
	md[MetaID] = s.ID
	return md
}

// Instance is an instance as the cloud reports it.
type Instance struct {
	ID       string // ims-orch instance id (Spec.ID)
	CloudID  string // the backend's own id (Nova server UUID, pid, ...)
	DC       string
	VNF      string
	Pool     string
	State    State
	Address  string // where the instance's service listens (IP or IP:port)
	Host     string // hypervisor / host, when the backend tells
	Created  time.Time
	Metadata map[string]string
}

// Event is a state change of one instance.
type Event struct {
	ID     string
	DC     string
	VNF    string
	State  State
	Reason string
	At     time.Time
}

// EventHandler receives state changes. Drivers call it from their own
// goroutine (or, in virtual time, from the clock's); it must not block.
type EventHandler func(Event)

// Driver is a cloud backend. All methods are safe for concurrent use.
type Driver interface {
	// Launch starts an instance and returns once the cloud has accepted it
	// (State booting or already active). Errors wrap ErrQuota, ErrCapacity or
	// ErrInvalid where they apply.
	Launch(ctx context.Context, spec Spec) (Instance, error)
	// Terminate destroys an instance of ours. Terminating an instance that is
	// already gone is not an error.
	Terminate(ctx context.Context, dc, id string) error
	// List returns the instances of ours in a datacenter ("" = every DC).
	// An instance whose Launch has not returned yet may be missing (drivers/
	// local lists it once its process started, and a launch that fails is
	// never listed and sends no event): a caller that adopts what List
	// returns (controller/local's Start) lists before it launches in that
	// DC, not beside a Launch of its own or of another controller.
	List(ctx context.Context, dc string) ([]Instance, error)
	// Subscribe registers h for every later state change; it returns a
	// function that unregisters it.
	Subscribe(h EventHandler) (cancel func())
}

// Killer is implemented by drivers whose Terminate lets an instance finish
// its work first (the SIP glue's Terminate drains a CSCF for up to its drain
// timeout): Kill stops it at once. The local controller kills failed
// instances instead of terminating them — a failed instance is never drained.
// Killing an instance that is already gone is not an error.
type Killer interface {
	Kill(ctx context.Context, dc, id string) error
}

// Errors drivers wrap so callers can tell failures apart with errors.Is.
var (
	// ErrQuota: the project's quota is exhausted; retry later, never delete healthy instances.
	ErrQuota = errors.New("quota exceeded")
	// ErrCapacity: the cloud has no host for the instance (nova "No valid host").
	ErrCapacity = errors.New("no capacity")
	// ErrInvalid: the spec is wrong (unknown image or flavor...); retrying will not help.
	ErrInvalid = errors.New("invalid instance spec")
	// ErrNotFound: no such instance.
	ErrNotFound = errors.New("instance not found")
	// ErrBackoff: nothing was tried: the driver holds the request back
	// after earlier failures (the OpenStack driver's delete backoff);
	// calling again later is expected, the call is not a new failure.
	ErrBackoff = errors.New("held back after earlier failures")
)
