package local

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Address plan (every address is in 127.0.0.0/8, so nothing leaves the machine
// and Linux answers on all of it without configuration):
//
//	127.(10+dc).0.53       the DC's discovery DNS server (port 53)
//	127.(10+dc).vnf.n      instance n (1..254) of VNF code vnf in DC dc
//	                       vnf: 1 = P-CSCF, 2 = S-CSCF
//	dc: 0..245             (second octet 10..255)
//
// On each instance address: SIP on UDP 5060, JSON-RPC datagrams on UDP 8090,
// Kamailio's binrpc control socket on UDP 2049. Test harnesses (SIPp) use
// 127.0.0.x, which the plan never hands out.
const (
	SIPPort = 5060
	RPCPort = 8090
	CtlPort = 2049
	DNSPort = 53

	firstDCOctet = 10
	// MaxDC is the highest DC index the plan holds.
	MaxDC = 255 - firstDCOctet
	// MaxPerVNF is the number of instances of one VNF one DC can hold.
	MaxPerVNF = 254
)

// Role is what a Kamailio instance does.
type Role string

// The roles drivers/local runs.
const (
	RolePCSCF Role = "pcscf"
	RoleSCSCF Role = "scscf"
)

// code is the VNF's third octet in the address plan.
func (r Role) code() byte {
	switch r {
	case RolePCSCF:
		return 1
	case RoleSCSCF:
		return 2
	}
	return 0
}

// ParseRole maps a Spec.VNF name ("P-CSCF", "pcscf", "scscf"...) to its role.
func ParseRole(vnf string) (Role, error) {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(vnf))
	switch Role(n) {
	case RolePCSCF, RoleSCSCF:
		return Role(n), nil
	}
	return "", fmt.Errorf("VNF: %q: drivers/local runs only P-CSCF and S-CSCF", vnf)
}

// ParseDCIndex reads a DC index from a DC name: "3", "dc3", "DC-3".
func ParseDCIndex(dc string) (int, error) {
	i := len(dc)
	for i > 0 && dc[i-1] >= '0' && dc[i-1] <= '9' {
		i--
	}
	if i == len(dc) {
		return 0, fmt.Errorf("DC: %q: no trailing DC number", dc)
	}
	n, err := strconv.Atoi(dc[i:])
	if err != nil || n > MaxDC {
		return 0, fmt.Errorf("DC: %q: index out of the address plan (0..%d)", dc, MaxDC)
	}
	return n, nil
}

// InstanceAddr is the plan's address of instance n of role in DC dc.
func InstanceAddr(dc int, role Role, n int) (netip.Addr, error) {
	if dc < 0 || dc > MaxDC {
		return netip.Addr{}, fmt.Errorf("DC index %d: outside 0..%d", dc, MaxDC)
	}
	if role.code() == 0 {
		return netip.Addr{}, fmt.Errorf("role %q: unknown", role)
	}
	if n < 1 || n > MaxPerVNF {
		return netip.Addr{}, fmt.Errorf("instance number %d: outside 1..%d", n, MaxPerVNF)
	}
	a := netip.AddrFrom4([4]byte{127, byte(firstDCOctet + dc), role.code(), byte(n)})
	if err := checkLoopback(a); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// DNSAddr is the plan's address of DC dc's discovery DNS server.
func DNSAddr(dc int) (netip.AddrPort, error) {
	if dc < 0 || dc > MaxDC {
		return netip.AddrPort{}, fmt.Errorf("DC index %d: outside 0..%d", dc, MaxDC)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(firstDCOctet + dc), 0, 53}), DNSPort), nil
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

func checkLoopback(a netip.Addr) error {
	if !loopback.Contains(a) {
		return errors.New("address " + a.String() + " is outside 127.0.0.0/8")
	}
	return nil
}

// addrPlan hands out the lowest free instance number per (DC, role). With
// a quarantine, an address released less than quarantine ago is handed out
// only when no other one is free: stale DNS answers and Record-Routes of a
// dead instance then do not reach its successor. A suspect address (its
// instance exited before it served: it may have died of its address) is
// handed out again only once held says no other process holds a port of
// it, or when no other one is free.
type addrPlan struct {
	used       map[netip.Addr]bool
	quarantine time.Duration
	now        func() time.Time
	released   map[netip.Addr]time.Time
	suspect    map[netip.Addr]bool
	// held reports whether another process holds a port of an address
	// (portsHeld; nil: none does).
	held func(netip.Addr) bool
}

func (p *addrPlan) alloc(dc int, role Role) (netip.Addr, error) {
	if p.used == nil {
		p.used = map[netip.Addr]bool{}
	}
	for pass := 0; pass < 2; pass++ {
		for n := 1; n <= MaxPerVNF; n++ {
			a, err := InstanceAddr(dc, role, n)
			if err != nil {
				return netip.Addr{}, err
			}
			if p.used[a] {
				continue
			}
			if at, ok := p.released[a]; pass == 0 && (ok && p.now().Sub(at) < p.quarantine || !p.trusted(a)) {
				continue
			}
			p.used[a] = true
			delete(p.released, a)
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("DC %d %s: all %d addresses in use", dc, role, MaxPerVNF)
}

// takeover hands out address a (a failed instance's, for its replacement)
// if it is free and belongs to dc and role; quarantine does not apply.
func (p *addrPlan) takeover(a netip.Addr, dc int, role Role) bool {
	b := a.As4()
	if !a.Is4() || int(b[1]) != firstDCOctet+dc || b[2] != role.code() || p.used[a] || !p.trusted(a) {
		return false
	}
	if p.used == nil {
		p.used = map[netip.Addr]bool{}
	}
	p.used[a] = true
	delete(p.released, a)
	return true
}

func (p *addrPlan) release(a netip.Addr) {
	delete(p.used, a)
	if p.quarantine > 0 && p.now != nil {
		if p.released == nil {
			p.released = map[netip.Addr]time.Time{}
		}
		p.released[a] = p.now()
	}
}

// distrust marks a as suspect: its instance exited before it served.
func (p *addrPlan) distrust(a netip.Addr) {
	if p.suspect == nil {
		p.suspect = map[netip.Addr]bool{}
	}
	p.suspect[a] = true
}

// trusted reports whether a may be handed out: it is not suspect, or no
// other process holds a port of it any more (then it is suspect no more).
func (p *addrPlan) trusted(a netip.Addr) bool {
	if !p.suspect[a] {
		return true
	}
	if p.held != nil && p.held(a) {
		return false
	}
	delete(p.suspect, a)
	return true
}

// portsHeld reports whether another process holds one of the ports a
// Kamailio on a listens on (SIP on UDP and TCP, JSON-RPC, binrpc): started
// there, it would exit with "bind: Address already in use".
func portsHeld(a netip.Addr) bool {
	for _, l := range []struct {
		network string
		port    uint16
	}{{"udp", SIPPort}, {"tcp", SIPPort}, {"udp", RPCPort}, {"udp", CtlPort}} {
		ap := netip.AddrPortFrom(a, l.port).String()
		var c io.Closer
		var err error
		if l.network == "tcp" {
			c, err = net.Listen(l.network, ap)
		} else {
			c, err = net.ListenPacket(l.network, ap)
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return true
		}
		if err == nil {
			_ = c.Close()
		}
	}
	return false
}
