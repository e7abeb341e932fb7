// Package routing owns data-plane flow routing inside one datacenter (paper
// 5.3 and 5.4): the interval tag written into a new flow at its entry
// datacenter, the per-stage instance and next-datacenter bytes written into
// the destination IPv4 address, the three path sets (previous, current, next
// interval) a datacenter routes by, smallest-workload-first instance
// selection (or packing up to a limit, Table.SetPackLimit; overloaded
// instances with fewer flows beyond a spread limit, Table.SetSpreadLimit) and
// where that rule would place the next few flows, for a data plane that fixes
// the split of new flows in advance (Table.Shares: a switch's tag rules for
// tunnel arrivals),
// the Table 1 address mappings used to enter and leave the chain,
// and the OpenFlow-style rule specifications a switch driver installs.
//
// The package is pure: no I/O, no clock, no goroutines. A Table is owned by
// the local controller of one datacenter, which feeds it path sets (protocol
// step 4 and 5), instance workloads and call mappings, and asks it to Route
// the first packet of every new flow (the OpenFlow Packet_IN). A Table is not
// safe for concurrent use; the owner serialises calls.
//
// # Flow tag (destination port, 16 bits)
//
// The entry datacenter overwrites the flow's UDP/TCP destination port with
// the tag; the exit datacenter restores a real port (Table 1 mapping 4).
//
//	bit   15 ........ 9   8 ........ 2   1 .. 0
//	      entry DC (7)    exit DC (7)    interval mod 4 (2)
//
//	port = entry<<9 | exit<<2 | interval&3        up to MaxDCs = 128 DCs
//
// A flow 0→0 tagged in an interval ≡ 0 (mod 4) gets port 0. It never leaves
// the overlay with it: the tag only travels between this system's switches
// and tunnels and the exit translation always rewrites the port. A deployment
// with more than 128 datacenters, or that must keep the destination port,
// carries the same three fields in a VXLAN VNI (24 bits: 11+11+2 bits gives
// 2048 DCs) or a Geneve TLV option; only Tag.Encode/DecodeTag and the match
// field of the rules change.
//
// # Routing bytes (destination IPv4 address)
//
// Stage i (1..m) of the chain owns byte i of the destination address, mask
// 255 << 8·(4−i) (byte 1 is the most significant). Position m+1 is the
// virtual exit stage, always in the exit datacenter. A byte value 0..N−1
// means "go to datacenter k through the tunnel"; values N..255 are instance
// indices, unique per stage within a datacenter. Hence m ≤ MaxStages = 3:
// with m = 3 the whole address is routing information.
//
//	byte      1 (0xff000000)   2 (0x00ff0000)   3 (0x0000ff00)   4 (0x000000ff)
//	m = 3     stage 1          stage 2          stage 3          exit
//	m = 2     stage 1          stage 2          exit             (unchanged)
//	m = 1     stage 1          exit             (unchanged)      (unchanged)
//
// A datacenter that routes a flow writes, for every stage it hosts on the
// flow's path, the chosen instance's index into that stage's byte, and the
// next datacenter's index into the byte of the first position it does not
// host (or its own index into byte m+1 when the flow exits here). Bytes of
// stages already processed therefore hold instance indices (≥ N), so the
// next datacenter finds the position a flow is heading to as the first
// routing byte holding a value < N (DecodeHeader).
//
// # Path sets and interval inconsistency
//
//	StoreNext(t+1, paths)      step 4: kept aside, not used by the current interval
//	Enter(t+1)                 step 5: previous ← current ← next, next ← none
//
// A flow tagged with interval u mod 4 at a datacenter in local interval t is
// routed by the path set of t−1, t or t+1 when u ≡ t−1, t, t+1 (mod 4); u ≡ t+2
// is dropped as DropUnknownInterval. A datacenter that is not the path's
// datacenter for the position the flow is heading to drops it as
// DropNotOnPath (paper 6.3.2). Options.IgnoreIntervalTag routes every flow by
// the local current interval instead, the untagged baseline of 6.3.2.
//
// # Rules
//
// Route returns a Decision; Decision.AppendRules compiles it to per-flow
// FlowRule specifications and Table.StaticRules gives the per-instance and
// per-tunnel rules of 5.3. See docs/routing.md.
package routing
