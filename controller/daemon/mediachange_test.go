package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/dataplane"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
)

// Session 16's media calls beside checkMediaCall's (same daemon, tokyo's
// P-CSCF for the caller, london's for the callee, the real data plane):
// a delayed offer (INVITE without SDP, the offer in the 200, the answer in
// the ACK) and a re-INVITE that moves the caller's media to another port.
// Every packet is counted at the receiving socket in the users' namespace.

// sippCall is one SIPp call: the callee (its scenario's UAS, registered
// as aor through london's P-CSCF) and the caller through tokyo's.
type sippCall struct {
	uasDir, uacDir string
	done           chan error
	out            func() string
}

// startSIPpCall registers aor at london's P-CSCF for a SIPp UAS running
// uas (its SIP port sipPort; uasKeys are its -key pairs) and starts a SIPp
// caller running uac through tokyo's P-CSCF (uacArgs added: -key pairs,
// -d). Both are killed when the test ends.
func startSIPpCall(t *testing.T, d *Daemon, aor string, sipPort int, uas string, uasKeys []string, uac string, uacArgs []string) *sippCall {
	t.Helper()
	pTokyo, pLondon := pcscfSIP(d, "tokyo"), pcscfSIP(d, "london")
	if pTokyo == "" || pLondon == "" {
		t.Fatalf("no active P-CSCF in tokyo (%q) or london (%q)", pTokyo, pLondon)
	}
	scen := sipptest.Scenarios(t)
	uasIP, uacIP := "127.66.0.2", "127.66.0.1"
	c := &sippCall{uasDir: t.TempDir(), uacDir: t.TempDir(), done: make(chan error, 1)}
	args := append([]string{"-sf", filepath.Join(scen, uas), "-i", uasIP, "-p", strconv.Itoa(sipPort), "-trace_logs", "-nostdin"}, uasKeys...)
	ua := exec.Command("sipp", args...)
	ua.Dir = c.uasDir
	if err := ua.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Process.Kill(); _ = ua.Wait() })
	inf := filepath.Join(c.uasDir, "reg.csv")
	if err := os.WriteFile(inf, []byte(fmt.Sprintf("SEQUENTIAL\n%s;%s:%d\n", aor, uasIP, sipPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	reg := exec.CommandContext(rctx, "sipp", pLondon, "-sf", filepath.Join(scen, "reg.xml"), "-inf", inf,
		"-i", uacIP, "-p", strconv.Itoa(sipPort+1), "-m", "1", "-nostdin", "-timeout", "15")
	reg.Dir = t.TempDir()
	if out, err := reg.CombinedOutput(); err != nil {
		t.Fatalf("register %s at london's P-CSCF %s: %v\n%s", aor, pLondon, err, tailString(string(out), 2000))
	}
	uctx, ucancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(ucancel)
	args = append([]string{pTokyo, "-sf", filepath.Join(scen, uac), "-s", aor, "-i", uacIP, "-p", strconv.Itoa(sipPort + 2),
		"-m", "1", "-trace_logs", "-nostdin", "-timeout", "80", "-recv_timeout", "20000"}, uacArgs...)
	cmd := exec.CommandContext(uctx, "sipp", args...)
	cmd.Dir = c.uacDir
	log, err := os.Create(filepath.Join(c.uacDir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	c.out = func() string { b, _ := os.ReadFile(log.Name()); return string(b) }
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SIPp caller %s:\n%s\ncaller log:\n%s\ncallee log:\n%s", uac, tailString(c.out(), 2000),
				tailString(sippLogs(c.uacDir), 2000), tailString(sippLogs(c.uasDir), 2000))
		}
	})
	return c
}

// sippLogs is what SIPp's -trace_logs (and -trace_err) wrote in dir.
func sippLogs(dir string) string {
	logs, _ := filepath.Glob(filepath.Join(dir, "*_logs.log"))
	errs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
	logs = append(logs, errs...)
	var all []byte
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	return string(all)
}

// waitLog waits until dir's SIPp log has a line starting with prefix.
func waitLog(t *testing.T, dir, prefix string) {
	t.Helper()
	eventually(t, 30*time.Second, "SIPp's log line "+prefix, func() bool {
		return strings.Contains("\n"+sippLogs(dir), "\n"+prefix)
	})
}

// finish waits for the SIPp caller and for the call's mappings to go.
func (c *sippCall) finish(t *testing.T, d *Daemon, dcs ...int) {
	t.Helper()
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("SIPp caller: %v\n%s", err, tailString(c.out(), 2000))
		}
	case <-time.After(80 * time.Second):
		t.Fatalf("SIPp caller did not finish\n%s", tailString(c.out(), 2000))
	}
	eventually(t, 20*time.Second, "the call's mappings removed after the BYE and the retires", func() bool {
		for _, k := range dcs {
			if len(d.dp.plane.Calls(k)) != 0 {
				return false
			}
		}
		return len(d.dp.media.Open()) == 0 && d.dp.media.Retiring() == 0
	})
}

// mediaUsers adds the caller's and callee's media addresses to their
// DCs' users' namespaces.
func mediaUsers(t *testing.T, d *Daemon, users map[int]string) {
	t.Helper()
	for k, ip := range users {
		a, _ := routing.ParseIPv4(ip)
		if err := d.dp.plane.AddUser(context.Background(), k, a); err != nil {
			t.Fatal(err)
		}
	}
}

// sendUDP sends n RTP-sized datagrams from c to to, 50 a second.
func sendUDP(t *testing.T, c *net.UDPConn, to *net.UDPAddr, n int) {
	t.Helper()
	pkt := make([]byte, 172)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		<-tick.C
		if _, err := c.WriteToUDP(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
}

// listenUsers opens a UDP socket at addr in DC k's users' namespace.
func listenUsers(t *testing.T, d *Daemon, k int, addr string) *net.UDPConn {
	t.Helper()
	c, err := dataplane.ListenUDP(d.dp.plane.UsersNS(k), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// arrived counts what rx gets until quiet (the sender sent `sent`): at
// least 99 % must arrive, all from the entry address of the receiver's DC
// k (the exit translation); hint says what a shortfall suggests.
func arrived(t *testing.T, d *Daemon, who string, rx *net.UDPConn, sent, k int, hint string) {
	t.Helper()
	got, from := countUDP(rx, 1500*time.Millisecond)
	t.Logf("%s got %d of %d packets, from %v; hook's calls %v", who, got, sent, from, d.dp.media.Open())
	if got < sent*99/100 {
		t.Fatalf("%s got %d of %d media packets (%s)", who, got, sent, hint)
	}
	if !from[dataplane.EntryIP(k).String()] || len(from) != 1 {
		t.Fatalf("%s: media arrived from %v, want the entry address %s", who, from, dataplane.EntryIP(k))
	}
}

// checkDelayedOfferCall: the caller's INVITE carries no SDP; the callee's
// 200 carries the offer (its P-CSCF posts the callee's /start), the
// caller's ACK the answer (its P-CSCF posts the caller's /start before the
// ACK goes on). Once the callee has the ACK, the caller's media reaches it
// through the chain. Before session 16 the caller's P-CSCF posted nothing:
// no rule, none of the packets arrived.
func checkDelayedOfferCall(t *testing.T, d *Daemon) {
	const caller, callee = 0, 2 // tokyo, london
	callerIP, calleeIP := "10.100.0.15", "10.102.0.17"
	mediaUsers(t, d, map[int]string{caller: callerIP, callee: calleeIP})
	rx := listenUsers(t, d, callee, calleeIP+":6012")
	tx := listenUsers(t, d, caller, callerIP+":6010")
	c := startSIPpCall(t, d, "delayee", 5094, "uas_delayed.xml", []string{"-key", "mip", calleeIP, "-key", "mport", "6012"},
		"uac_delayed.xml", []string{"-key", "mip", callerIP, "-key", "mport", "6010", "-d", "6000"})
	// the callee has the ACK (the answer, rewritten to its entry address)
	waitLog(t, c.uasDir, "ack-c c=IN IP4 "+dataplane.EntryIP(callee).String())
	waitLog(t, c.uacDir, "sdp-c c=IN IP4 "+dataplane.EntryIP(caller).String())
	const sent = 100
	sendUDP(t, tx, &net.UDPAddr{IP: dataplane.EntryIP(caller).Addr().AsSlice(), Port: 6012}, sent)
	arrived(t, d, "delayed offer: the callee", rx, sent, callee, "the caller's answer in the ACK made no rule?")
	c.finish(t, d, caller, callee)
}

// checkReinviteCall: the caller moves its media to another port with a
// re-INVITE. Once the callee has the re-INVITE's ACK, the caller's media
// from the new port reaches the callee and the callee's reaches the
// caller's new port, through the chain; a few seconds later (the hook's
// RetireAfter) the old port's rules are gone. Before session 16 the
// re-INVITE was rewritten but not reported: nothing from the new port
// arrived.
func checkReinviteCall(t *testing.T, d *Daemon) {
	const caller, callee = 0, 2
	callerIP, calleeIP := "10.100.0.25", "10.102.0.27"
	mediaUsers(t, d, map[int]string{caller: callerIP, callee: calleeIP})
	rx := listenUsers(t, d, callee, calleeIP+":6022")
	txOld := listenUsers(t, d, caller, callerIP+":6020")
	txNew := listenUsers(t, d, caller, callerIP+":6024")
	c := startSIPpCall(t, d, "movee", 5097, "uas_reinvite.xml", []string{"-key", "mip", calleeIP, "-key", "mport", "6022"},
		"uac_reinvite.xml", []string{"-key", "mip", callerIP, "-key", "mport", "6020", "-key", "mport2", "6024", "-d", "3000"})
	toCallee := &net.UDPAddr{IP: dataplane.EntryIP(caller).Addr().AsSlice(), Port: 6022}
	eventually(t, 20*time.Second, "the call open", func() bool { return len(d.dp.media.Open()) == 1 })
	sendUDP(t, txOld, toCallee, 50)
	if got, _ := countUDP(rx, time.Second); got < 49 {
		t.Fatalf("re-INVITE: before it the callee got %d of 50 packets from the caller's first port", got)
	}
	// the callee has the re-INVITE (rewritten) and its ACK
	waitLog(t, c.uasDir, "reinvite-c c=IN IP4 "+dataplane.EntryIP(callee).String()+" m=audio 6024")
	waitLog(t, c.uacDir, "reinvite-c c=IN IP4 "+dataplane.EntryIP(caller).String())
	const sent = 100
	sendUDP(t, txNew, toCallee, sent)
	arrived(t, d, "re-INVITE: from the caller's new port the callee", rx, sent, callee, "the media change made no rule?")
	sendUDP(t, rx, &net.UDPAddr{IP: dataplane.EntryIP(callee).Addr().AsSlice(), Port: 6024}, 50)
	arrived(t, d, "re-INVITE: from the callee the caller's new port", txNew, 50, caller, "")
	// the old port's rules retire (the hook's RetireAfter): then nothing
	// from it arrives, while the call goes on on the new port
	eventually(t, 15*time.Second, "the replaced call's rules removed", func() bool {
		return d.dp.media.Retiring() == 0 && len(d.dp.plane.Calls(caller)) == 1 && len(d.dp.plane.Calls(callee)) == 1
	})
	if len(d.dp.media.Open()) != 1 {
		t.Fatalf("re-INVITE: the call ended before the old port's check (SIPp's 30 s hold too short?)")
	}
	sendUDP(t, txOld, toCallee, 20)
	if late, _ := countUDP(rx, time.Second); late != 0 {
		t.Fatalf("re-INVITE: after the retire the callee still got %d of 20 packets from the caller's old port", late)
	}
	// the new path outlives the retire both ways (the plane removed the old
	// call's mappings, the new call shares the callee's side with it)
	sendUDP(t, txNew, toCallee, 50)
	arrived(t, d, "re-INVITE: after the retire, from the caller's new port the callee", rx, 50, callee, "the retire took the new call's shared mappings?")
	sendUDP(t, rx, &net.UDPAddr{IP: dataplane.EntryIP(callee).Addr().AsSlice(), Port: 6024}, 50)
	arrived(t, d, "re-INVITE: after the retire, from the callee the caller's new port", txNew, 50, caller, "")
	if len(d.dp.media.Open()) != 1 {
		t.Fatalf("re-INVITE: the call ended before the checks after the retire were done (SIPp's 30 s hold too short?)")
	}
	c.finish(t, d, caller, callee)
}
