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
	caller     string // the caller's media address
	port       int    // the caller's media port
	start      time.Time
	sent, recv int
	err        error
	stop       chan struct{} // closed by the call's "end"
}

// mediaRig sends and counts the media calls' RTP.
type mediaRig struct {
	t     *testing.T
	ns    string
	entry netip.Addr // where the P-CSCF tells callers to send; the callee's packets come from it
	fifo  string
	in    *os.File
	rx    []*net.UDPConn // the callee's, one per media port

	mu       sync.Mutex
	calls    map[int]*mediaCall // by the caller's media port
	order    []*mediaCall
	reused   int            // a start of a port already used (SIPp wrapped its injection file)
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
		if r.in != nil {
			_ = r.in.Close()
		}
	})
	for _, port := range calleePorts {
		c, err := dataplane.ListenUDP(ns, fmt.Sprintf("%s:%d", calleeMediaIP, port))
		if err != nil {
			t.Fatalf("the callee's media socket: %v", err)
		}
		r.rx = append(r.rx, c)
	}
	var err error
	r.fifo = filepath.Join(t.TempDir(), "calls.fifo")
	if err := syscall.Mkfifo(r.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// read-write: the FIFO stays open between SIPp's writers (no EOF)
	if r.in, err = os.OpenFile(r.fifo, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	r.readers.Add(len(r.rx))
	go r.events()
	for _, c := range r.rx {
		go r.receive(c)
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
			c := &mediaCall{caller: f[1], port: port, start: time.Now(), stop: make(chan struct{}), err: err}
			if r.calls[port] != nil {
				r.reused++
			}
			r.calls[port] = c
			r.order = append(r.order, c)
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

// receive counts the packets of one of the callee's sockets per call (by
// source port).
func (r *mediaRig) receive(rx *net.UDPConn) {
	defer r.readers.Done()
	buf := make([]byte, 2048)
	for {
		_, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed by finish
		}
		r.mu.Lock()
		switch c := r.calls[int(from.Port())]; {
		case from.Addr().Unmap() != r.entry:
			if r.wrongSrc == 0 {
				r.wrong = from
			}
			r.wrongSrc++
		case c == nil:
			r.stray++
		default:
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

// finish stops reading call events (the callers are done), waits for the
// senders and for the packets in flight (until every one sent arrived or
// none arrived for a second), and closes the callee's sockets.
func (r *mediaRig) finish() {
	_ = r.in.Close()
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
	r.closeRx()
	r.readers.Wait()
}

// mediaWindow sums the media calls started in [from, to).
type mediaWindow struct {
	calls, sent, recv, silent int // silent: calls of which no packet arrived
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
		w.recv += c.recv
		if c.sent > 0 && c.recv == 0 {
			w.silent++
		}
	}
	return w
}

// check logs the media's counts and asserts what arrived.
func (r *mediaRig) check(loadStart time.Time, faults []*fault, placed int) {
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
		all.calls, all.sent, all.recv, all.silent = all.calls+w.calls, all.sent+w.sent, all.recv+w.recv, all.silent+w.silent
		t.Logf("media %-22s %4d calls, %6d RTP packets sent, %6d received (%.2f %%), %d calls with none received",
			names[i], w.calls, w.sent, w.recv, 100*float64(w.recv)/float64(max(w.sent, 1)), w.silent)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []string
	for _, c := range r.order {
		if c.err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %v", c.caller, c.port, c.err))
		}
	}
	t.Logf("media all: %d calls up of %d placed, %d RTP packets sent, %d received by the callee's socket (%.2f %%), %d calls with none received; stray %d, from another address %d",
		all.calls, placed, all.sent, all.recv, 100*float64(all.recv)/float64(max(all.sent, 1)), all.silent, r.stray, r.wrongSrc)
	switch {
	case all.calls == 0 || all.sent == 0:
		t.Errorf("media: %d calls reported up, %d packets sent: no media call ran (%d placed)", all.calls, all.sent, placed)
	case float64(all.recv) < minMediaRecv*float64(all.sent):
		t.Errorf("media: the callee's socket got %d of %d RTP packets (%.2f %%), want ≥ %.0f %%",
			all.recv, all.sent, 100*float64(all.recv)/float64(all.sent), 100*minMediaRecv)
	}
	if len(errs) > 0 {
		t.Errorf("media senders failed: %s", strings.Join(errs[:min(len(errs), 5)], "; "))
	}
	if r.wrongSrc > 0 || r.stray > 0 || r.reused > 0 || len(r.badLines) > 0 {
		t.Errorf("media: %d packets from another address than the entry %s (the first from %v), %d from no call's port, %d ports reused, bad event lines %q",
			r.wrongSrc, r.entry, r.wrong, r.stray, r.reused, r.badLines[:min(len(r.badLines), 5)])
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
