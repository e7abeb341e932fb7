package sipchaos

// The chaos test's media: RTP of the "call (media)" calls, sent by a Go
// sender per call from the caller's address in the DC's users' namespace
// (the real data plane's, made by the daemon: dataplane.Plane.UsersNS) to
// where the 200's SDP told the caller to send (the DC's entry address, the
// P-CSCF rewrote it), through the rules the P-CSCFs' media hook installed,
// and counted per call at the callee's socket in that namespace. SIPp
// places the calls (deploy/kamailio/sipp/uac_rtp.xml: a media port of its
// own per call, from an injection file) and tells the test when each call
// is up and when it ends, one line a call event on a FIFO; SIPp itself
// sends no RTP (its media socket would have to live in the users'
// namespace, its SIP on the host's loopback).

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/dataplane"
)

// The media calls' RTP: 50 packets/s (G.711, 20 ms) for 2 s of a call
// held 3 s, so the last packet leaves a second before the BYE removes the
// call's rules.
const (
	rtpInterval  = 20 * time.Millisecond
	rtpPackets   = 100
	mediaHold    = 3 * time.Second
	rtpPayload   = 160
	minMediaRecv = 0.99 // share of the RTP sent that the callee's socket must get
)

// media addresses in the DC's users' namespace: the callee's and each
// caller SIPp's (one per P-CSCF). Every call has a media port of its own
// at both ends, as a UA in several calls at once has (the exit translation
// is keyed by the sending endpoint): the callee's from 30000, each
// caller's from its own range, so the callee's sockets tell the calls
// apart by the source port (the exit translation rewrites the source
// address to the entry address, never the port).
const calleeMediaIP = "10.100.0.95"

func callerMediaIP(pi int) string { return fmt.Sprintf("10.100.1.%d", pi+1) }

func callerPorts(pi, calls int) []int { return evenPorts(20000+2000*pi, calls) }

func calleePorts(calls int) []int { return evenPorts(30000, calls) }

func evenPorts(from, n int) []int {
	out := make([]int, n)
	for k := range out {
		out[k] = from + 2*k // even: RTP
	}
	return out
}

// portsFile writes a SIPp injection file of one port a line (field 0).
func portsFile(t *testing.T, ports []int) string {
	t.Helper()
	lines := []string{"SEQUENTIAL"}
	for _, p := range ports {
		lines = append(lines, strconv.Itoa(p)+";")
	}
	f := filepath.Join(t.TempDir(), "ports.csv")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// usersNS is the users' namespace of DC 0 of the daemon's real data plane,
// from the prefix its log names ("prefix=i…"; the name's form is
// dataplane.Plane.UsersNS's).
func usersNS(logPath string) (string, error) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`DP stages run as network namespaces.* prefix=(\w+)`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("the daemon's log names no real data plane (OVS prefix): the media calls need Open vSwitch (scripts/ci-ovs.sh) and root")
	}
	return string(m[1]) + "d0u", nil
}

// mediaCall is one media call as its caller reported it.
type mediaCall struct {
	caller string // the caller's media address
	port   int    // the caller's media port
	rport  int    // where the 200 told it to send (the callee's port)
	start  time.Time
	sent   int
	// got[seq]: the packet of RTP sequence number seq arrived at the
	// call's own callee socket; recv counts them (distinct), dup the
	// copies beyond the first, misdelivered the packets of this call at
	// another callee port
	got               [rtpPackets]bool
	recv, dup, misdel int
	err               error
	stop              chan struct{} // closed by the call's "end"
}

// loss tells where a call's missing packets are: before its first packet
// that arrived (lead: the rules came late, the hook answered after the
// caller started), between its first and last (gaps: the data plane
// dropped packets mid-call), after its last (tail); silent: none arrived.
func (c *mediaCall) loss() (lead, gaps, tail int, silent bool) {
	first, last := -1, -1
	for i := 0; i < c.sent; i++ {
		if c.got[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, 0, 0, c.sent > 0
	}
	for i := first; i <= last; i++ {
		if !c.got[i] {
			gaps++
		}
	}
	return first, gaps, c.sent - 1 - last, false
}

// mediaRig sends and counts the media calls' RTP.
type mediaRig struct {
	t     *testing.T
	ns    string
	entry netip.Addr // where the P-CSCF tells callers to send; the callee's packets come from it
	fifo  string
	in    *os.File
	rx    []*net.UDPConn // the callee's, one per media port

	mu     sync.Mutex
	calls  map[int]*mediaCall // by the caller's media port
	order  []*mediaCall
	reused int // a start of a port already used (SIPp wrapped its injection file)
	// the firewall instances' "media" counters at the end (finish): the
	// packets that passed the firewall stage, per instance namespace
	fw       map[string]int
	fwErr    error
	stray    int            // packets from a port of no call
	wrongSrc int            // packets from another address than the entry
	wrong    netip.AddrPort // the first of them
	badLines []string

	senders    sync.WaitGroup
	readers    sync.WaitGroup // the callee's sockets
	eventsDone chan struct{}  // closed when events returns (no sender starts after)
}

// startMedia adds the callee's and callers' media addresses to the users'
// namespace, opens the callee's sockets (one per port of calleePorts) and
// the FIFO the callers write their call events to, and starts reading them.
func startMedia(t *testing.T, ns string, callers int, calleePorts []int) *mediaRig {
	t.Helper()
	addrs := []string{calleeMediaIP}
	for pi := 0; pi < callers; pi++ {
		addrs = append(addrs, callerMediaIP(pi))
	}
	for _, a := range addrs {
		if out, err := exec.Command("ip", "-n", ns, "addr", "add", a+"/32", "dev", "eth0").CombinedOutput(); err != nil {
			t.Fatalf("media address %s in the users' namespace %s: %v %s", a, ns, err, out)
		}
	}
	r := &mediaRig{t: t, ns: ns, entry: dataplane.EntryIP(0).Addr(), calls: map[int]*mediaCall{}, eventsDone: make(chan struct{})}
	t.Cleanup(func() { // a failed test's early end (finish closes them too)
		r.closeRx()
		r.stopEvents()
	})
	for _, port := range calleePorts {
		c, err := dataplane.ListenUDP(ns, fmt.Sprintf("%s:%d", calleeMediaIP, port))
		if err != nil {
			t.Fatalf("the callee's media socket: %v", err)
		}
		r.rx = append(r.rx, c)
	}
	r.openEvents()
	r.readers.Add(len(r.rx))
	go r.events()
	for i, c := range r.rx {
		go r.receive(c, calleePorts[i])
	}
	return r
}

func (r *mediaRig) closeRx() {
	for _, c := range r.rx {
		_ = c.Close()
	}
}

// events reads the callers' lines: "start MIP PORT RADDR RPORT", "end MIP PORT".
func (r *mediaRig) events() {
	defer close(r.eventsDone)
	sc := bufio.NewScanner(r.in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		port := -1
		if len(f) >= 3 {
			port, _ = strconv.Atoi(f[2])
		}
		r.mu.Lock()
		switch {
		case len(f) == 5 && f[0] == "start" && port > 0:
			to, err := netip.ParseAddrPort(f[3] + ":" + f[4])
			c := &mediaCall{caller: f[1], port: port, rport: int(to.Port()), start: time.Now(), stop: make(chan struct{}), err: err}
			if r.calls[port] != nil {
				r.reused++
			}
			r.calls[port] = c
			r.order = append(r.order, c)
			if err == nil && to.Addr() != r.entry {
				// its 200 named another address than the entry: its media goes around the chain
				r.t.Logf("media: caller %s:%d was told to send to %v, not to the entry %v", c.caller, port, to, r.entry)
			}
			if err == nil {
				r.senders.Add(1)
				go r.send(c, to)
			}
		case len(f) == 3 && f[0] == "end" && r.calls[port] != nil:
			select {
			case <-r.calls[port].stop:
			default:
				close(r.calls[port].stop)
			}
		default:
			r.badLines = append(r.badLines, sc.Text())
		}
		r.mu.Unlock()
	}
}

// send sends the call's RTP from the caller's address and port in the
// users' namespace to `to`, rtpPackets of them paced by rtpInterval, fewer
// when the call ends first.
func (r *mediaRig) send(c *mediaCall, to netip.AddrPort) {
	defer r.senders.Done()
	conn, err := dataplane.ListenUDP(r.ns, fmt.Sprintf("%s:%d", c.caller, c.port))
	if err != nil {
		r.mu.Lock()
		c.err = err
		r.mu.Unlock()
		return
	}
	defer conn.Close()
	pkt := make([]byte, 12+rtpPayload)
	pkt[0], pkt[1] = 0x80, 0 // RTP v2, PCMU
	binary.BigEndian.PutUint32(pkt[8:], uint32(c.port))
	tick := time.NewTicker(rtpInterval)
	defer tick.Stop()
	for i := 0; i < rtpPackets; i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*rtpPayload))
		if _, err := conn.WriteToUDPAddrPort(pkt, to); err != nil {
			r.mu.Lock()
			c.err = err
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		c.sent++
		r.mu.Unlock()
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// receive counts the packets of the callee's socket of port local per
// call (by source port) and RTP sequence number.
func (r *mediaRig) receive(rx *net.UDPConn, local int) {
	defer r.readers.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed by finish
		}
		seq := -1
		if n == 12+rtpPayload {
			seq = int(binary.BigEndian.Uint16(buf[2:]))
		}
		r.mu.Lock()
		switch c := r.calls[int(from.Port())]; {
		case from.Addr().Unmap() != r.entry:
			if r.wrongSrc == 0 {
				r.wrong = from
			}
			r.wrongSrc++
		case c == nil || seq < 0 || seq >= rtpPackets:
			r.stray++
		case c.rport != local:
			c.misdel++
		case c.got[seq]:
			c.dup++
		default:
			c.got[seq] = true
			c.recv++
		}
		r.mu.Unlock()
	}
}

func (r *mediaRig) totals() (calls, sent, recv int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.order {
		sent += c.sent
		recv += c.recv
	}
	return len(r.order), sent, recv
}

// openEvents makes the FIFO the callers write their call events to and
// opens it read-write: it stays open between SIPp's writers (no EOF), and
// a writer's open never waits while the test reads.
func (r *mediaRig) openEvents() {
	r.t.Helper()
	r.fifo = filepath.Join(r.t.TempDir(), "calls.fifo")
	if err := syscall.Mkfifo(r.fifo, 0o600); err != nil {
		r.t.Fatal(err)
	}
	var err error
	if r.in, err = os.OpenFile(r.fifo, os.O_RDWR, 0); err != nil {
		r.t.Fatal(err)
	}
}

// stopEvents ends the call events: the FIFO's name goes first, so a
// caller's write that comes later (SIPp's exec runs detached: a late "end")
// appends to a new regular file instead of blocking for a reader for ever
// (it would keep SIPp's inherited sockets open), then the reader closes.
func (r *mediaRig) stopEvents() {
	_ = os.Remove(r.fifo)
	if r.in != nil {
		_ = r.in.Close()
	}
}

// finish stops reading call events (the callers are done), waits for the
// senders and for the packets in flight (until every one sent arrived or
// none arrived for a second), and closes the callee's sockets.
func (r *mediaRig) finish() {
	r.stopEvents()
	<-r.eventsDone // every sender is started (Add before Wait)
	r.senders.Wait()
	last, quiet := -1, time.Now()
	for {
		_, sent, recv := r.totals()
		if recv >= sent || time.Since(quiet) > time.Second {
			break
		}
		if recv != last {
			last, quiet = recv, time.Now()
		}
		time.Sleep(20 * time.Millisecond) // packets in flight through the real switch
	}
	r.fw, r.fwErr = firewallMedia(dataplane.BridgeName(strings.TrimSuffix(r.ns, "d0u"), 0))
	r.closeRx()
	r.readers.Wait()
}

// nftMedia is the firewall's media rule with its counter
// (drivers/netns rules: `ip protocol udp counter accept comment "media"`).
var nftMedia = regexp.MustCompile(`ip protocol udp counter packets (\d+) bytes \d+ accept comment "media"`)

// firewallMedia reads the "media" counter of every firewall instance of the
// DC whose bridge is br (drivers/netns: namespaces br+"n"+slot, one nft
// table each, the rule counts the UDP packets the instance forwarded).
func firewallMedia(br string) (map[string]int, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v", err)
	}
	inst := regexp.MustCompile(`^` + regexp.QuoteMeta(br) + `n\d+$`)
	fw := map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !inst.MatchString(f[0]) {
			continue
		}
		tbl, err := exec.Command("ip", "netns", "exec", f[0], "nft", "list", "table", "netdev", "ims").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("the firewall counters of %s: %v %s", f[0], err, tbl)
		}
		if m := nftMedia.FindSubmatch(tbl); m != nil {
			fw[f[0]], _ = strconv.Atoi(string(m[1]))
		}
	}
	if len(fw) == 0 {
		return nil, fmt.Errorf("no firewall instance of bridge %s (namespaces: %q)", br, out)
	}
	return fw, nil
}

// mediaWindow sums the media calls started in [from, to).
type mediaWindow struct {
	calls, sent, recv int
	// calls by where their loss is (mediaCall.loss): late (only leading
	// packets lost: the rules came after the caller started), gaps (lost
	// mid-call), tail (lost at the end only), silent (none arrived); lead:
	// the leading packets lost of the late calls, maxLead the most of one
	late, gaps, tail, silent, lead, maxLead int
	dup, misdel                             int
}

func (w *mediaWindow) add(o mediaWindow) {
	w.calls, w.sent, w.recv = w.calls+o.calls, w.sent+o.sent, w.recv+o.recv
	w.late, w.gaps, w.tail, w.silent = w.late+o.late, w.gaps+o.gaps, w.tail+o.tail, w.silent+o.silent
	w.lead, w.maxLead = w.lead+o.lead, max(w.maxLead, o.maxLead)
	w.dup, w.misdel = w.dup+o.dup, w.misdel+o.misdel
}

func (r *mediaRig) window(from, to time.Time) mediaWindow {
	r.mu.Lock()
	defer r.mu.Unlock()
	var w mediaWindow
	for _, c := range r.order {
		if c.start.Before(from) || !c.start.Before(to) {
			continue
		}
		w.calls++
		w.sent += c.sent
		w.recv += c.recv // distinct sequence numbers: ≤ sent
		w.dup += c.dup
		w.misdel += c.misdel
		lead, gaps, tail, silent := c.loss()
		switch {
		case silent:
			w.silent++
		case gaps > 0:
			w.gaps++
		case lead > 0 && tail == 0:
			w.late++
			w.lead += lead
			w.maxLead = max(w.maxLead, lead)
		case tail > 0 && lead == 0:
			w.tail++
		case lead > 0: // both ends lost, nothing between
			w.late++
			w.tail++
			w.lead += lead
			w.maxLead = max(w.maxLead, lead)
		}
	}
	return w
}

func (w mediaWindow) String() string {
	return fmt.Sprintf("%4d calls, %6d RTP packets sent, %6d received (%.2f %%); calls with loss: %d late (%d leading packets, at most %d = %v), %d mid-call gaps, %d tail only, %d with none received; %d duplicates, %d at another call's port",
		w.calls, w.sent, w.recv, 100*float64(w.recv)/float64(max(w.sent, 1)), w.late, w.lead, w.maxLead,
		time.Duration(w.maxLead)*rtpInterval, w.gaps, w.tail, w.silent, w.dup, w.misdel)
}

// check logs the media's counts per fault window and asserts what
// arrived: placed and ok are SIPp's media calls placed and completed.
func (r *mediaRig) check(loadStart time.Time, faults []*fault, placed, ok int) {
	t := r.t
	t.Helper()
	bounds := []time.Time{loadStart}
	names := []string{"before the faults"}
	for _, f := range faults {
		bounds = append(bounds, f.at)
		names = append(names, "after "+f.name)
	}
	bounds = append(bounds, time.Now())
	var all mediaWindow
	for i := range names {
		w := r.window(bounds[i], bounds[i+1])
		all.add(w)
		t.Logf("media %-22s %v", names[i], w)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []string
	for _, c := range r.order {
		if c.err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %v", c.caller, c.port, c.err))
		}
	}
	t.Logf("media all: %d calls up of %d placed (%d completed by SIPp): %v; stray %d, from another address %d",
		all.calls, placed, ok, all, r.stray, r.wrongSrc)
	switch {
	case all.calls == 0 || all.sent == 0:
		t.Errorf("media: %d calls reported up, %d packets sent: no media call ran (%d placed)", all.calls, all.sent, placed)
	case float64(all.recv) < minMediaRecv*float64(all.sent):
		t.Errorf("media: the callee's sockets got %d of %d RTP packets (%.2f %%), want ≥ %.0f %%",
			all.recv, all.sent, 100*float64(all.recv)/float64(all.sent), 100*minMediaRecv)
	}
	// every call SIPp completed ran its "start" (a call that never
	// reported sends nothing and would drop out of both counts)
	if all.calls < ok {
		t.Errorf("media: %d calls reported start, but SIPp completed %d: %d completed calls sent no media", all.calls, ok, ok-all.calls)
	}
	if all.silent > 0 {
		t.Errorf("media: %d calls got none of their RTP (a user would hear nothing)", all.silent)
	}
	if all.dup > 0 || all.misdel > 0 {
		t.Errorf("media: %d duplicated packets, %d at another call's callee port (each call's packets must arrive once, at its own port)", all.dup, all.misdel)
	}
	// the packets passed the firewall stage, not only the translations:
	// its instances forwarded at least the packets the callee got
	// (instances removed during the test take their counts with them)
	fwSum := 0
	for _, n := range r.fw {
		fwSum += n
	}
	t.Logf("media: the firewall instances' media counters %v (sum %d), the callee's sockets got %d", r.fw, fwSum, all.recv)
	switch {
	case r.fwErr != nil:
		t.Errorf("media: %v", r.fwErr)
	case fwSum < all.recv:
		t.Errorf("media: the firewall instances forwarded %d media packets, fewer than the %d the callee's sockets got: packets bypassed the firewall stage", fwSum, all.recv)
	}
	if len(errs) > 0 {
		t.Errorf("media senders failed: %s", strings.Join(errs[:min(len(errs), 5)], "; "))
	}
	if r.wrongSrc > 0 || r.stray > 0 || r.reused > 0 || len(r.badLines) > 0 {
		t.Errorf("media: %d packets from another address than the entry %s (the first from %v), %d from no call's port, %d ports reused, bad event lines %q",
			r.wrongSrc, r.entry, r.wrong, r.stray, r.reused, r.badLines[:min(len(r.badLines), 5)])
	}
}

// A caller's event written after the test stopped reading (a detached
// exec of SIPp's, late) ends instead of waiting for a reader for ever: the
// FIFO's name is gone before its reader (closing the reader first leaves
// the write blocked in open; the bound below is only a failure deadline).
func TestLateEventWriteDoesNotBlock(t *testing.T) {
	r := &mediaRig{t: t}
	r.openEvents()
	r.stopEvents()
	w := exec.Command("sh", "-c", "echo end 10.100.1.1 20000 >> "+r.fifo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the late write: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = w.Process.Kill()
		<-done
		t.Fatal("a caller's write after the events stopped still waits for a reader (the FIFO outlived its reader)")
	}
}

// A call's loss by where it is in the call: the leading packets only (the
// rules came late), a gap (dropped mid-call), the tail only, or all.
func TestMediaCallLoss(t *testing.T) {
	call := func(sent int, got ...int) *mediaCall {
		c := &mediaCall{sent: sent}
		for _, g := range got {
			c.got[g] = true
		}
		return c
	}
	for _, tc := range []struct {
		name             string
		c                *mediaCall
		lead, gaps, tail int
		silent           bool
	}{
		{"all", call(4, 0, 1, 2, 3), 0, 0, 0, false},
		{"late", call(5, 2, 3, 4), 2, 0, 0, false},
		{"gap", call(5, 0, 2, 4), 0, 2, 0, false},
		{"tail", call(5, 0, 1), 0, 0, 3, false},
		{"none", call(3), 0, 0, 0, true},
		{"nothing sent", call(0), 0, 0, 0, false},
	} {
		lead, gaps, tail, silent := tc.c.loss()
		if lead != tc.lead || gaps != tc.gaps || tail != tc.tail || silent != tc.silent {
			t.Errorf("%s: loss = %d, %d, %d, %v; want %d, %d, %d, %v", tc.name, lead, gaps, tail, silent, tc.lead, tc.gaps, tc.tail, tc.silent)
		}
	}
}

// The users' namespace comes from the daemon's log line naming its OVS
// prefix; a log without it (the data plane stayed simulated) is an error
// saying what is missing. Runs without root.
func TestUsersNSFromLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "serve.log")
	line := `time=2026-12-07T13:20:37.653Z level=INFO msg="driver local: DP stages run as network namespaces on Open vSwitch bridges" dir=/tmp/ims-orch-chaos-serve/dataplane prefix=i0k2z` + "\n"
	if err := os.WriteFile(log, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if ns, err := usersNS(log); err != nil || ns != "i0k2zd0u" {
		t.Fatalf("usersNS = %q, %v; want i0k2zd0u", ns, err)
	}
	if err := os.WriteFile(log, []byte(`level=WARN msg="the data plane stays simulated" reason="not root"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := usersNS(log); err == nil || !strings.Contains(err.Error(), "Open vSwitch") {
		t.Fatalf("usersNS without a real data plane: %v, want an error naming Open vSwitch", err)
	}
	// SIPp's injection file: one even port a line, per-caller ranges apart
	b, err := os.ReadFile(portsFile(t, callerPorts(1, 3)))
	if err != nil || string(b) != "SEQUENTIAL\n22000;\n22002;\n22004;\n" {
		t.Fatalf("ports file %q, %v", b, err)
	}
}

// The firewall's media counter as nft lists it (drivers/netns's rules).
func TestNftMediaCounter(t *testing.T) {
	tbl := `table netdev ims {
	chain out {
		type filter hook egress device "out" priority filter; policy drop;
		meta protocol arp counter packets 2 bytes 84 accept
		ip protocol udp counter packets 28694 bytes 5738800 accept comment "media"
		ip protocol icmp counter packets 0 bytes 0 accept
		counter packets 3 bytes 180 drop comment "not media"
	}
}
`
	m := nftMedia.FindStringSubmatch(tbl)
	if m == nil || m[1] != "28694" {
		t.Fatalf("media counter %q, want 28694", m)
	}
}
