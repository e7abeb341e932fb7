package drivers

import (
	"maps"
	"sync"
)

// Subscribers is a driver's set of event handlers, called in subscription
// order. Drivers deliver through it outside their own lock, so a handler may
// call back into the driver.
type Subscribers struct {
	mu   sync.Mutex
	seq  uint64
	subs []subscriber
}

type subscriber struct {
	k uint64
	h EventHandler
}

// Subscribe adds h; the returned function removes it.
func (s *Subscribers) Subscribe(h EventHandler) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	k := s.seq
	s.subs = append(s.subs, subscriber{k, h})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, x := range s.subs {
			if x.k == k {
				s.subs = append(s.subs[:i:i], s.subs[i+1:]...)
				return
			}
		}
	}
}

// Emit calls every current handler with ev, in subscription order.
func (s *Subscribers) Emit(ev Event) {
	s.mu.Lock()
	hs := make([]EventHandler, len(s.subs))
	for i, x := range s.subs {
		hs[i] = x.h
	}
	s.mu.Unlock()
	for _, h := range hs {
		h(ev)
	}
}

// Clone returns a copy of the instance that shares no map with it.
func (in Instance) Clone() Instance {
	out := in
	out.Metadata = maps.Clone(in.Metadata)
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	return out
}
