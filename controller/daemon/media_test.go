package daemon

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/dataplane"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// pcscfSIP is the SIP address of an active P-CSCF of dc.
func pcscfSIP(d *Daemon, dc string) string {
	ins, _ := d.localDrv.List(context.Background(), dc)
	for _, in := range ins {
		if rt, ok := d.localDrv.Runtime(in.ID); ok && in.VNF == d.cfg.Topology.PCSCF.Name && in.State == drivers.StateActive {
			return rt.SIP.String()
		}
	}
	return ""
}

// stagePackets sums the packets every DP instance of each stage took in.
func stagePackets(t *testing.T, d *Daemon) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]uint64{}
	ins, _ := d.dp.drv.List(ctx, "")
	vnf := map[string]string{}
	for _, in := range ins {
		vnf[in.ID] = in.VNF
	}
	for _, dc := range d.cfg.dcNames() {
		counts, err := d.dp.drv.InPackets(ctx, dc)
		if err != nil {
			t.Fatalf("instance counters of %s: %v", dc, err)
		}
		for id, n := range counts {
			out[vnf[id]] += n
		}
	}
	return out
}

// countUDP counts the datagrams c receives until quiet for idle, returning
// their number and the source addresses seen.
func countUDP(c *net.UDPConn, idle time.Duration) (int, map[string]bool) {
	n, from := 0, map[string]bool{}
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		_, a, err := c.ReadFromUDP(buf)
		if err != nil {
			return n, from
		}
		n++
		from[a.IP.String()] = true
	}
}

// checkMediaCall (issue 13): a call set up through the real Kamailio
// P-CSCFs of tokyo (caller) and london (callee) and the S-CSCF, by SIPp,
// programs the data plane through the P-CSCFs' media hook: UDP media from
// the caller's namespace behind tokyo reaches the callee's namespace behind
// london through the chain's real DP instances, with the exit translation
// (source = the callee's entry address); after the BYE the call's mappings
// are gone and the same packets no longer arrive. Every packet is counted at
// the receiving socket.
func checkMediaCall(t *testing.T, d *Daemon) {
	t.Helper()
	if d.dp == nil || d.dp.media == nil {
		t.Fatal("real data plane without media hook")
	}
	names := d.cfg.dcNames()
	caller, callee := 0, 2 // tokyo, london
	if names[caller] != "tokyo" || names[callee] != "london" {
		t.Fatalf("default topology changed: %v", names)
	}
	pair := func(k int, p placement.Pair) bool {
		ok := false
		d.routers[names[k]].View(func(tb *routing.Table, _ func(int, uint8) string) {
			for _, h := range tb.HeldSets() {
				if _, has := h.Paths[p]; has {
					ok = true
				}
			}
		})
		return ok
	}
	eventually(t, 60*time.Second, "a path for tokyo→london and london→tokyo at both ends", func() bool {
		return pair(caller, placement.Pair{Entry: caller, Exit: callee}) && pair(callee, placement.Pair{Entry: callee, Exit: caller})
	})
	var pTokyo, pLondon string
	eventually(t, 30*time.Second, "an active P-CSCF in tokyo and london", func() bool {
		pTokyo, pLondon = pcscfSIP(d, "tokyo"), pcscfSIP(d, "london")
		return pTokyo != "" && pLondon != ""
	})
	ctx := context.Background()
	callerIP, calleeIP := "10.100.0.5", "10.102.0.7"
	for k, ip := range map[int]string{caller: callerIP, callee: calleeIP} {
		a, _ := routing.ParseIPv4(ip)
		if err := d.dp.plane.AddUser(ctx, k, a); err != nil {
			t.Fatal(err)
		}
	}
	rx, err := dataplane.ListenUDP(d.dp.plane.UsersNS(callee), calleeIP+":6002")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := dataplane.ListenUDP(d.dp.plane.UsersNS(caller), callerIP+":6000")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	scen := sipptest.Scenarios(t)
	uasIP, uacIP := "127.66.0.2", "127.66.0.1"
	// the callee registers through london's P-CSCF (Path), answers with its
	// media endpoint in london's users' namespace
	uasDir := t.TempDir()
	uas := exec.Command("sipp", "-sf", filepath.Join(scen, "uas_media.xml"), "-i", uasIP, "-p", "5090",
		"-key", "mip", calleeIP, "-key", "mport", "6002", "-trace_logs", "-nostdin")
	uas.Dir = uasDir
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = uas.Process.Kill(); _ = uas.Wait() }()
	inf := filepath.Join(uasDir, "reg.csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\ncallee;"+uasIP+":5090\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	reg := exec.CommandContext(rctx, "sipp", pLondon, "-sf", filepath.Join(scen, "reg.xml"), "-inf", inf,
		"-i", uacIP, "-p", "5091", "-m", "1", "-nostdin", "-timeout", "15")
	reg.Dir = t.TempDir()
	out, err := reg.CombinedOutput()
	rcancel()
	if err != nil {
		t.Fatalf("register callee at london's P-CSCF %s: %v\n%s", pLondon, err, tailString(string(out), 2000))
	}
	// the caller calls through tokyo's P-CSCF and holds the call 12 s
	uacDir := t.TempDir()
	uctx, ucancel := context.WithTimeout(ctx, 60*time.Second)
	defer ucancel()
	uac := exec.CommandContext(uctx, "sipp", pTokyo, "-sf", filepath.Join(scen, "uac_media.xml"), "-s", "callee",
		"-i", uacIP, "-p", "5092", "-m", "1", "-d", "12000", "-key", "mip", callerIP, "-key", "mport", "6000",
		"-trace_logs", "-nostdin", "-timeout", "50", "-recv_timeout", "20000")
	uac.Dir = uacDir
	// SIPp writes to a file of its own (no copying goroutine in this
	// process), so the failure clean-up can read it while SIPp still runs
	uacLog, err := os.Create(filepath.Join(uacDir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer uacLog.Close()
	uacOut := func() string { b, _ := os.ReadFile(uacLog.Name()); return string(b) }
	uac.Stdout, uac.Stderr = uacLog, uacLog
	start := time.Now()
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("SIPp caller:\n%s", tailString(uacOut(), 2000))
		for _, dc := range []string{"tokyo", "london"} {
			ins, _ := d.localDrv.List(context.Background(), dc)
			for _, in := range ins {
				if rt, ok := d.localDrv.Runtime(in.ID); ok && in.VNF == d.cfg.Topology.PCSCF.Name {
					b, _ := os.ReadFile(filepath.Join(rt.Dir, "kamailio.log"))
					t.Logf("%s kamailio.log:\n%s", in.ID, tailString(string(b), 2000))
				}
			}
		}
		// where the media stopped: each end's switch rules and port
		// counters, and the users' namespaces' links
		for _, k := range []int{caller, callee} {
			sw := d.dp.plane.Switch(k)
			for _, cmd := range []string{"dump-flows", "dump-ports"} {
				out, err := sw.Ofctl(context.Background(), cmd)
				t.Logf("%s %s (%v):\n%s", names[k], cmd, err, tailString(out, 6000))
			}
			out, err := ovs.InNetns(context.Background(), d.dp.plane.UsersNS(k), "ip", "-s", "addr")
			t.Logf("%s users namespace (%v):\n%s", names[k], err, tailString(out, 2000))
		}
	})
	uacDone := make(chan error, 1)
	go func() { uacDone <- uac.Wait() }()
	eventually(t, 20*time.Second, "the call's media path opened by the P-CSCFs' media hook", func() bool {
		return len(d.dp.media.Open()) == 1
	})
	t.Logf("media hook: call open %.2f s after the INVITE", time.Since(start).Seconds())
	for _, c := range d.dp.media.Open() {
		if c.CallerDC != caller || c.CalleeDC != callee || c.CallerIP.String() != callerIP || c.CalleeIP.String() != calleeIP ||
			c.CallerSendPort != 6000 || c.CalleeRecvPort != 6002 {
			t.Fatalf("opened call %+v, want tokyo %s:6000 → london %s:6002", c, callerIP, calleeIP)
		}
	}
	if len(d.dp.plane.Calls(caller)) != 1 || len(d.dp.plane.Calls(callee)) != 1 {
		t.Fatalf("Table 1 mappings: tokyo %v london %v", d.dp.plane.Calls(caller), d.dp.plane.Calls(callee))
	}
	before := stagePackets(t, d)
	entry := &net.UDPAddr{IP: dataplane.EntryIP(caller).Addr().AsSlice(), Port: 6002}
	send := func(n int) {
		pkt := make([]byte, 172) // RTP-sized
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < n; i++ {
			<-tick.C
			if _, err := tx.WriteToUDP(pkt, entry); err != nil {
				t.Fatal(err)
			}
		}
	}
	const sent = 100
	send(sent) // 2 s at 50 packets/s
	got, from := countUDP(rx, 1500*time.Millisecond)
	t.Logf("during the call: the callee got %d of %d packets, from %v", got, sent, from)
	if got < sent*99/100 {
		t.Fatalf("the callee got %d of %d media packets", got, sent)
	}
	if !from[dataplane.EntryIP(callee).String()] || len(from) != 1 {
		t.Fatalf("media arrived from %v, want the callee's entry address %s (exit translation)", from, dataplane.EntryIP(callee))
	}
	// the DP instances' counters show every stage took the packets in (the
	// counters read the kernel's veth statistics)
	var after map[string]uint64
	eventually(t, 10*time.Second, "every stage's instances counted the media", func() bool {
		after = stagePackets(t, d)
		for _, s := range d.cfg.Topology.Chain {
			if after[s.Name]-before[s.Name] < uint64(got) {
				return false
			}
		}
		return true
	})
	t.Logf("packets into each stage during the call: firewall %d, ids %d, transcoder %d",
		after["firewall"]-before["firewall"], after["ids"]-before["ids"], after["transcoder"]-before["transcoder"])
	select {
	case err := <-uacDone:
		if err != nil {
			t.Fatalf("SIPp caller: %v\n%s", err, tailString(uacOut(), 2000))
		}
	case <-time.After(50 * time.Second):
		t.Fatalf("SIPp caller did not finish\n%s", tailString(uacOut(), 2000))
	}
	eventually(t, 10*time.Second, "the call's mappings removed after the BYE", func() bool {
		return len(d.dp.media.Open()) == 0 && len(d.dp.plane.Calls(caller)) == 0 && len(d.dp.plane.Calls(callee)) == 0
	})
	send(20)
	if late, _ := countUDP(rx, time.Second); late != 0 {
		t.Fatalf("after the BYE the callee still got %d of 20 packets", late)
	}
	// the SDP each side got names its own entry DC (the P-CSCFs rewrote it)
	for dir, want := range map[string]string{uacDir: dataplane.EntryIP(caller).String(), uasDir: dataplane.EntryIP(callee).String()} {
		logs, _ := filepath.Glob(filepath.Join(dir, "*_logs.log"))
		var all []byte
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			all = append(all, b...)
		}
		if !strings.Contains(string(all), "sdp-c c=IN IP4 "+want+"\n") && !strings.Contains(string(all), "sdp-c c=IN IP4 "+want+"\r") {
			t.Errorf("SIPp in %s saw no SDP c= %s: %q", dir, want, tailString(string(all), 2000))
		}
	}
}
