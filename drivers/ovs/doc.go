// Package ovs owns this project's Open vSwitch objects on one machine: a
// private ovsdb-server and ovs-vswitchd started in a run directory of their
// own (userspace datapath, no kernel module), with ovs-vswitchd inside a
// network namespace of its own so every tap and veth end it touches is
// isolated from the host and from other users of Open vSwitch; one bridge per
// datacenter (datapath_type=netdev, fail_mode=secure, marked with the
// external-id ims-orch-owner), patch-port links between datacenter bridges,
// and the OpenFlow rule set of each bridge.
//
// Rules are applied as a difference against what this package installed
// (added, modified or strictly deleted, never a flush), all changes of one
// Apply in one OpenFlow bundle ("ovs-ofctl --bundle"): the switch sees the
// old rule set or the new one, never a mix. On the rule path
// RulePathOpenFlow (the default; Config.RulePath or
// IMS_OVS_OPENFLOW_BUNDLES=0 choose ovs-ofctl for every bundle), a Switch
// sends its bundles over one persistent OpenFlow 1.5 connection to the
// bridge (ofconn.go) when a small hand-written encoder of our own rule
// text (ofencode.go) takes every line, and through ovs-ofctl otherwise
// (learn, move: the tag rules).
//
// The OVSDB wire format and every other OpenFlow request (dumps, counter
// reads) stay inside Open vSwitch's own clients (ovs-vsctl, ovs-ofctl),
// which this package runs; see docs/dataplane.md for
// why not libovsdb or go-openvswitch.
//
// Links and processes are read and changed in this process where the kernel
// offers it: veths, link state, counters and link-deletion events over
// rtnetlink (github.com/vishvananda/netlink, on a socket or a locked thread
// inside the namespace), TX checksum offload with one ethtool ioctl, and
// ovs-vswitchd's exit from a pidfd (WaitVswitchd). OVSDB has no row that
// says ovs-vswitchd is gone (ovsdb-server only sees a client leave), so a
// database monitor would not be the event; the process's exit is.
//
// Ownership and clean-up: everything is named with the caller's prefix (the
// network namespace, bridges, ports) and bridges carry external-ids
// ims-orch-owner=<prefix>. A bridge of that name without the mark is someone
// else's: EnsureBridge fails with ErrForeign and touches nothing. Every
// prefix has 5 characters, so no prefix's names start with another's. A run
// claims its prefix for its lifetime (Claim: a flock(2)-held file in
// LockDir, dropped by the kernel when the process dies): Start with a prefix
// a live run holds fails with ErrPrefixInUse and touches nothing; with a free
// one it kills the ovsdb-server / ovs-vswitchd processes a killed previous
// run left in the same run directory (pid file there and that directory on
// their command line) and deletes network namespaces with the prefix.
// StartFree picks a random free prefix (tests: two checkouts testing at
// once never share a name). What dead runs left is removed by CleanStale
// (`go run ./scripts/ovsclean`), which touches only prefixes no live process
// holds.
package ovs
