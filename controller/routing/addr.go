package routing

import (
	"fmt"
	"net/netip"
)

// IPv4 is an IPv4 address as a big-endian number: byte 1 of the paper is
// the most significant byte.
type IPv4 uint32

// ParseIPv4 parses a dotted-quad IPv4 address.
func ParseIPv4(s string) (IPv4, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return 0, ferr("ip", "%q is not an IP address: %v", s, err)
	}
	return IPv4FromAddr(a)
}

// IPv4FromAddr converts an IPv4 (or IPv4-mapped IPv6) netip.Addr.
func IPv4FromAddr(a netip.Addr) (IPv4, error) {
	a = a.Unmap()
	if !a.Is4() {
		return 0, ferr("ip", "%v is not an IPv4 address (the routing bytes live in an IPv4 destination)", a)
	}
	b := a.As4()
	return IPv4(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])), nil
}

// Addr returns the address as a netip.Addr.
func (a IPv4) Addr() netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

func (a IPv4) String() string { return a.Addr().String() }

// Endpoint is an IP address and a UDP/TCP port.
type Endpoint struct {
	IP   IPv4
	Port uint16
}

func (e Endpoint) String() string { return fmt.Sprintf("%s:%d", e.IP, e.Port) }

// Call is what the P-CSCF of an entry datacenter learns when a SIP INVITE/OK
// exchange ends (paper 4.4): enough for the four Table 1 mappings.
//
//	caller entry DC  1. (caller IP, caller send port) → callee IP            entry of the caller's flow
//	                 2. (callee IP, callee send port) → (caller entry IP,    exit of the callee's flow
//	                                                     caller IP, caller receive port)
//	callee entry DC  3. (callee IP, callee send port) → caller IP            entry of the callee's flow
//	                 4. (caller IP, caller send port) → (callee entry IP,    exit of the caller's flow
//	                                                     callee IP, callee receive port)
//
// CallerDC and CalleeDC are the entry datacenters the location service gave
// the two users; mappings 1 and 3 carry them as the flow's exit datacenter.
type Call struct {
	CallerDC, CalleeDC             int
	CallerIP, CalleeIP             IPv4
	CallerSendPort, CallerRecvPort uint16
	CalleeSendPort, CalleeRecvPort uint16
	// CallerEntryIP is the address on the caller's entry datacenter the caller
	// sends media to (learned from the modified SIP OK); CalleeEntryIP the one
	// on the callee's entry datacenter the callee sends media to (learned from
	// the modified INVITE).
	CallerEntryIP, CalleeEntryIP IPv4
}

func (c Call) validate(n int) error {
	if c.CallerDC < 0 || c.CallerDC >= n {
		return ferr("call.callerDC", "DC index %d is not one of the %d datacenters", c.CallerDC, n)
	}
	if c.CalleeDC < 0 || c.CalleeDC >= n {
		return ferr("call.calleeDC", "DC index %d is not one of the %d datacenters", c.CalleeDC, n)
	}
	for _, p := range []struct {
		f string
		v uint16
	}{{"call.callerSendPort", c.CallerSendPort}, {"call.callerRecvPort", c.CallerRecvPort},
		{"call.calleeSendPort", c.CalleeSendPort}, {"call.calleeRecvPort", c.CalleeRecvPort}} {
		if p.v == 0 {
			return ferr(p.f, "port 0 is not a media port")
		}
	}
	if c.CallerIP == c.CalleeIP && c.CallerSendPort == c.CalleeSendPort {
		return ferr("call", "caller and callee send from the same endpoint %s", Endpoint{c.CallerIP, c.CallerSendPort})
	}
	return nil
}

// entryRow is mapping 1 or 3: the peer and the flow's exit datacenter.
type entryRow struct {
	peer IPv4
	exit int
}

// ExitTranslation is mapping 2 or 4 applied at the exit datacenter: the
// flow's source address becomes SrcIP (the receiver's entry IP, the address
// the receiver learned for the sender), its destination becomes DstIP:DstPort
// (the receiver and its receive port). The source port is unchanged.
//
// The paper's text says "substitute the caller's source IP by the callee's
// IP"; the receiver would then see packets from itself, so, as the mapping's
// first field suggests, the source becomes the receiver's entry IP.
type ExitTranslation struct {
	SrcIP   IPv4
	DstIP   IPv4
	DstPort uint16
}

func (x ExitTranslation) String() string {
	return fmt.Sprintf("src→%s dst→%s:%d", x.SrcIP, x.DstIP, x.DstPort)
}
