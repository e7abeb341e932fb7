package daemon

import (
	"net"
	"strconv"
	"testing"

	"github.com/ims-orch/ims-orch/controller/dataplane"
)

// checkUpdateCall (session 17, SIPp's uac_update.xml / uas_update.xml):
// the callee answers in a reliable 183 (RFC 3262; its 200 has no SDP),
// then the caller moves its media to another port with an UPDATE (RFC
// 3311), then the callee moves its own with an UPDATE. Counted at the
// receiving sockets: the callee's early media reaches the caller while the
// caller has only the 183 (its P-CSCF posted the caller's /start before
// relaying the 183, the callee's P-CSCF the callee's); once the caller has
// its UPDATE's 200, the caller's media from the new port reaches the
// callee and the callee's reaches the caller's new port; once the callee
// has its UPDATE's 200, the same both ways with the callee's new port.
// Before session 17 the reliable 183 and the UPDATEs were rewritten but not
// reported: no rule for the call at all (its 200 has no SDP).
func checkUpdateCall(t *testing.T, d *Daemon) {
	const caller, callee = 0, 2
	callerIP, calleeIP := "10.100.0.35", "10.102.0.37"
	mediaUsers(t, d, map[int]string{caller: callerIP, callee: calleeIP})
	calleeOld := listenUsers(t, d, callee, calleeIP+":6032")
	calleeNew := listenUsers(t, d, callee, calleeIP+":6036")
	callerOld := listenUsers(t, d, caller, callerIP+":6030")
	callerNew := listenUsers(t, d, caller, callerIP+":6034")
	c := startSIPpCall(t, d, "updatee", 5100, "uas_update.xml",
		[]string{"-key", "mip", calleeIP, "-key", "mport", "6032", "-key", "mport2", "6036"},
		"uac_update.xml", []string{"-key", "mip", callerIP, "-key", "mport", "6030", "-key", "mport2", "6034", "-d", "3000", "-trace_err"})
	// toCaller/toCallee: a port of the other side at one's own entry
	toCaller := func(port int) *net.UDPAddr {
		return &net.UDPAddr{IP: dataplane.EntryIP(callee).Addr().AsSlice(), Port: port}
	}
	toCallee := func(port int) *net.UDPAddr {
		return &net.UDPAddr{IP: dataplane.EntryIP(caller).Addr().AsSlice(), Port: port}
	}
	entryC := "c=IN IP4 " + dataplane.EntryIP(caller).String()
	entryE := "c=IN IP4 " + dataplane.EntryIP(callee).String()

	// early media: the caller has the reliable 183 (rewritten), not the 200
	// (SIPp's caller sends its PRACK 6 s after the 183)
	waitLog(t, c.uacDir, "early-c "+entryC)
	sendUDP(t, calleeOld, toCaller(6030), 50)
	arrived(t, d, "reliable 183: early media, the caller", callerOld, 50, caller, "the 183's answer made no rule?")

	// the caller's UPDATE from 6034: the callee has it (rewritten), the
	// caller has its 200 (the caller's P-CSCF reported the move before
	// relaying it)
	waitLog(t, c.uasDir, "update-m "+entryE+" m=audio 6034")
	waitLog(t, c.uacDir, "update-c "+entryC)
	const sent = 100
	sendUDP(t, callerNew, toCallee(6032), sent)
	arrived(t, d, "UPDATE: from the caller's new port the callee", calleeOld, sent, callee, "the UPDATE made no rule?")
	sendUDP(t, calleeOld, toCaller(6034), 50)
	arrived(t, d, "UPDATE: from the callee the caller's new port", callerNew, 50, caller, "")

	// the callee's UPDATE from 6036, answered by the caller from 6034
	waitLog(t, c.uasDir, "cupdate-done "+entryE)
	sendUDP(t, calleeNew, toCaller(6034), 50)
	arrived(t, d, "callee's UPDATE: from the callee's new port the caller", callerNew, 50, caller, "the callee's UPDATE made no rule?")
	sendUDP(t, callerNew, toCallee(6036), 50)
	arrived(t, d, "callee's UPDATE: from the caller the callee's new port "+strconv.Itoa(6036), calleeNew, 50, callee, "")
	if len(d.dp.media.Open()) != 1 {
		t.Fatalf("UPDATE: the call ended before the checks were done (SIPp's 20 s hold too short?)")
	}
	c.finish(t, d, caller, callee)
}
