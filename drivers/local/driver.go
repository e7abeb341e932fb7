// Package local is the drivers.Driver for real SIP VNFs on this machine: each
// P-CSCF or S-CSCF instance is a supervised Kamailio process on its own
// loopback address (see the address plan in plan.go), with a config rendered
// from deploy/kamailio's template into a per-instance run dir.
//
// Instance lifecycle:
//
//	Launch ──▶ booting ──(core.version answers)──▶ active ──▶ gone
//	              │  (no answer within ReadyTimeout)           ▲
//	              └──────────▶ error ──(Terminate)─────────────┤
//	  any state ──(process exits without Terminate)──▶ gone, Reason "unexpected exit: ..."
//
// Terminate sends SIGTERM to the main process, waits Grace, then SIGKILLs the
// whole process group. Drain waits (bounded) until the instance carries no
// transaction and no dialog before terminating it, so scale-in never cuts a
// call. P-CSCFs find the S-CSCF pool of their DC by DNS SRV through the
// DC's discovery server (controller/discovery) unless Config.NextHop fixes it.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	kamfiles "github.com/ims-orch/ims-orch/deploy/kamailio"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
)

// Config configures a Driver. The zero value runs real Kamailio processes
// under ./.kamailio-dev with DNS discovery for P-CSCFs.
type Config struct {
	// BaseDir holds one run dir per instance (config, pid file, log).
	BaseDir string
	// Kamailio is the kamailio binary ("kamailio" on PATH when empty).
	Kamailio string
	// Children, ShmMB, PkgMB: Kamailio's -n, -m and -M (4, 256, 8 when zero).
	Children, ShmMB, PkgMB int
	// Domain under which DC zones are named: Zone(dc, Domain) ("ims.local").
	Domain string
	// NextHop, when set, gives the P-CSCFs of a DC a fixed S-CSCF URI
	// ("sip:127.10.2.1:5060") instead of DNS discovery (which needs root,
	// see DNSAvailable).
	NextHop func(dc string) string
	// DCIndex maps a DC name to its index in the address plan (ParseDCIndex).
	DCIndex func(dc string) (int, error)
	// DNSMaxTTL caps Kamailio's DNS cache, seconds (1 when zero).
	DNSMaxTTL int
	// CPExpire: an S-CSCF's per-pair CP counter idle this long is removed
	// (default 5 min; it must exceed the CP meter's period many times over).
	CPExpire time.Duration
	// ReadyTimeout bounds booting (10 s), ProbeInterval spaces readiness
	// probes (50 ms), Grace is SIGTERM → SIGKILL (5 s), DrainPoll spaces
	// drain checks (250 ms).
	ReadyTimeout, ProbeInterval, Grace, DrainPoll time.Duration
	// Quarantine keeps a released instance address from being handed out
	// again for this long while another one is free (0: the lowest free
	// address is reused at once).
	Quarantine time.Duration
	// NoTakeover: a replacement (Spec.Replaces) never gets the failed
	// instance's address (the e2e test listens on a killed S-CSCF's address to
	// see what still arrives there). By default it takes the address over, so
	// that Path, Record-Route and DNS answers naming the failed instance reach
	// its successor.
	NoTakeover bool
	// DialogTimeout expires a dialog that saw no in-dialog request for this
	// long (a cut call's BYE never comes); DefaultDialogTimeout when zero.
	DialogTimeout time.Duration
	// Media (issue 13), when set, gives the P-CSCFs of DC index dc their
	// media hook URL and the DC's entry address (TemplateData.MediaHook,
	// MediaEntryIP); an empty hook leaves that DC's P-CSCFs without one.
	Media func(dc int) (hook string, entryIP netip.Addr)
	// KeepRunDirs keeps every run dir on disk, also of terminated instances
	// and failed launches (without it, dirs of instances that exited
	// unexpectedly or were killed are kept for their log, the last
	// MaxFailedRunDirs of them, and the others are removed).
	KeepRunDirs bool

	// Clock, Starter, Probe and Stats are the driver's edges; tests replace them.
	Clock   clock.Clock
	Starter Starter
	// Probe answers nil once the instance's RPC socket answers (core.version).
	Probe func(ctx context.Context, rpc netip.AddrPort) error
	// Stats fetches Kamailio statistics by "group:name" (stats.fetch).
	Stats func(ctx context.Context, rpc netip.AddrPort, names ...string) (map[string]int64, error)
	// MarkSynced tells a new S-CSCF with peers that its registrations are
	// synced (pv.shvSet synced int 1): its "503 Registrations Syncing"
	// window for unknown callees ends (TemplateData.SyncGraceS).
	MarkSynced func(ctx context.Context, rpc netip.AddrPort) error
	// Files holds the template (deploy/kamailio when nil).
	Files fs.FS
}

func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.BaseDir == "" {
		c.BaseDir = ".kamailio-dev"
	}
	if c.Kamailio == "" {
		c.Kamailio = "kamailio"
	}
	def(&c.Children, 4)
	def(&c.ShmMB, 256)
	def(&c.PkgMB, 8)
	def(&c.DNSMaxTTL, 1)
	if c.CPExpire <= 0 {
		c.CPExpire = 5 * time.Minute
	}
	if c.Domain == "" {
		c.Domain = "ims.local"
	}
	if c.DCIndex == nil {
		c.DCIndex = ParseDCIndex
	}
	defd(&c.ReadyTimeout, 10*time.Second)
	defd(&c.ProbeInterval, 50*time.Millisecond)
	defd(&c.Grace, 5*time.Second)
	defd(&c.DrainPoll, 250*time.Millisecond)
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Starter == nil {
		c.Starter = ExecStarter{}
	}
	if c.Probe == nil {
		c.Probe = func(ctx context.Context, rpc netip.AddrPort) error {
			_, err := kamrpc.New(rpc).Version(ctx)
			return err
		}
	}
	if c.Stats == nil {
		c.Stats = func(ctx context.Context, rpc netip.AddrPort, names ...string) (map[string]int64, error) {
			return kamrpc.New(rpc).Stats(ctx, names...)
		}
	}
	if c.MarkSynced == nil {
		c.MarkSynced = func(ctx context.Context, rpc netip.AddrPort) error {
			_, err := kamrpc.New(rpc).Call(ctx, "pv.shvSet", "synced", "int", 1)
			return err
		}
	}
	if c.Files == nil {
		c.Files = kamfiles.Files
	}
}

// frTimerMS is tm's final-response timer: how long a proxied request waits
// for a reply before a 408 (or the next SRV target). 8 s: long enough that a
// starved callee on a busy 2-core machine does not turn into failed calls
// (2 s did), and the local controller takes dead S-CSCFs out of DNS on their
// gone event long before it matters.
const frTimerMS = 8000

// Zone is the DNS zone of DC index dc: "dc<dc>.<domain>". The P-CSCFs of the
// DC resolve "_sip._udp.scscf.<zone>"; controller/discovery serves it.
func Zone(dc int, domain string) string { return "dc" + strconv.Itoa(dc) + "." + domain }

// Driver runs SIP VNF instances as local processes. Safe for concurrent use.
type Driver struct {
	cfg Config

	mu    sync.Mutex
	insts map[string]*inst
	// closed is set by Close before it waits for the launches under way:
	// a launch that gets the lock after it fails with ErrClosed, so no
	// instance outlives Close
	closed bool
	// failedAddr keeps the address of instances that exited without
	// Terminate or were killed, for a replacement that takes it over
	// (Spec.Replaces); an entry is used once.
	failedAddr map[string]failedAddr
	plan       addrPlan
	subs       map[int]drivers.EventHandler
	nextSub    int
	// failedDirs are the kept run dirs of failed instances, oldest first
	// (at most MaxFailedRunDirs), one entry per dir.
	failedDirs []string
	// dirs are the run dirs in use: a live instance's, a kept failed
	// one's, one being removed. A launch takes a dir not in use (an ID
	// launched again gets "<ID>.2", "<ID>.3", …), so removing a dropped
	// dir without the lock never touches another instance's.
	dirs map[string]bool
	// launching are the instances whose run dir is being written and
	// process started, without the lock: their ID, address and dir are
	// taken; a launch of the same ID, Terminate and Kill wait for them
	launching map[string]*inst
	// removeAll removes a run dir (os.RemoveAll; tests hold it)
	removeAll func(string) error
	// onSettle, when set (tests), hears of a caller that starts waiting
	// for the launch of id
	onSettle func(id string)
}

// MaxFailedRunDirs bounds the run dirs of failed instances kept for their
// logs: a crash loop would otherwise leave one per failure for as long as
// it lasts.
const MaxFailedRunDirs = 32

// runDir picks a run dir for a new instance of id, under d.mu: BaseDir/id,
// or BaseDir/id.N when that one is in use (a failed launch of the same ID
// whose log is kept), and marks it in use.
func (d *Driver) runDir(id string) string {
	dir := filepath.Join(d.cfg.BaseDir, id)
	for n := 2; d.dirs[dir]; n++ {
		dir = filepath.Join(d.cfg.BaseDir, id+"."+strconv.Itoa(n))
	}
	d.dirs[dir] = true
	return dir
}

// makeRunDir creates in.dir, without the lock. A dir of that name on disk
// is replaced; with KeepRunDirs it is another instance's kept dir (they are
// not tracked, so that d.dirs stays bounded), and the instance takes the
// next free name instead.
func (d *Driver) makeRunDir(id string, in *inst) error {
	var tried []string // kept on disk: held in d.dirs until a name is found
	defer func() {
		if len(tried) > 0 {
			d.mu.Lock()
			for _, dir := range tried {
				delete(d.dirs, dir)
			}
			d.mu.Unlock()
		}
	}()
	// The base dir may not exist yet (a BaseDir the driver was given but
	// nobody created, or one removed since): Mkdir below does not create
	// parents.
	if err := os.MkdirAll(filepath.Dir(in.dir), 0o755); err != nil {
		return err
	}
	for {
		err := os.Mkdir(in.dir, 0o755)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			return err
		}
		if !d.cfg.KeepRunDirs {
			if err := os.RemoveAll(in.dir); err != nil {
				return err
			}
			return os.Mkdir(in.dir, 0o755)
		}
		d.mu.Lock()
		tried = append(tried, in.dir)
		in.dir = d.runDir(id)
		d.mu.Unlock()
	}
}

// retireDirLocked takes the run dir of an instance that is gone (or whose
// launch failed) out of use, d.mu held, and returns the dirs to remove
// without the lock (removeDirs):
//   - KeepRunDirs: every dir stays on disk and is forgotten at once;
//   - failed (an exit without Terminate, or Kill): kept for its log, the
//     last MaxFailedRunDirs of them; the oldest beyond are returned;
//   - else (terminated, or a launch whose process never started): returned.
func (d *Driver) retireDirLocked(dir string, failed bool) (remove []string) {
	switch {
	case d.cfg.KeepRunDirs:
		delete(d.dirs, dir)
		return nil
	case failed:
		d.failedDirs = append(d.failedDirs, dir)
		n := len(d.failedDirs) - MaxFailedRunDirs
		if n <= 0 {
			return nil
		}
		remove = slices.Clone(d.failedDirs[:n])
		d.failedDirs = slices.Delete(d.failedDirs, 0, n)
		return remove
	default:
		return []string{dir}
	}
}

// removeDirs removes dirs without the lock, then frees their names: they
// stay in d.dirs meanwhile, so no launch takes one that is being removed.
func (d *Driver) removeDirs(dirs []string) {
	if len(dirs) == 0 {
		return
	}
	for _, dir := range dirs {
		_ = d.removeAll(dir)
	}
	d.mu.Lock()
	for _, dir := range dirs {
		delete(d.dirs, dir)
	}
	d.mu.Unlock()
}

// settleLocked waits, d.mu held (released meanwhile), until id is no
// longer being launched.
func (d *Driver) settleLocked(ctx context.Context, id string) error {
	for {
		l, ok := d.launching[id]
		if !ok {
			return nil
		}
		d.mu.Unlock()
		if d.onSettle != nil {
			d.onSettle(id)
		}
		select {
		case <-l.started:
		case <-ctx.Done():
			d.mu.Lock()
			return ctx.Err()
		}
		d.mu.Lock()
	}
}

var _ drivers.Drainer = (*Driver)(nil)

type inst struct {
	info          drivers.Instance
	role          Role
	dcIdx         int
	addr          netip.Addr
	dir           string
	proc          Process
	done          chan struct{}
	released      chan struct{} // closed once its process group is gone and its address free
	started       chan struct{} // closed once its launch ended (process started or not)
	terminating   bool
	killed        bool // Kill: failed, SIGKILLed at once (run dir kept)
	wasActive     bool // it reached active once
	tookOver      bool // it got the address of the instance it replaces
	exited        bool
	readyDeadline time.Time
	killTimer     clock.Timer
	// peers are the S-CSCFs it replicates registrations with (dmq_usrloc);
	// it is ready only once its registration table caught up with theirs.
	peers []netip.Addr
	// lateReads tracks, per peer, the readiness probes in a row whose read
	// of that peer timed out (usrlocSynced); only the probe touches it, and
	// probes of one instance run one after another.
	lateReads map[netip.Addr]lateRun
}

// New returns a Driver.
func New(cfg Config) (*Driver, error) {
	cfg.defaults()
	abs, err := filepath.Abs(cfg.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("local: BaseDir: %w", err)
	}
	cfg.BaseDir = abs
	if _, err := fs.Stat(cfg.Files, kamfiles.Template); err != nil {
		return nil, fmt.Errorf("local: Files: template %s: %w", kamfiles.Template, err)
	}
	// Kamailio processes of a previous run that was killed hold our addresses.
	reapStale(cfg.BaseDir, 2*time.Second)
	return &Driver{cfg: cfg, insts: map[string]*inst{}, subs: map[int]drivers.EventHandler{}, failedAddr: map[string]failedAddr{},
		plan: addrPlan{quarantine: cfg.Quarantine, now: cfg.Clock.Now, held: portsHeld}, dirs: map[string]bool{},
		launching: map[string]*inst{}, removeAll: os.RemoveAll}, nil
}

func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return fmt.Errorf("%w: ID: %q: empty, dot or longer than 128", drivers.ErrInvalid, id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: ID: %q: only letters, digits, '-', '_' and '.'", drivers.ErrInvalid, id)
		}
	}
	return nil
}

// Launch starts an instance (idempotent on spec.ID) and returns it booting;
// an active event follows once its RPC socket answers.
func (d *Driver) Launch(ctx context.Context, spec drivers.Spec) (drivers.Instance, error) {
	if err := ctx.Err(); err != nil {
		return drivers.Instance{}, err
	}
	if err := validID(spec.ID); err != nil {
		return drivers.Instance{}, err
	}
	role, err := ParseRole(spec.VNF)
	if err != nil {
		return drivers.Instance{}, fmt.Errorf("%w: %v", drivers.ErrInvalid, err)
	}
	dcIdx, err := d.cfg.DCIndex(spec.DC)
	if err != nil {
		return drivers.Instance{}, fmt.Errorf("%w: %v", drivers.ErrInvalid, err)
	}
	if dcIdx < 0 || dcIdx > MaxDC {
		return drivers.Instance{}, fmt.Errorf("%w: DC: %q: index %d outside 0..%d", drivers.ErrInvalid, spec.DC, dcIdx, MaxDC)
	}

	if spec.Replaces != "" && spec.Replaces != spec.ID {
		// Take over the failed instance's address: stop what is left of it
		// first (a stopped process still holds its sockets).
		if err := d.Kill(ctx, spec.DC, spec.Replaces); err != nil && !errors.Is(err, drivers.ErrNotFound) {
			return drivers.Instance{}, fmt.Errorf("local: launch %s: stop the replaced %s: %w", spec.ID, spec.Replaces, err)
		}
	}

	if old, ok := d.failedAddrOf(spec.Replaces); ok {
		// its address is released once its process group is gone
		select {
		case <-old.released:
		case <-ctx.Done():
		}
	}
	d.mu.Lock()
	for {
		if d.closed {
			d.mu.Unlock()
			return drivers.Instance{}, fmt.Errorf("local: launch %s: %w", spec.ID, ErrClosed)
		}
		if in, ok := d.insts[spec.ID]; ok {
			info := in.snapshot()
			d.mu.Unlock()
			if info.DC != spec.DC || info.VNF != spec.VNF {
				return drivers.Instance{}, fmt.Errorf("%w: ID %q already runs as %s in %s", drivers.ErrInvalid, spec.ID, info.VNF, info.DC)
			}
			return info, nil
		}
		if _, ok := d.launching[spec.ID]; !ok {
			break
		}
		// the same ID is being launched: its outcome decides
		if err := d.settleLocked(ctx, spec.ID); err != nil {
			d.mu.Unlock()
			return drivers.Instance{}, err
		}
	}
	var addr netip.Addr
	tookOver := false
	if old, ok := d.failedAddr[spec.Replaces]; ok && spec.Replaces != "" && !d.cfg.NoTakeover && d.plan.takeover(old.addr, dcIdx, role) {
		addr, tookOver = old.addr, true
		delete(d.failedAddr, spec.Replaces)
	} else {
		addr, err = d.plan.alloc(dcIdx, role)
	}
	if err != nil {
		d.mu.Unlock()
		return drivers.Instance{}, fmt.Errorf("%w: %v", drivers.ErrCapacity, err)
	}
	in := &inst{role: role, dcIdx: dcIdx, addr: addr, dir: d.runDir(spec.ID), done: make(chan struct{}),
		released: make(chan struct{}), started: make(chan struct{}), tookOver: tookOver, lateReads: map[netip.Addr]lateRun{}}
	td, useDNS := d.templateLocked(spec, in)
	d.launching[spec.ID] = in // its address, dir and DMQ role are taken
	d.mu.Unlock()

	// the run dir is written and the process started without the lock
	cmd, err := d.prepare(spec, in, td, useDNS)
	var proc Process
	if err == nil {
		proc, err = d.cfg.Starter.Start(cmd)
	}

	d.mu.Lock()
	delete(d.launching, spec.ID)
	close(in.started)
	if err != nil {
		d.plan.release(addr)
		// its run dir holds only what prepare wrote (no process ran)
		remove := d.retireDirLocked(in.dir, false)
		d.mu.Unlock()
		d.removeDirs(remove)
		return drivers.Instance{}, fmt.Errorf("local: launch %s: %w", spec.ID, err)
	}
	in.proc = proc
	now := d.cfg.Clock.Now()
	pool := spec.DefaultPool()
	md := spec.CloudMetadata(pool)
	in.info = drivers.Instance{
		ID: spec.ID, CloudID: strconv.Itoa(in.proc.Pid()), DC: spec.DC, VNF: spec.VNF, Pool: pool,
		State: drivers.StateBooting, Address: netip.AddrPortFrom(addr, SIPPort).String(),
		Host: "localhost", Created: now, Metadata: md,
	}
	in.readyDeadline = now.Add(d.cfg.ReadyTimeout)
	d.insts[spec.ID] = in
	info := in.snapshot()
	d.cfg.Clock.AfterFunc(d.cfg.ProbeInterval, func() { d.probe(in) })
	d.mu.Unlock()

	go d.supervise(in)
	d.emit(drivers.Event{ID: spec.ID, DC: spec.DC, VNF: spec.VNF, State: drivers.StateBooting, Reason: "launched on " + info.Address, At: now})
	return info, nil
}

// failedAddrOf returns the kept address of failed instance id, if any and
// takeovers are on.
func (d *Driver) failedAddrOf(id string) (failedAddr, bool) {
	if id == "" || d.cfg.NoTakeover {
		return failedAddr{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.failedAddr[id]
	return old, ok
}

// templateLocked fills the template of a new instance (d.mu held: its
// DMQ peers are the DC's other S-CSCFs, live or being launched) and says
// whether its P-CSCF finds the S-CSCFs by DNS.
func (d *Driver) templateLocked(spec drivers.Spec, in *inst) (TemplateData, bool) {
	td := TemplateData{
		ID: spec.ID, Role: in.role, DC: spec.DC, Addr: in.addr, Children: d.cfg.Children,
		CtlSock:   "udp:" + netip.AddrPortFrom(in.addr, CtlPort).String(),
		RPCSock:   "udp:" + netip.AddrPortFrom(in.addr, RPCPort).String(),
		DNSMaxTTL: d.cfg.DNSMaxTTL, FRTimerMS: frTimerMS, CPExpireS: max(1, int(d.cfg.CPExpire/time.Second)),
		DialogTimeoutS: int((d.cfg.DialogTimeout + time.Second - 1) / time.Second),
		Alias:          string(in.role) + "." + Zone(in.dcIdx, d.cfg.Domain),
		SyncGraceS:     syncGraceS(d.cfg.ReadyTimeout),
	}
	if in.role == RoleSCSCF {
		for _, o := range d.insts {
			if o.role == RoleSCSCF && o.dcIdx == in.dcIdx && !o.exited && !o.terminating {
				td.DMQPeers = append(td.DMQPeers, o.addr)
			}
		}
		for _, o := range d.launching {
			if o.role == RoleSCSCF && o.dcIdx == in.dcIdx {
				td.DMQPeers = append(td.DMQPeers, o.addr)
			}
		}
		slices.SortFunc(td.DMQPeers, func(a, b netip.Addr) int { return a.Compare(b) })
		in.peers = slices.Clone(td.DMQPeers)
	}
	useDNS := false
	if in.role == RolePCSCF && d.cfg.Media != nil {
		td.MediaHook, td.MediaEntryIP = d.cfg.Media(in.dcIdx)
	}
	if in.role == RolePCSCF {
		if d.cfg.NextHop != nil {
			td.NextHop = d.cfg.NextHop(spec.DC)
		} else {
			useDNS = true
			td.NextHop = "sip:scscf." + Zone(in.dcIdx, d.cfg.Domain)
		}
	}
	return td, useDNS
}

// prepare writes the run dir and returns the command that starts the
// instance; it runs without the lock (in.dir is taken: no other launch
// writes it). A dir left on disk under that name (an earlier run of the
// driver's, or one kept by KeepRunDirs) is replaced, unless KeepRunDirs:
// then the instance takes the next free name.
func (d *Driver) prepare(spec drivers.Spec, in *inst, td TemplateData, useDNS bool) (Command, error) {
	if err := d.makeRunDir(spec.ID, in); err != nil {
		return Command{}, err
	}
	cfgText, err := Render(d.cfg.Files, kamfiles.Template, td)
	if err != nil {
		return Command{}, err
	}
	cfgPath := filepath.Join(in.dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, cfgText, 0o644); err != nil {
		return Command{}, err
	}
	args := []string{
		"-DD", "-E", // foreground, log to stderr (the run dir's kamailio.log)
		"-f", cfgPath,
		"-l", "udp:" + netip.AddrPortFrom(in.addr, SIPPort).String(), // never every interface
		"-l", "tcp:" + netip.AddrPortFrom(in.addr, SIPPort).String(), // RFC 3261 §18: TCP too
		"-n", strconv.Itoa(d.cfg.Children),
		"-m", strconv.Itoa(d.cfg.ShmMB), "-M", strconv.Itoa(d.cfg.PkgMB),
		"-Y", in.dir, "-P", filepath.Join(in.dir, "kamailio.pid"),
	}
	cmd := Command{Path: d.cfg.Kamailio, Args: args, Dir: in.dir, LogFile: filepath.Join(in.dir, "kamailio.log")}
	if useDNS {
		ns, err := DNSAddr(in.dcIdx)
		if err != nil {
			return Command{}, err
		}
		resolv := filepath.Join(in.dir, "resolv.conf")
		body := fmt.Sprintf("# %s: the discovery server of DC %d\nnameserver %s\noptions timeout:1 attempts:1\n", spec.ID, in.dcIdx, ns.Addr())
		if err := os.WriteFile(resolv, []byte(body), 0o644); err != nil {
			return Command{}, err
		}
		// private mount namespace: this process alone sees resolv.conf over
		// /etc/resolv.conf; unshare and sh exec, so the pid stays Kamailio's.
		cmd.Args = append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c",
			`mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv, d.cfg.Kamailio}, args...)
		cmd.Path = "unshare"
	}
	return cmd, nil
}

func (in *inst) snapshot() drivers.Instance {
	info := in.info
	info.Metadata = make(map[string]string, len(in.info.Metadata))
	for k, v := range in.info.Metadata {
		info.Metadata[k] = v
	}
	return info
}

func (d *Driver) probe(in *inst) {
	d.mu.Lock()
	if in.exited || in.terminating || in.info.State != drivers.StateBooting {
		d.mu.Unlock()
		return
	}
	rpc := netip.AddrPortFrom(in.addr, RPCPort)
	peers := in.peers
	d.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	err := d.cfg.Probe(ctx, rpc)
	cancel()
	synced := true
	if err == nil && len(peers) > 0 {
		// A new S-CSCF that answered RPC may not have pulled the replicated
		// registrations yet: a call routed to it now would get 404.
		if serr := d.usrlocSynced(rpc, peers, in.lateReads); serr != nil {
			err, synced = serr, false
		}
	}
	now := d.cfg.Clock.Now()
	markErr := ""
	if len(peers) > 0 && (err == nil || !synced && !now.Before(in.readyDeadline)) {
		// into service: its 503 window for unknown callees ends now
		mctx, mcancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		if merr := d.cfg.MarkSynced(mctx, rpc); merr != nil {
			markErr = fmt.Sprintf("; sync not marked (%v): its 503 window ends %d s after its start", merr, syncGraceS(d.cfg.ReadyTimeout))
		}
		mcancel()
	}

	d.mu.Lock()
	if in.exited || in.terminating || in.info.State != drivers.StateBooting {
		d.mu.Unlock()
		return
	}
	var ev *drivers.Event
	switch {
	case err == nil:
		in.info.State, in.wasActive = drivers.StateActive, true
		ev = &drivers.Event{State: drivers.StateActive, Reason: "rpc answers"}
		if len(peers) > 0 {
			ev.Reason = "rpc answers, registrations synced from peers" + markErr
		}
	case !synced && !now.Before(in.readyDeadline):
		// it serves, only its replica lags: better in service than failed
		in.info.State, in.wasActive = drivers.StateActive, true
		ev = &drivers.Event{State: drivers.StateActive, Reason: "rpc answers; " + err.Error() + " at the ready timeout" + markErr}
	case !now.Before(in.readyDeadline):
		in.info.State = drivers.StateError
		ev = &drivers.Event{State: drivers.StateError, Reason: fmt.Sprintf("not ready after %v: %v", d.cfg.ReadyTimeout, err)}
	default:
		d.cfg.Clock.AfterFunc(d.cfg.ProbeInterval, func() { d.probe(in) })
	}
	d.mu.Unlock()
	if ev != nil {
		ev.ID, ev.DC, ev.VNF, ev.At = in.info.ID, in.info.DC, in.info.VNF, now
		d.emit(*ev)
	}
}

// syncGraceS caps a new S-CSCF's sync window (TemplateData.SyncGraceS): the
// probe puts it in service, and marks the sync done, by the ready timeout;
// the cap ends the window should that RPC be lost.
func syncGraceS(ready time.Duration) int {
	return int((ready+time.Second-1)/time.Second) + 1
}

// probeTimeout bounds each RPC call of a readiness probe.
const probeTimeout = 250 * time.Millisecond

// A peer whose reads time out holds a new S-CSCF back until it has been
// late on at least maxLateReads probes in a row and for at least
// hungAfter(ReadyTimeout) (on the driver's clock) since the first of them; then it is
// hung (SIGSTOPped, wedged: it keeps its port bound, so its reads time out
// rather than being refused) and skipped like a refusing one. Without a
// bound a hung peer would keep every S-CSCF launched meanwhile in its DC
// booting until the ready timeout. The time bound keeps a live peer on a
// very loaded host, whose reads are late on a few probes in a row (3 late
// probes take ≈ 0.9 s at the defaults), from being skipped; the count keeps
// a few probes far apart (the probe itself delayed) from being enough.
// hungPeerAfter is the time bound at the default ReadyTimeout; a shorter
// ReadyTimeout shortens it (hungAfter), so that a hung peer never holds a new
// S-CSCF to its ready timeout by time alone.
const (
	maxLateReads  = 3
	hungPeerAfter = 3 * time.Second
)

// hungAfter is the time bound of a peer's late run for ready timeout ready:
// hungPeerAfter, capped at a third of ready. A new S-CSCF whose RPC answers
// within the first two thirds of its ready timeout (boots take 0.5–1 s quiet,
// up to 8.8 s beside 20 CPU burners against a 30 s timeout) thus skips a hung
// peer before the timeout, with ReadyTimeout/3 left for its own sync; a fixed
// 3 s would hold it to a ready timeout of 3 s or less outright.
func hungAfter(ready time.Duration) time.Duration {
	return min(hungPeerAfter, ready/3)
}

// lateRun is a peer's run of late reads: how many probes in a row, and the
// clock time of the first.
type lateRun struct {
	n     int
	since time.Time
}

// usrlocSynced reports nil when the instance at rpc holds at least as many
// registered users as each of its peers (dmq_usrloc's full sync is done).
// Each read has its own probeTimeout. A peer that refuses the read (its
// process is gone) cannot hold the instance back; one whose answer did not
// come in time does, until the next probe: on a loaded host the probe itself
// may be the late one, and a new S-CSCF put in service before its
// registrations are in answers 404 for registered users. late tracks each
// peer's timed-out reads in a row (an answer or a refusal resets it); a
// peer late on maxLateReads probes in a row over hungAfter(ReadyTimeout) is
// skipped like a refusing one (hung), until it answers again.
func (d *Driver) usrlocSynced(rpc netip.AddrPort, peers []netip.Addr, late map[netip.Addr]lateRun) error {
	const stat = "usrloc:registered_users"
	read := func(a netip.AddrPort) (map[string]int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		return d.cfg.Stats(ctx, a, stat)
	}
	own, err := read(rpc)
	if err != nil {
		return fmt.Errorf("registrations not readable: %w", err)
	}
	var lateErr error
	for _, p := range peers {
		theirs, err := read(netip.AddrPortFrom(p, RPCPort))
		if err != nil {
			if te, ok := errors.AsType[interface {
				error
				Timeout() bool
			}](err); ok && te.Timeout() {
				now := d.cfg.Clock.Now()
				r, ok := late[p]
				if !ok {
					r.since = now
				}
				r.n++
				late[p] = r
				if (r.n < maxLateReads || now.Sub(r.since) < hungAfter(d.cfg.ReadyTimeout)) && lateErr == nil {
					lateErr = fmt.Errorf("registrations not synced yet: peer %s not read in time (%d probes in a row, %v): %w",
						p, r.n, now.Sub(r.since), err)
				}
				continue // hung: skipped like a refusing one
			}
			delete(late, p)
			continue // refused: a peer that is gone cannot hold us back
		}
		delete(late, p)
		if own[stat] < theirs[stat] {
			return fmt.Errorf("registrations not synced yet (%d of %d from %s)", own[stat], theirs[stat], p)
		}
	}
	return lateErr
}

// supervise waits for the process to exit and reports it at once.
func (d *Driver) supervise(in *inst) {
	werr := in.proc.Wait()
	// Kamailio's workers may outlive a killed main process: reap the group.
	_ = in.proc.Signal(syscall.SIGKILL, true)

	d.mu.Lock()
	in.exited = true
	if in.killTimer != nil {
		in.killTimer.Stop()
	}
	delete(d.insts, in.info.ID)
	in.info.State = drivers.StateGone
	released := in.released
	reason := "terminated"
	if !in.terminating {
		reason = "unexpected exit: " + exitReason(werr)
	}
	// A failed instance's address is taken over by its replacement when
	// it served, or when it had itself taken it over (a slot keeps its
	// address through a crash loop). One that died while booting may have
	// died of its address (another process holds a port of it): the plan
	// hands it out again only once its ports bind (a crash loop on it
	// otherwise).
	bootDeath := !in.terminating && !in.wasActive
	if (!in.terminating || in.killed) && (in.wasActive || in.tookOver) {
		if len(d.failedAddr) >= 1024 { // bounded: only recent failures are taken over
			clear(d.failedAddr)
		}
		d.failedAddr[in.info.ID] = failedAddr{addr: in.addr, released: released}
	}
	if in.killed {
		reason = "killed (failed)"
	}
	remove := d.retireDirLocked(in.dir, !in.terminating || in.killed)
	ev := drivers.Event{ID: in.info.ID, DC: in.info.DC, VNF: in.info.VNF, State: drivers.StateGone, Reason: reason, At: d.cfg.Clock.Now()}
	close(in.done)
	d.mu.Unlock()
	d.emit(ev) // at once: the controller takes it out of DNS and replaces it

	// The address is handed out again only once the whole group is gone, so
	// that its sockets are closed (bounded: the kernel tears the workers down).
	if g, ok := in.proc.(interface{ GroupGone() bool }); ok {
		for end := time.Now().Add(2 * time.Second); !g.GroupGone() && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	d.removeDirs(remove) // before released: Terminate returns with the run dir gone
	d.mu.Lock()
	d.plan.release(in.addr)
	if bootDeath {
		d.plan.distrust(in.addr)
	}
	close(released)
	d.mu.Unlock()
}

// failedAddr is a failed instance's address, free for its replacement
// once released is closed.
type failedAddr struct {
	addr     netip.Addr
	released chan struct{}
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// instanceLocked finds instance id in dc ("" = any DC): nil and no error
// when it is unknown (already gone), nil and ErrNotFound when it lives in
// another DC. d.mu is held.
func (d *Driver) instanceLocked(dc, id string) (*inst, error) {
	in, ok := d.insts[id]
	if !ok {
		return nil, nil
	}
	if dc != "" && in.info.DC != dc {
		return nil, fmt.Errorf("%w: %s is in DC %s, not %s", drivers.ErrNotFound, id, in.info.DC, dc)
	}
	return in, nil
}

// Terminate stops an instance: SIGTERM, then SIGKILL to its process group
// after Grace. It returns once its process group is gone and its address
// free (or ctx ends).
// Unknown instances are taken as already gone.
func (d *Driver) Terminate(ctx context.Context, dc, id string) error {
	d.mu.Lock()
	if err := d.settleLocked(ctx, id); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("local: terminate %s: %w", id, err)
	}
	in, err := d.instanceLocked(dc, id)
	if in == nil {
		d.mu.Unlock()
		return err
	}
	if !in.terminating {
		in.terminating = true
		_ = in.proc.Signal(syscall.SIGTERM, false)
		in.killTimer = d.cfg.Clock.AfterFunc(d.cfg.Grace, func() { _ = in.proc.Signal(syscall.SIGKILL, true) })
	}
	done := in.released
	d.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("local: terminate %s: %w", id, ctx.Err())
	}
}

// Kill stops a failed instance at once: SIGKILL to its whole process group
// (a stopped process too; it cannot answer anything any more), no drain, no
// grace. It returns once its process group is gone (or ctx ends). Its address
// is kept for a replacement that names it in Spec.Replaces. Unknown
// instances are taken as already gone.
func (d *Driver) Kill(ctx context.Context, dc, id string) error {
	d.mu.Lock()
	if err := d.settleLocked(ctx, id); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("local: kill %s: %w", id, err)
	}
	in, err := d.instanceLocked(dc, id)
	if in == nil {
		d.mu.Unlock()
		return err
	}
	in.terminating, in.killed = true, true
	_ = in.proc.Signal(syscall.SIGKILL, true)
	done := in.released
	d.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("local: kill %s: %w", id, ctx.Err())
	}
}

var _ drivers.Killer = (*Driver)(nil)

// List returns the live instances in dc ("" = all), sorted by ID. An
// instance being launched is not among them until its process started
// (Launch returned): it is not waited for, so List is served while a start
// hangs, and it is not listed as booting, since a launch that fails sends no
// event and an adopter would keep it (see drivers.Driver.List).
func (d *Driver) List(ctx context.Context, dc string) ([]drivers.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []drivers.Instance{}
	for _, in := range d.insts {
		if dc == "" || in.info.DC == dc {
			out = append(out, in.snapshot())
		}
	}
	slices.SortFunc(out, func(a, b drivers.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Subscribe registers h for every later event.
func (d *Driver) Subscribe(h drivers.EventHandler) (cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.nextSub
	d.nextSub++
	d.subs[id] = h
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.subs, id)
	}
}

func (d *Driver) emit(ev drivers.Event) {
	d.mu.Lock()
	hs := make([]drivers.EventHandler, 0, len(d.subs))
	for i := 0; i < d.nextSub; i++ {
		if h, ok := d.subs[i]; ok {
			hs = append(hs, h)
		}
	}
	d.mu.Unlock()
	for _, h := range hs {
		h(ev)
	}
}

// Runtime is what the statistics agent and the harness need of an instance.
type Runtime struct {
	Pid  int
	Role Role
	SIP  netip.AddrPort // where it takes SIP
	RPC  netip.AddrPort // JSON-RPC datagrams
	Dir  string         // run dir (config, log)
}

// Runtime returns a live instance's process and sockets.
func (d *Driver) Runtime(id string) (Runtime, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[id]
	if !ok {
		return Runtime{}, false
	}
	return Runtime{Pid: in.proc.Pid(), Role: in.role, SIP: netip.AddrPortFrom(in.addr, SIPPort),
		RPC: netip.AddrPortFrom(in.addr, RPCPort), Dir: in.dir}, true
}

// Load reads an instance's in-flight transactions and dialogs (Sessions).
func (d *Driver) Load(ctx context.Context, id string) (drivers.InFlight, error) {
	rt, ok := d.Runtime(id)
	if !ok {
		return drivers.InFlight{}, fmt.Errorf("local: load %s: %w", id, drivers.ErrNotFound)
	}
	st, err := d.cfg.Stats(ctx, rt.RPC, "tmx:active_transactions", "dialog:active_dialogs")
	if err != nil {
		return drivers.InFlight{}, fmt.Errorf("local: load %s: %w", id, err)
	}
	at, ok1 := st["tmx:active_transactions"]
	ad, ok2 := st["dialog:active_dialogs"]
	if !ok1 || !ok2 {
		return drivers.InFlight{}, fmt.Errorf("local: load %s: reply lacks tmx:active_transactions or dialog:active_dialogs: %v", id, st)
	}
	return drivers.InFlight{Transactions: at, Sessions: ad}, nil
}

// Drain terminates a buffered instance without cutting calls: it polls Load
// every DrainPoll until the instance carries no dialog and no transaction on
// two polls in a row, or until timeout (the documented bound: callers use the
// longest call they accept to cut, e.g. 90 s for the paper's 60 s calls),
// then terminates it. Two polls, because Kamailio ends a dialog when the BYE
// arrives, before its 200 OK is relayed, and because on 5.6
// tmx:active_transactions is updated in batches: the second poll gives the
// last BYE transaction DrainPoll to finish. The caller must already have
// taken the instance out of DNS, so it gets no new dialogs while draining.
func (d *Driver) Drain(ctx context.Context, dc, id string, timeout time.Duration) (drivers.DrainResult, error) {
	start := d.cfg.Clock.Now()
	deadline := start.Add(timeout)
	var res drivers.DrainResult
	idlePolls := 0
	for {
		if _, ok := d.Runtime(id); !ok {
			res.Finished = true
			res.Waited = d.cfg.Clock.Now().Sub(start)
			return res, nil
		}
		l, err := d.Load(ctx, id)
		res.LastErr = err
		idlePolls++
		if err == nil {
			res.Last = l
		}
		if err != nil || !l.Idle() {
			idlePolls = 0
		}
		if idlePolls >= 2 {
			res.Idle = true
			break
		}
		if !d.cfg.Clock.Now().Before(deadline) {
			break
		}
		if err := clock.Sleep(ctx, d.cfg.Clock, d.cfg.DrainPoll); err != nil {
			return res, fmt.Errorf("local: drain %s: %w", id, err)
		}
	}
	res.Waited = d.cfg.Clock.Now().Sub(start)
	if err := d.Terminate(ctx, dc, id); err != nil {
		return res, err
	}
	res.Finished = true
	return res, nil
}

// ErrClosed is the error of a Launch after Close began.
var ErrClosed = errors.New("driver closed: no new instances")

// Close terminates every instance (SIGTERM, then SIGKILL after Grace),
// those whose launch is under way too once it ended. A Launch from the
// moment Close is called fails with ErrClosed, starting nothing.
func (d *Driver) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	for len(d.launching) > 0 { // a launch under way ends first
		var id string
		for id = range d.launching {
			break
		}
		if err := d.settleLocked(ctx, id); err != nil {
			d.mu.Unlock()
			return fmt.Errorf("local: close: %w", err)
		}
	}
	d.mu.Unlock()
	insts, _ := d.List(ctx, "")
	var errs []error
	for _, in := range insts {
		errs = append(errs, d.Terminate(ctx, in.DC, in.ID))
	}
	return errors.Join(errs...)
}
