package sip

// The UE side of the test: SIPp callers and callees that find their P-CSCF
// through their DC's discovery DNS server, as UEs do (paper 4.4).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ims-orch/ims-orch/deploy/kamailio/sipptest"
)

// lookupSRV asks server for the SIP/UDP SRV records of name and returns
// the targets' addresses, sorted.
func lookupSRV(ctx context.Context, server netip.AddrPort, name string) ([]netip.AddrPort, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
	c := dns.Client{Timeout: 300 * time.Millisecond}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	if err != nil {
		return nil, err
	}
	if r.Rcode == dns.RcodeNameError {
		return nil, nil
	}
	a := map[string]netip.Addr{}
	for _, rr := range r.Extra {
		if x, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(x.A.To4()); ok {
				a[x.Hdr.Name] = ip
			}
		}
	}
	var out []netip.AddrPort
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			if ip, ok := a[s.Target]; ok {
				out = append(out, netip.AddrPortFrom(ip, s.Port))
			}
		}
	}
	slices.SortFunc(out, func(x, y netip.AddrPort) int { return x.Compare(y) })
	return out, nil
}

// scenarios writes the embedded SIPp scenarios into a temp dir, and
// uac.xml once more as uacInf with the callee from an injection file
// ([field0], one line per call, in turn) instead of -s.
func scenarios(t testing.TB) string {
	t.Helper()
	dir := sipptest.Scenarios(t)
	b, err := os.ReadFile(filepath.Join(dir, "uac.xml"))
	if err != nil {
		t.Fatal(err)
	}
	inf := strings.ReplaceAll(string(b), "[service]", "[field0]")
	if err := os.WriteFile(filepath.Join(dir, uacInf), []byte(inf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const uacInf = "uac_inf.xml"

// registerAOR registers aor with contact ip:contactPort at the registrar
// via (a P-CSCF: the REGISTER gets its Path), sending from ip:localPort.
func registerAOR(ctx context.Context, scen, dir string, via netip.AddrPort, aor, ip string, contactPort, localPort int) error {
	return sipptest.Register(ctx, scen, dir, via.String(), aor, ip+":"+strconv.Itoa(contactPort), ip, localPort, 5*time.Second)
}

// callee is one SIPp UAS registered as aor; it keeps its registration on a
// P-CSCF its DC's DNS lists, re-registering through another one as soon as
// its P-CSCF leaves DNS (buffered or failed), as a UE does. With spread it
// also moves when the list changes, to the (idx mod n)-th P-CSCF of the
// sorted list: a group of callees stays spread evenly over the P-CSCFs, as a
// population of UEs would be.
type callee struct {
	aor, ip string
	port    int
	idx     int
	spread  bool
	dns     netip.AddrPort
	zone    string
	scen    string
	dir     string

	mu     sync.Mutex
	via    netip.AddrPort
	regs   []string // "time via" of every registration
	errs   []string
	uas    *sipptest.Proc
	cancel context.CancelFunc
	done   chan struct{}
}

func startCallee(t *testing.T, scen, aor, ip string, port int, dnsAddr netip.AddrPort, zone string) *callee {
	c := &callee{aor: aor, ip: ip, port: port, dns: dnsAddr, zone: zone, scen: scen, dir: keepDir(t, "callee-"+aor), done: make(chan struct{})}
	var err error
	c.uas, err = sipptest.Start(c.dir, sipptest.Options{}, "-sf", filepath.Join(scen, "uas.xml"), "-i", ip, "-ci", ip, "-p", strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.keep(ctx)
	return c
}

func (c *callee) keep(ctx context.Context) {
	defer close(c.done)
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	for {
		list, err := lookupSRV(ctx, c.dns, "_sip._udp.pcscf."+c.zone)
		c.mu.Lock()
		cur := c.via
		c.mu.Unlock()
		want := cur
		if err == nil && len(list) > 0 {
			if c.spread {
				want = list[c.idx%len(list)]
			} else if !slices.Contains(list, cur) {
				want = list[0]
			}
		}
		if want != cur {
			via := want
			if err := c.register(ctx, via); err != nil {
				c.mu.Lock()
				c.errs = append(c.errs, err.Error())
				c.mu.Unlock()
			} else {
				c.mu.Lock()
				c.via = via
				c.regs = append(c.regs, time.Now().Format("15:04:05.000")+" "+via.String())
				c.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

func (c *callee) register(ctx context.Context, via netip.AddrPort) error {
	return registerAOR(ctx, c.scen, c.dir, via, c.aor, c.ip, c.port, c.port+10)
}

// ready waits until the callee has registered once.
func (c *callee) ready(timeout time.Duration) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		c.mu.Lock()
		ok := c.via.IsValid()
		c.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

func (c *callee) stop() {
	c.cancel()
	<-c.done
	c.uas.Kill()
}

// caller is one SIPp UAC process sending calls to one P-CSCF.
type caller struct {
	pcscf   netip.AddrPort
	ctl     int
	ctlIP   string    // SIPp's control socket listens here (-ci), on loopback
	rate    int       // calls per 10 s
	rateAt  time.Time // last rate change
	proc    *sipptest.Proc
	started time.Time
	quitAt  time.Time // when its P-CSCF left DNS (zero: never)
}

func (c *caller) send(cmd string) error {
	conn, err := net.Dial("udp", net.JoinHostPort(c.ctlIP, strconv.Itoa(c.ctl)))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(cmd))
	return err
}

// rateEvery is the shortest time between two rate changes of a caller.
const rateEvery = 2 * time.Second

// callerPool keeps one SIPp caller per P-CSCF its DC's DNS lists and
// splits the DC's call rate evenly over them; a caller whose P-CSCF leaves
// DNS stops placing calls at once (SIPp soft quit: its calls in progress
// end normally). Every caller is the user user, registered once through a
// P-CSCF of the DC before the first call (the S-CSCFs map it to its entry
// DC by that registration).
type callerPool struct {
	t      *testing.T
	name   string
	dns    netip.AddrPort
	zone   string
	ip     string
	user   string
	callee string
	// callees, if set, are called in turn (uacInf) instead of callee
	callees []string
	scen    string
	hold    time.Duration
	rate    func(time.Time) float64 // calls/s wanted now
	next    *int                    // shared port counter
	nextMu  *sync.Mutex

	mu      sync.Mutex
	live    map[netip.AddrPort]*caller
	all     []*caller
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// register registers the pool's user through a P-CSCF of its DC.
func (p *callerPool) register() {
	p.t.Helper()
	ctx, cancelReg := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelReg()
	for {
		list, err := lookupSRV(ctx, p.dns, "_sip._udp.pcscf."+p.zone)
		if err == nil && len(list) > 0 {
			if err = registerAOR(ctx, p.scen, p.t.TempDir(), list[0], p.user, p.ip, 15998, 15999); err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			p.t.Fatalf("%s: register caller %s: %v", p.name, p.user, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// start starts placing calls (after register).
func (p *callerPool) start() {
	p.live = map[netip.AddrPort]*caller{}
	p.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			p.step(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
}

func (p *callerPool) step(ctx context.Context) {
	list, err := lookupSRV(ctx, p.dns, "_sip._udp.pcscf."+p.zone)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	for a, c := range p.live {
		if !slices.Contains(list, a) {
			c.quitAt = time.Now()
			_ = c.send("q")
			delete(p.live, a)
		}
	}
	if len(list) == 0 {
		return
	}
	per := max(1, int(p.rate(time.Now())*10/float64(len(list))+0.5))
	for _, a := range list {
		c := p.live[a]
		if c == nil {
			c = p.spawn(a, per)
			if c != nil {
				p.live[a] = c
			}
			continue
		}
		// SIPp restarts its rate window on every change and drops the
		// call it was part way into: changing every 200 ms on a ramp made
		// a caller send ~15 % less than asked, so at most every rateEvery
		if c.rate != per && time.Since(c.rateAt) >= rateEvery {
			if c.send("cset rate "+strconv.Itoa(per)) == nil {
				c.rate, c.rateAt = per, time.Now()
			}
		}
	}
}

func (p *callerPool) spawn(a netip.AddrPort, rate int) *caller {
	p.nextMu.Lock()
	*p.next++
	n := *p.next
	p.nextMu.Unlock()
	dir := keepDir(p.t, fmt.Sprintf("caller-%s-%d", p.user, n))
	c := &caller{pcscf: a, ctl: 19000 + n, ctlIP: p.ip, rate: rate, rateAt: time.Now(), started: time.Now()}
	target := []string{"-sf", filepath.Join(p.scen, "uac.xml"), "-s", p.callee}
	if len(p.callees) > 0 {
		inf := filepath.Join(dir, "callees.csv")
		if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+strings.Join(p.callees, "\n")+"\n"), 0o644); err != nil {
			p.t.Errorf("%s: %v", p.name, err)
			return nil
		}
		target = []string{"-sf", filepath.Join(p.scen, uacInf), "-inf", inf}
	}
	var err error
	c.proc, err = sipptest.Start(dir, sipptest.Options{Stats: true}, append(append([]string{a.String()}, target...), "-key", "caller", p.user,
		"-i", p.ip, "-ci", p.ip, "-p", strconv.Itoa(16000+n), "-r", strconv.Itoa(rate), "-rp", "10000",
		"-d", strconv.Itoa(int(p.hold/time.Millisecond)), "-cp", strconv.Itoa(c.ctl), "-recv_timeout", "20000")...)
	if err != nil {
		p.t.Errorf("%s: caller to %s: %v", p.name, a, err)
		return nil
	}
	p.all = append(p.all, c)
	return c
}

// stop makes every caller stop placing calls and waits (bounded) for their
// calls in progress to end.
func (p *callerPool) stop(wait time.Duration) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	p.stopped = true
	all := slices.Clone(p.all)
	for _, c := range p.live {
		_ = c.send("q")
	}
	p.mu.Unlock()
	deadline := time.After(wait)
	for _, c := range all {
		select {
		case <-c.proc.Exited():
		case <-deadline:
			c.proc.Kill()
		}
	}
}

// created is how many calls the pool's SIPps have created so far, by
// their own statistics files.
func (p *callerPool) created() int {
	p.mu.Lock()
	all := slices.Clone(p.all)
	p.mu.Unlock()
	n := 0
	for _, c := range all {
		if st, err := c.stats(); err == nil {
			n += st.Created
		}
	}
	return n
}

type callerStats struct {
	sipptest.Stats
	pcscf  netip.AddrPort
	quitAt time.Time
	errs   string // the end of SIPp's error log when calls failed
}

func (c *caller) stats() (callerStats, error) {
	out := callerStats{pcscf: c.pcscf, quitAt: c.quitAt}
	st, err := c.proc.Stats()
	if err != nil {
		return out, fmt.Errorf("caller to %s: %v", c.pcscf, err)
	}
	out.Stats = st
	if st.Failed > 0 {
		out.errs = c.proc.Errors(1500)
	}
	return out, nil
}

// tombstone listens on a killed instance's SIP address and records when
// each new INVITE (first time its Call-ID is seen) arrives: the calls that
// still reach the dead instance.
type tombstone struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	first map[string]time.Time
	done  chan struct{}
}

func listenTombstone(addr netip.AddrPort, within time.Duration) (*tombstone, error) {
	var conn *net.UDPConn
	var err error
	for end := time.Now().Add(within); ; time.Sleep(2 * time.Millisecond) {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ts := &tombstone{conn: conn, first: map[string]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(ts.done)
		buf := make([]byte, 65535)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			at := time.Now()
			msg := string(buf[:n])
			if !strings.HasPrefix(msg, "INVITE ") {
				continue
			}
			for _, l := range strings.Split(msg, "\r\n") {
				k, v, ok := strings.Cut(l, ":")
				if ok && (strings.EqualFold(strings.TrimSpace(k), "Call-ID") || strings.TrimSpace(k) == "i") {
					id := strings.TrimSpace(v)
					ts.mu.Lock()
					if _, seen := ts.first[id]; !seen {
						ts.first[id] = at
					}
					ts.mu.Unlock()
					break
				}
			}
		}
	}()
	return ts, nil
}

// last returns the number of distinct INVITEs and the last first arrival.
func (ts *tombstone) last() (int, time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var l time.Time
	for _, at := range ts.first {
		if at.After(l) {
			l = at
		}
	}
	return len(ts.first), l
}

func (ts *tombstone) close() {
	ts.conn.Close()
	<-ts.done
}
