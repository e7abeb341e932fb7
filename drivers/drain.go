package drivers

import (
	"context"
	"time"
)

// Drainer is an optional capability of a Driver, declared here the way
// cluster-autoscaler's cloud provider declares its optional methods: a
// caller that wants it type-asserts (d.(drivers.Drainer)) and falls back to
// Terminate when the backend lacks it. A Drainer can terminate an instance
// without cutting the sessions it carries (drivers/local: SIP dialogs and
// transactions of a Kamailio instance).
type Drainer interface {
	Driver
	// Drain waits until the instance carries nothing (the backend's rule,
	// e.g. idle on two polls in a row) or until timeout has passed, then
	// terminates it. The caller must already have stopped sending it new
	// sessions (taken it out of DNS, out of the routing tables). An instance
	// that is already gone is not an error (Finished is true).
	Drain(ctx context.Context, dc, id string, timeout time.Duration) (DrainResult, error)
}

// InFlight is the work an instance still carries.
type InFlight struct {
	Transactions int64 // requests being processed (SIP: tmx:active_transactions)
	Sessions     int64 // established sessions (SIP: dialog:active_dialogs)
}

// Idle reports whether nothing is in flight.
func (l InFlight) Idle() bool { return l.Transactions == 0 && l.Sessions == 0 }

// DrainResult says how a Drain ended.
type DrainResult struct {
	Idle     bool          // the instance was idle when terminated, else the timeout passed
	Waited   time.Duration // clock time from Drain to the termination
	Last     InFlight      // the last load read
	LastErr  error         // the last error reading the load, if any
	Finished bool          // the instance is gone
}
