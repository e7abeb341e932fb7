// Package transport owns how interval-protocol requests travel between the
// global controller and the local controllers: the Transport interface the
// global side sends through, an in-memory transport driven by a clock with
// seeded loss, delay (hence reordering) and duplication for tests and the
// simulator, an authenticated HTTP/JSON transport (a client for the global
// side, an http.Handler for the local side) and a lossy wrapper. It also
// carries the workload reports of local controllers in other processes to
// the global leader: WorkloadHandler on the global nodes, and a Reporter
// (bounded queue, drop-oldest, bounded retries, leader-seeking over the
// nodes) on the local side.
//
// Transports do not retransmit: the global round engine owns the 500 ms
// re-send timer, and re-sends carry the same header so a participant answers
// a duplicate without acting twice.
package transport

import (
	"math/rand/v2"
	"sync"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Participant is the local controller as the protocol sees it.
type Participant interface {
	Handle(protocol.Request) protocol.Response
}

// Deliver receives the answer to a request (or the error that prevented it).
// It may be called zero times (message lost), once, or more than once
// (duplicated answers); it may run on any goroutine.
type Deliver func(protocol.Response, error)

// Transport sends one request to a datacenter's local controller. Send must
// not block on the network: the answer arrives through deliver.
type Transport interface {
	Send(dc string, req protocol.Request, deliver Deliver)
}

// Lossy wraps a transport and drops a fraction of the requests it is given
// (before they are sent), drawing from a seeded generator.
type Lossy struct {
	inner Transport
	loss  float64
	mu    sync.Mutex
	rng   *rand.Rand
	drops int
}

// NewLossy drops each request with probability loss (0..1).
func NewLossy(inner Transport, loss float64, seed uint64) *Lossy {
	return &Lossy{inner: inner, loss: loss, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Send drops the request or passes it on.
func (l *Lossy) Send(dc string, req protocol.Request, deliver Deliver) {
	l.mu.Lock()
	drop := l.rng.Float64() < l.loss
	if drop {
		l.drops++
	}
	l.mu.Unlock()
	if drop {
		return
	}
	l.inner.Send(dc, req, deliver)
}

// Dropped returns how many requests were dropped.
func (l *Lossy) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.drops
}
