// Package instbound owns the one bound on how many working instances of a
// VNF one datacenter may be asked to run: what its routing table can address
// for a data-plane stage, and a sanity limit for every VNF. Policy limits
// (API, FSM), configured VNF minimums and maximums, proactive targets and
// manual scale requests are all checked against it, so a value the system
// cannot route or run is refused where it is written, not found out by the
// local controller launching it.
//
// The bound of a data-plane stage in a topology of n datacenters is
// min(Sanity, 256 − n): a stage owns one byte of the destination address
// (routing package doc), whose values 0..n−1 name datacenters and n..255 the
// stage's instances in one datacenter. With the paper's 4 datacenters that is
// 252. Control-plane VNFs (P-CSCF, S-CSCF) are not addressed by the routing
// table and get Sanity.
package instbound

import "fmt"

// Sanity bounds the working instances of any VNF in one datacenter.
const Sanity = 10000

// addressBytes is how many values one routing byte holds.
const addressBytes = 256

// RoutableSlots is how many instances of one data-plane stage a datacenter's
// routing table can address in a topology of n datacenters (256 − n; 0 when
// n is out of range).
func RoutableSlots(n int) int {
	if n < 1 || n >= addressBytes {
		return 0
	}
	return addressBytes - n
}

// PerDC is the bound of one VNF in one datacenter: min(Sanity,
// RoutableSlots(n)) for a data-plane stage, Sanity otherwise.
func PerDC(n int, dataPlane bool) int {
	if dataPlane {
		return min(Sanity, RoutableSlots(n))
	}
	return Sanity
}

// Check returns an error naming field when v is above the bound of a VNF.
func Check(field string, v, n int, dataPlane bool) error {
	b := PerDC(n, dataPlane)
	if v <= b {
		return nil
	}
	if dataPlane && b < Sanity {
		return fmt.Errorf("%s: %d is above %d, the instances of a data-plane stage one datacenter can route (256 − %d datacenters)", field, v, b, n)
	}
	return fmt.Errorf("%s: %d is above the sanity limit of %d working instances per datacenter", field, v, b)
}
