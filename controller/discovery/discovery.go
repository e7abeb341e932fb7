// Package discovery owns control-plane service discovery (paper §4.4): one
// DNS server per datacenter, run by the local controller on a loopback
// address, that publishes the non-overloaded P-CSCF and S-CSCF instances of
// its DC. The local controller calls SetRecords whenever an instance becomes
// working, buffered or overloaded; P-CSCFs (Kamailio, with a short DNS cache)
// resolve the S-CSCF pool through it and so follow the changes.
//
// Names served for a service S in zone Z (e.g. "scscf" in "dc0.ims.local."):
//
//	S.Z               A    every address of the pool
//	_sip._udp.S.Z     SRV  priority 10, weight W, port, target a-b-c-d.S.Z
//	a-b-c-d.S.Z       A    a.b.c.d (one per instance)
//	Z                 SOA  (negative answers carry it; minimum = TTL)
//
// W is the instance's weight set by SetWeights (clients choose among the
// targets in proportion to it, RFC 2782), DefaultWeight when none is set.
// Every answer has the same short TTL, so a removed instance leaves every
// cache within one TTL. Names outside the zone are REFUSED; unknown names in
// the zone (and a service with no instances) are NXDOMAIN.
package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultTTL is the TTL of every record when Options.TTL is zero.
const DefaultTTL = time.Second

// DefaultWeight is the SRV weight of an address without one set.
const DefaultWeight = 10

// Server is a small authoritative DNS server for one zone.
type Server struct {
	zone string
	ttl  uint32

	mu       sync.RWMutex
	services map[string][]netip.AddrPort
	weights  map[string]map[netip.AddrPort]uint16
	serial   uint32

	srvMu   sync.Mutex
	servers []*dns.Server
}

// Options configures a Server.
type Options struct {
	// Zone is the DNS zone served, e.g. "dc0.ims.local" (trailing dot optional).
	Zone string
	// TTL of every record; whole seconds, at least 1 s. Zero means DefaultTTL.
	TTL time.Duration
}

// New returns a Server for opts.Zone with no records.
func New(opts Options) (*Server, error) {
	zone := dns.Fqdn(strings.ToLower(strings.TrimSpace(opts.Zone)))
	if zone == "." {
		return nil, errors.New("discovery: Zone: empty")
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("discovery: Zone: %q is not a domain name", opts.Zone)
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl%time.Second != 0 {
		return nil, fmt.Errorf("discovery: TTL: %v must be whole seconds and at least 1s", ttl)
	}
	return &Server{zone: zone, ttl: uint32(ttl / time.Second), services: map[string][]netip.AddrPort{},
		weights: map[string]map[netip.AddrPort]uint16{}, serial: 1}, nil
}

// Zone returns the zone served, with its trailing dot.
func (s *Server) Zone() string { return s.zone }

// Name returns the fully qualified name of a service ("scscf" → "scscf.dc0.ims.local.").
func (s *Server) Name(service string) string { return service + "." + s.zone }

// SRVName returns the SRV owner name of a service's SIP over UDP endpoint.
func (s *Server) SRVName(service string) string { return "_sip._udp." + s.Name(service) }

// ValidService reports why service cannot be a service name (a single DNS
// label of letters, digits and '-', not starting with '_'), or nil.
func ValidService(service string) error {
	if service == "" {
		return errors.New("service: empty")
	}
	if len(service) > 63 {
		return fmt.Errorf("service: %q longer than 63 bytes", service)
	}
	for i, c := range service {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0
		if !ok {
			return fmt.Errorf("service: %q may hold only lower-case letters, digits and inner '-'", service)
		}
	}
	return nil
}

// SetRecords replaces the addresses published for service. An empty list
// withdraws the service. Addresses must be IPv4 with a non-zero port;
// duplicates are dropped. The change is visible to the next query.
func (s *Server) SetRecords(service string, addrs []netip.AddrPort) error {
	if err := ValidService(service); err != nil {
		return fmt.Errorf("discovery: SetRecords: %w", err)
	}
	list := make([]netip.AddrPort, 0, len(addrs))
	for i, a := range addrs {
		if !a.Addr().Is4() {
			return fmt.Errorf("discovery: SetRecords %s: addrs[%d] %v: only IPv4 is served", service, i, a)
		}
		if a.Port() == 0 {
			return fmt.Errorf("discovery: SetRecords %s: addrs[%d] %v: port 0", service, i, a)
		}
		list = append(list, a)
	}
	slices.SortFunc(list, func(a, b netip.AddrPort) int { return a.Compare(b) })
	list = slices.Compact(list)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(list) == 0 {
		delete(s.services, service)
	} else {
		s.services[service] = list
	}
	s.serial++
	return nil
}

// SetWeights replaces the SRV weights of a service's addresses (addresses
// not listed get DefaultWeight; a weight may be 0, which RFC 2782 reserves
// for targets to use only when no other is available). It does not change
// which addresses are published.
func (s *Server) SetWeights(service string, w map[netip.AddrPort]uint16) error {
	if err := ValidService(service); err != nil {
		return fmt.Errorf("discovery: SetWeights: %w", err)
	}
	cp := make(map[netip.AddrPort]uint16, len(w))
	for a, v := range w {
		cp[a] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.weights[service] = cp
	s.serial++
	return nil
}

// weightLocked is the SRV weight of one address of service.
func (s *Server) weightLocked(service string, a netip.AddrPort) uint16 {
	if w, ok := s.weights[service][a]; ok {
		return w
	}
	return DefaultWeight
}

// Records returns a copy of the addresses published for service.
func (s *Server) Records(service string) []netip.AddrPort {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.services[service])
}

// hostLabel names one address: 127.10.2.1 → "127-10-2-1".
func hostLabel(a netip.Addr) string { return strings.ReplaceAll(a.String(), ".", "-") }

// Answer builds the reply to one query. It is pure apart from reading the
// records, and never panics on any message (see FuzzAnswer).
func (s *Server) Answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if req == nil {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = false
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		m.Rcode = dns.RcodeNotImplemented
		if len(req.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
		}
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m
	}
	if !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
	}
	if name == s.zone {
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, s.soa())
		} else {
			m.Ns = append(m.Ns, s.soa())
		}
		return m
	}
	found := false
	rest := strings.TrimSuffix(name, "."+s.zone)
	labels := strings.Split(rest, ".")
	switch {
	case len(labels) == 1: // S.Z
		if addrs, ok := s.services[labels[0]]; ok {
			found = true
			if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
				seen := map[netip.Addr]bool{}
				for _, a := range addrs {
					if seen[a.Addr()] {
						continue
					}
					seen[a.Addr()] = true
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.IP(a.Addr().AsSlice())})
				}
			}
		}
	case len(labels) == 3 && labels[0] == "_sip" && labels[1] == "_udp": // _sip._udp.S.Z
		svc := labels[2]
		if addrs, ok := s.services[svc]; ok {
			found = true
			if q.Qtype == dns.TypeSRV || q.Qtype == dns.TypeANY {
				for _, a := range addrs {
					target := hostLabel(a.Addr()) + "." + s.Name(svc)
					m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: 10, Weight: s.weightLocked(svc, a), Port: a.Port(), Target: target})
					m.Extra = append(m.Extra, &dns.A{
						Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: s.ttl},
						A:   net.IP(a.Addr().AsSlice()),
					})
				}
				m.Extra = dedupA(m.Extra)
			}
		}
	case len(labels) == 2: // a-b-c-d.S.Z
		for _, a := range s.services[labels[1]] {
			if hostLabel(a.Addr()) == labels[0] {
				found = true
				if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.IP(a.Addr().AsSlice())})
				}
				break
			}
		}
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, s.soa())
	}
	return m
}

func dedupA(rrs []dns.RR) []dns.RR {
	seen := map[string]bool{}
	out := rrs[:0]
	for _, rr := range rrs {
		if seen[rr.Header().Name] {
			continue
		}
		seen[rr.Header().Name] = true
		out = append(out, rr)
	}
	return out
}

// soa is the zone's SOA; its minimum (negative-caching TTL) is the record TTL.
// Callers hold s.mu.
func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.ttl},
		Ns:      "ns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  s.serial,
		Refresh: s.ttl, Retry: s.ttl, Expire: s.ttl, Minttl: s.ttl,
	}
}

// ServeDNS implements dns.Handler. Over UDP a reply larger than the
// client's buffer (512 bytes, or its EDNS0 size) is truncated with TC set,
// and the client asks again over TCP (a pool of more than about six
// instances does not fit in 512 bytes).
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := s.Answer(r)
	if _, tcp := w.LocalAddr().(*net.TCPAddr); !tcp {
		size := dns.MinMsgSize
		if r != nil {
			if opt := r.IsEdns0(); opt != nil {
				size = max(int(opt.UDPSize()), dns.MinMsgSize)
			}
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// ListenAndServe starts answering on UDP and TCP at addr ("127.10.0.53:53",
// or "127.0.0.1:0" in tests: TCP then takes the same port as UDP) and
// returns the bound address once both are ready.
// The address must be a loopback one: discovery is a per-machine service here.
// Close stops every listener.
func (s *Server) ListenAndServe(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("discovery: listen address %q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("discovery: listen address %q: not a loopback address", addr)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("discovery: %w", err)
	}
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ln, err := net.Listen("tcp", bound.String())
	if err != nil {
		pc.Close()
		return netip.AddrPort{}, fmt.Errorf("discovery: %w", err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		ready := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(ready) }
		s.srvMu.Lock()
		s.servers = append(s.servers, srv)
		s.srvMu.Unlock()
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-ready:
		case err := <-errc:
			_ = s.Close()
			return netip.AddrPort{}, fmt.Errorf("discovery: serve %s: %w", addr, err)
		}
	}
	return bound, nil
}

// Close stops every listener started by ListenAndServe.
func (s *Server) Close() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown())
	}
	s.servers = nil
	return errors.Join(errs...)
}

// PickSRV chooses one target of an SRV answer as RFC 2782 tells a client
// to: the lowest priority first; among its records, a target with weight w
// is chosen with probability w / (sum of weights), records of weight 0
// only when every record of the priority has weight 0 (each of those then
// equally). rnd draws the random number (seeded by the caller: a test is
// deterministic). It returns nil for an answer with no SRV record. This is
// the client side of the weights (user agents and the tests act like it);
// the server never calls it.
func PickSRV(rrs []dns.RR, rnd func(n uint32) uint32) *dns.SRV {
	var best []*dns.SRV
	for _, rr := range rrs {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		switch {
		case len(best) == 0 || srv.Priority < best[0].Priority:
			best = []*dns.SRV{srv}
		case srv.Priority == best[0].Priority:
			best = append(best, srv)
		}
	}
	if len(best) == 0 {
		return nil
	}
	var sum uint32
	for _, s := range best {
		sum += uint32(s.Weight)
	}
	if sum == 0 {
		return best[rnd(uint32(len(best)))]
	}
	// RFC 2782: running sums over the records, zero weights first; the first
	// record whose running sum is ≥ a uniform number in [0, sum] — here
	// (0, sum] so that a zero-weight record is never chosen when others
	// have weight
	x := rnd(sum) + 1
	var run uint32
	for _, s := range best {
		run += uint32(s.Weight)
		if run >= x {
			return s
		}
	}
	return best[len(best)-1]
}
