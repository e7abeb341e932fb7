package ovs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// OwnerKey is the external-id that marks a bridge as this project's; its
// value is the Daemon's prefix.
const OwnerKey = "ims-orch-owner"

// ErrForeign is returned when a bridge with the requested name exists but is
// not marked as ours.
var ErrForeign = errors.New("bridge exists and is not ours")

// Every prefix has the same length, so a prefix's objects (names that start
// with it) never include another prefix's.
var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{4}$`)

const prefixForm = "5 lower-case letters or digits starting with a letter"

// Config says where the private daemons live.
type Config struct {
	// Dir is the run directory (database, sockets, pid files, logs). It is
	// created if missing; one run directory serves one Daemon at a time.
	Dir string
	// Prefix names every object: the switch namespace <prefix>sw, bridges,
	// ports, instance namespaces. Exactly 5 lower-case letters or digits,
	// starting with a letter, so interface names stay within 15 characters
	// and no prefix starts another. Start claims it (ClaimPrefix) until Stop.
	Prefix string
	// Wait is how long Start waits for a prefix another process holds
	// before it fails with ErrPrefixInUse (0: it fails at once). A clean-up
	// (scripts/ovsclean) holds a dead run's prefix while it deletes that
	// run's leftovers: a daemon restarted in the same run dir meanwhile gets
	// the prefix once the clean-up is done.
	Wait time.Duration
	// Clock times the delayed deletes of ended entry rules (EndHold;
	// clock.Real if nil).
	Clock clock.Clock
	// RulePath is the way a Switch sends its rule bundles: RulePathOpenFlow
	// (the bundles the encoder takes go over one persistent OpenFlow 1.5
	// connection per bridge, ofconn.go; the others, the tag rules' learn,
	// through ovs-ofctl) or RulePathOfctl (one ovs-ofctl run per bundle).
	// Empty: the environment variable IMS_OVS_OPENFLOW_BUNDLES when set
	// ("1": RulePathOpenFlow, "0": RulePathOfctl), else DefaultRulePath,
	// the connection since session 18 (its packet losses of session 16
	// were the forwarder's readiness, fixed then; sessions 17 and 18 ran
	// the real data plane and SIP chaos tests both ways: docs/dataplane.md
	// "Bundles over one OpenFlow connection"). A path set here wins over
	// the environment (a test that needs one path names it). Start
	// refuses any other value, naming the field or the variable.
	RulePath RulePath
}

// RulePath is the way a Switch sends its rule bundles (Config.RulePath).
type RulePath string

// The rule paths.
const (
	RulePathOpenFlow RulePath = "openflow"
	RulePathOfctl    RulePath = "ovs-ofctl"
)

// DefaultRulePath is the rule path of a Config that names none, in an
// environment without IMS_OVS_OPENFLOW_BUNDLES (ovs-ofctl until session 17).
const DefaultRulePath = RulePathOpenFlow

// RulePathEnv overrides DefaultRulePath when set: "1" the OpenFlow
// connection, "0" ovs-ofctl.
const RulePathEnv = "IMS_OVS_OPENFLOW_BUNDLES"

// resolveRulePath returns the rule path of p in an environment whose
// RulePathEnv is env ("": unset), or an error naming the bad setting.
func resolveRulePath(p RulePath, env string) (RulePath, error) {
	switch p {
	case RulePathOpenFlow, RulePathOfctl:
		return p, nil
	case "":
	default:
		return "", fmt.Errorf("rule path (RulePath): %q must be %q, %q or empty (%s, else %q)", p, RulePathOpenFlow, RulePathOfctl, RulePathEnv, DefaultRulePath)
	}
	switch env {
	case "":
		return DefaultRulePath, nil
	case "1":
		return RulePathOpenFlow, nil
	case "0":
		return RulePathOfctl, nil
	}
	return "", fmt.Errorf("%s: %q must be 1 (the OpenFlow connection), 0 (ovs-ofctl) or unset (%q)", RulePathEnv, env, DefaultRulePath)
}

// Daemon is a private ovsdb-server + ovs-vswitchd pair. ovs-vswitchd runs in
// the network namespace SwitchNS(); every bridge-side port lives there.
type Daemon struct {
	cfg   Config
	claim *Claim
	mu    sync.Mutex
}

// SwitchNS is the network namespace ovs-vswitchd and the bridge-side ports
// live in.
func (d *Daemon) SwitchNS() string { return d.cfg.Prefix + "sw" }

// Prefix returns the object name prefix.
func (d *Daemon) Prefix() string { return d.cfg.Prefix }

// Dir returns the run directory.
func (d *Daemon) Dir() string { return d.cfg.Dir }

func (d *Daemon) path(name string) string { return filepath.Join(d.cfg.Dir, name) }

// checkConfig checks what Start and StartFree both need of cfg (its run
// directory, its rule path, which it resolves in place: resolveRulePath)
// and that the OVS programs are there (Available).
func checkConfig(cfg *Config) error {
	if cfg.Dir == "" {
		return errors.New("dir: the run directory is required")
	}
	rp, err := resolveRulePath(cfg.RulePath, os.Getenv(RulePathEnv))
	if err != nil {
		return err
	}
	cfg.RulePath = rp
	return Available()
}

// Start checks cfg, claims its prefix (ErrPrefixInUse, with nothing
// touched, when another live run holds it), removes what a killed previous
// run with the same run directory or prefix left (its daemons, its
// namespaces), and starts fresh daemons with an empty database.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if !prefixRE.MatchString(cfg.Prefix) {
		return nil, fmt.Errorf("prefix: %q must be %s", cfg.Prefix, prefixForm)
	}
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	c, err := ClaimPrefix(cfg.Prefix)
	for end := time.Now().Add(cfg.Wait); errors.Is(err, ErrPrefixInUse) && time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		c, err = ClaimPrefix(cfg.Prefix)
	}
	if err != nil {
		return nil, err
	}
	return start(ctx, cfg, c)
}

// StartFree starts private daemons as Start does, under a prefix no live
// run holds (ClaimFree(lead)): runs started this way never share a name
// with another run, however many run at once. cfg.Prefix must be empty
// (StartFree picks it) and cfg.Wait is not used.
func StartFree(ctx context.Context, cfg Config, lead byte) (*Daemon, error) {
	if cfg.Prefix != "" {
		return nil, fmt.Errorf("prefix: %q given, but StartFree picks a free one (leave it empty)", cfg.Prefix)
	}
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	c, err := ClaimFree(lead)
	if err != nil {
		return nil, err
	}
	cfg.Prefix = c.Prefix()
	return start(ctx, cfg, c)
}

// start starts the daemons of cfg under claim c, which it releases on failure.
func start(ctx context.Context, cfg Config, c *Claim) (*Daemon, error) {
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		c.Release()
		return nil, fmt.Errorf("dir: %v", err)
	}
	cfg.Dir = abs
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		c.Release()
		return nil, fmt.Errorf("dir: %v", err)
	}
	c.setDir(abs)
	d := &Daemon{cfg: cfg, claim: c}
	if err := d.cleanup(ctx); err != nil {
		c.Release()
		return nil, err
	}
	for _, f := range []string{"conf.db", ".conf.db.~lock~"} {
		_ = os.Remove(d.path(f))
	}
	if _, err := run(ctx, cfg.Dir, nil, "ovsdb-tool", "create", d.path("conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
		c.Release() // nothing started yet: the namespaces were deleted above
		return nil, err
	}
	// both daemons run inside the switch namespace (unix sockets only): a
	// run whose process died before Stop (a test binary killed by its
	// timeout) leaves them in a namespace of this prefix, where the next
	// Start's or Stop's DeleteNetns finds and kills them
	if _, err := IP(ctx, "netns", "add", d.SwitchNS()); err != nil {
		d.Stop(ctx)
		return nil, err
	}
	if _, err := InNetns(ctx, d.SwitchNS(), "ip", "link", "set", "lo", "up"); err != nil {
		d.Stop(ctx)
		return nil, err
	}
	if err := d.inSwitchNS(ctx, "ovsdb-server", d.path("conf.db"),
		"--remote=punix:"+d.path("db.sock"), "--pidfile="+d.path("ovsdb.pid"),
		"--unixctl="+d.path("ovsdb.ctl"), "--detach", "--log-file="+d.path("ovsdb.log")); err != nil {
		d.Stop(ctx)
		return nil, err
	}
	if _, err := d.Vsctl(ctx, "--no-wait", "init"); err != nil {
		d.Stop(ctx)
		return nil, err
	}
	// flow counters fresh within 100 ms (default 500 ms between revalidator
	// rounds): the DP workload meters read them every second, and a 0.5 s
	// stale reading at each end of an interval skews its average by up to
	// 1/interval-seconds (measured ±10 % at 4 s intervals, ±1 % at 100 ms)
	if _, err := d.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", fmt.Sprintf("other_config:max-revalidator=%d", MaxRevalidator.Milliseconds())); err != nil {
		d.Stop(ctx)
		return nil, err
	}
	if err := d.startVswitchd(ctx); err != nil {
		d.Stop(ctx)
		return nil, err
	}
	return d, nil
}

func (d *Daemon) startVswitchd(ctx context.Context) error {
	return d.inSwitchNS(ctx, "ovs-vswitchd", "unix:"+d.path("db.sock"),
		"--pidfile="+d.path("vswitchd.pid"), "--unixctl="+d.path("vswitchd.ctl"),
		"--detach", "--log-file="+d.path("vswitchd.log"))
}

// inSwitchNS runs an OVS daemon (or tool) inside the switch namespace with
// the OVS environment of the run directory.
func (d *Daemon) inSwitchNS(ctx context.Context, name string, args ...string) error {
	p, err := lookPath(name)
	if err != nil {
		return err
	}
	_, err = run(ctx, d.cfg.Dir, nil, "ip", append([]string{"netns", "exec", d.SwitchNS(), p}, args...)...)
	return err
}

// cleanup stops daemons of a previous run in this run directory and deletes
// the namespaces with this prefix (ours: the claim is held).
func (d *Daemon) cleanup(ctx context.Context) error {
	for _, f := range []string{"vswitchd.pid", "ovsdb.pid"} {
		stopPid(pidFromFile(d.path(f), d.cfg.Dir), 2*time.Second)
	}
	_, err := DeleteNetns(ctx, d.cfg.Prefix)
	return err
}

// Stop stops both daemons, deletes every namespace with the prefix and
// releases the prefix. When the namespaces cannot all be deleted, the prefix
// stays claimed (CleanStale retries once this process has ended). Once the
// prefix is released (an earlier Stop) Stop touches nothing: another run may
// hold the prefix by then, and its namespaces are not ours.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.claim.Held() {
		return nil
	}
	if err := d.cleanup(ctx); err != nil {
		return err
	}
	d.claim.Release()
	return nil
}

// Vsctl runs ovs-vsctl against the private database.
func (d *Daemon) Vsctl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, d.cfg.Dir, nil, "ovs-vsctl", append([]string{"--db=unix:" + d.path("db.sock"), "--timeout=10"}, args...)...)
}

// mgmt is the OpenFlow management socket of bridge br.
func (d *Daemon) mgmt(br string) string { return "unix:" + d.path(br+".mgmt") }

// VswitchdPID returns the pid of the running ovs-vswitchd, or 0.
func (d *Daemon) VswitchdPID() int { return pidFromFile(d.path("vswitchd.pid"), d.cfg.Dir) }

// VswitchdAlive reports whether ovs-vswitchd runs.
func (d *Daemon) VswitchdAlive() bool {
	pid := d.VswitchdPID()
	return pid > 0 && alive(pid)
}

// RestartVswitchd starts ovs-vswitchd again after it died (the database and
// its bridges and ports survive in ovsdb-server; OpenFlow rules do not, the
// caller reinstalls them with Switch.Reset).
func (d *Daemon) RestartVswitchd(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.VswitchdAlive() {
		return nil
	}
	_ = os.Remove(d.path("vswitchd.pid"))
	return d.startVswitchd(ctx)
}

// EnsureBridge creates bridge name for datacenter dc with the userspace
// datapath, or keeps it when it exists and is ours. A bridge of that name
// without our owner mark is left untouched and ErrForeign returned.
func (d *Daemon) EnsureBridge(ctx context.Context, name string, dc int) error {
	if !strings.HasPrefix(name, d.cfg.Prefix) || len(name) > 15 {
		return fmt.Errorf("bridge %q: must start with the prefix %q and have at most 15 characters", name, d.cfg.Prefix)
	}
	out, err := d.Vsctl(ctx, "--if-exists", "get", "bridge", name, "external-ids:"+OwnerKey)
	if err != nil {
		return err
	}
	owner := strings.Trim(strings.TrimSpace(out), `"`)
	exists := owner != ""
	if !exists {
		if _, err := d.Vsctl(ctx, "br-exists", name); err == nil {
			exists = true
		}
	}
	switch {
	case exists && owner == d.cfg.Prefix:
		return nil
	case exists:
		return fmt.Errorf("bridge %q: %w (external-ids:%s=%q, want %q); nothing was changed", name, ErrForeign, OwnerKey, owner, d.cfg.Prefix)
	}
	_, err = d.Vsctl(ctx, "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev", "fail_mode=secure",
		"protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15",
		fmt.Sprintf("external-ids:%s=%s", OwnerKey, d.cfg.Prefix), fmt.Sprintf("external-ids:ims-orch-dc=%d", dc))
	return err
}

// OurBridges lists the bridges marked with our prefix.
func (d *Daemon) OurBridges(ctx context.Context) ([]string, error) {
	out, err := d.Vsctl(ctx, "--bare", "--columns=name", "find", "bridge", fmt.Sprintf("external-ids:%s=%s", OwnerKey, d.cfg.Prefix))
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// DeleteOurBridges deletes every bridge marked with our prefix.
func (d *Daemon) DeleteOurBridges(ctx context.Context) error {
	brs, err := d.OurBridges(ctx)
	if err != nil {
		return err
	}
	for _, b := range brs {
		if _, err := d.Vsctl(ctx, "--if-exists", "del-br", b); err != nil {
			return err
		}
	}
	return nil
}

// Link joins two bridges with a pair of patch ports: port ofA on bridge a
// (named pa) and ofB on bridge b (named pb).
func (d *Daemon) Link(ctx context.Context, a, pa string, ofA int, b, pb string, ofB int) error {
	_, err := d.Vsctl(ctx,
		"--may-exist", "add-port", a, pa, "--", "set", "interface", pa, "type=patch", "options:peer="+pb, fmt.Sprintf("ofport_request=%d", ofA),
		"--", "--may-exist", "add-port", b, pb, "--", "set", "interface", pb, "type=patch", "options:peer="+pa, fmt.Sprintf("ofport_request=%d", ofB))
	return err
}

// AddVeth creates a veth pair: end sw on bridge br (in the switch namespace,
// OpenFlow port ofport) and end inner named innerName inside namespace ns
// (created if missing). TX checksum offload is turned off on both ends: with
// the userspace datapath, a partial checksum would make receivers drop UDP.
// mac, when not empty, is the inner end's MAC address. The links are made
// over rtnetlink in this process (no `ip`/`ethtool` processes); only the
// port's addition to the bridge runs ovs-vsctl.
func (d *Daemon) AddVeth(ctx context.Context, br, sw string, ofport int, ns, innerName, mac string) error {
	if len(sw) > 15 {
		return fmt.Errorf("port %q: longer than 15 characters", sw)
	}
	if err := EnsureNetns(ctx, ns); err != nil {
		return err
	}
	if err := addVethPair(d.SwitchNS(), sw, ns, innerName, mac); err != nil {
		return err
	}
	if err := txOffAndUp(ns, innerName); err != nil {
		return err
	}
	if err := txOffAndUp(d.SwitchNS(), sw); err != nil {
		return err
	}
	_, err := d.Vsctl(ctx, "--may-exist", "add-port", br, sw, "--", "set", "interface", sw, fmt.Sprintf("ofport_request=%d", ofport),
		fmt.Sprintf("external-ids:%s=%s", OwnerKey, d.cfg.Prefix))
	return err
}

// DelPort removes a port from its bridge and deletes the switch-side
// interface (its veth peer goes with it).
func (d *Daemon) DelPort(ctx context.Context, br, port string) error {
	// --no-wait: a dead ovs-vswitchd must not hold up removing a port
	if _, err := d.Vsctl(ctx, "--no-wait", "--if-exists", "del-port", br, port); err != nil {
		return err
	}
	return delLink(d.SwitchNS(), port)
}

// EnsureNetns creates network namespace ns with lo up, if missing.
func EnsureNetns(ctx context.Context, ns string) error {
	if netnsExists(ns) {
		return nil
	}
	if _, err := IP(ctx, "netns", "add", ns); err != nil {
		return err
	}
	return setLoUp(ns)
}

// RulePath returns the way the Daemon's Switches send their bundles
// (Config.RulePath, resolved by Start).
func (d *Daemon) RulePath() RulePath {
	if d.cfg.RulePath == "" { // a Daemon not made by Start (unit tests)
		return DefaultRulePath
	}
	return d.cfg.RulePath
}
