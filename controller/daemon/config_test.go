package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Clustered() || !c.Role.Global || len(c.Role.Locals) != 4 || c.Driver.Kind != DriverSim || c.Traffic == nil {
		t.Fatalf("default: %+v", c)
	}
	if c.API.Listen != DefaultListen || c.Interval().Seconds() != 10 {
		t.Fatalf("listen %s interval %v", c.API.Listen, c.Interval())
	}
	if top := c.fsmTopology(); top.Validate() != nil {
		err := top.Validate()
		t.Fatal(err)
	}
}

// The example configs in deploy/config parse.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/config/ims-orch*.yaml")
	if len(files) == 0 {
		t.Skip("no example configs")
	}
	for _, f := range files {
		if _, err := LoadConfig(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// a catalog VNF states only what differs from Table 2 (one definition
	// of its figures, placement/vnf)
	for _, f := range append(files, "default.yaml") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw Config
		if err := yaml.Unmarshal(data, &raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range append([]VNFConfig{raw.Topology.PCSCF, raw.Topology.SCSCF}, raw.Topology.Chain...) {
			if ty, ok := vnf.Lookup(v.Name); ok && (v.Capacity == ty.Capacity || v.Thresholds == ty.Thresholds) {
				t.Errorf("%s: %s restates Table 2 (capacity %g, thresholds %+v): leave them out", f, v.Name, v.Capacity, v.Thresholds)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	base := string(DefaultYAML())
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown field", "node:\n", "nodes: {}\nnode:\n", "field nodes not found"},
		{"bad listen", "listen: 127.0.0.1:8080", "listen: nowhere", "api.listen"},
		{"bad driver", "kind: sim", "kind: aws", "driver.kind"},
		{"location rules (removed: the registrar knows)", "kind: sim", "kind: sim\n  location: {rules: [{user: tokyo-, dc: tokyo}]}", "driver.location: removed"},
		{"bad boot delay", "bootDelay: 2s", "bootDelay: forever", "driver.bootDelay"},
		{"unknown scscf dc", "scscfDC: tokyo", "scscfDC: paris", "topology.scscfDC"},
		{"short delay row", "- [0, 25, 115, 70]", "- [0, 25, 115]", "topology.delaysMs"},
		{"negative capacity", "{name: firewall,", "{name: firewall, capacity: -1,", "topology.chain[0].capacity"},
		{"no capacity outside the catalog", "{name: transcoder,", "{name: dpi,", "topology.chain[2].capacity"},
		{"load threshold above the capacity", "{name: firewall,", "{name: firewall, loadThreshold: 120,", "topology.chain[0].loadThreshold"},
		{"negative load threshold", "{name: ids,", "{name: ids, loadThreshold: -5,", "topology.chain[1].loadThreshold"},
		// a CSCF's rules read CPU: a loadThreshold there would do nothing
		{"load threshold on the P-CSCF", "{name: P-CSCF,", "{name: P-CSCF, loadThreshold: 80,", "topology.pcscf.loadThreshold 80: only a data-plane stage"},
		{"load threshold on the S-CSCF", "{name: S-CSCF,", "{name: S-CSCF, loadThreshold: 80,", "topology.scscf.loadThreshold 80: only a data-plane stage"},
		// no rule reads a DP stage's CPU threshold: one other than its
		// loadThreshold is refused, naming both
		{"DP CPU threshold beside the default load threshold", "{name: ids,", "{name: ids, thresholds: {cpu: 80, mem: 50, pktRate: 2000},",
			"topology.chain[1].thresholds.cpu 80 differs from topology.chain[1].loadThreshold 90 (not stated: the default): "},
		{"DP CPU threshold beside another load threshold", "{name: firewall,", "{name: firewall, loadThreshold: 70, thresholds: {cpu: 90, mem: 50, pktRate: 35000},",
			"topology.chain[0].thresholds.cpu 90 differs from topology.chain[0].loadThreshold 70: "},
		{"repeated vnf", "{name: ids,", "{name: firewall,", "topology.chain[1].name"},
		{"chain longer than the flow tag", "    - {name: transcoder,", "    - {name: dpi, capacity: 1000}\n    - {name: transcoder,", "at most 3"},
		{"bad strategy", "strategy: hybrid", "strategy: lazy", "strategy"},
		{"bad predictor", "strategy: hybrid", "strategy: hybrid\n  predictor: crystal-ball", "policy.predictor"},
		{"bad target utilisation", "strategy: hybrid", "strategy: hybrid\n  targetUtilization: 1.5", "policy.targetUtilization"},
		{"DP target above 1", "strategy: hybrid", "strategy: hybrid\n  dpTargetUtilization: 1.05", "policy.dpTargetUtilization"},
		{"negative DP target", "strategy: hybrid", "strategy: hybrid\n  dpTargetUtilization: -0.5", "policy.dpTargetUtilization"},
		{"stage target above 1", "strategy: hybrid", "strategy: hybrid\n  targets: [{vnf: firewall, utilization: 1.2}]", "policy.targets[0].utilization"},
		{"stage target of no stage", "strategy: hybrid", "strategy: hybrid\n  targets: [{vnf: firewall, utilization: 0.9}, {vnf: dpi, utilization: 0.9}]", "policy.targets[1].vnf"},
		{"repeated stage target", "strategy: hybrid", "strategy: hybrid\n  targets: [{vnf: ids, utilization: 0.9}, {vnf: IDS, utilization: 0.95}]", "policy.targets[1].vnf"},
		{"stage target without a name", "strategy: hybrid", "strategy: hybrid\n  targets: [{utilization: 0.9}]", "policy.targets[0].vnf"},
		{"DP target not a number", "strategy: hybrid", "strategy: hybrid\n  dpTargetUtilization: .nan", "policy.dpTargetUtilization"},
		{"negative buffer spare", "strategy: hybrid", "strategy: hybrid\n  bufferSpare: -1", "policy.bufferSpare"},
		{"pack flows above 1", "strategy: hybrid", "strategy: hybrid\n  packFlows: 1.2", "policy.packFlows"},
		{"spread overload above 1", "strategy: hybrid", "strategy: hybrid\n  spreadOverload: 1.5", "policy.spreadOverload"},
		{"spread overload NaN", "strategy: hybrid", "strategy: hybrid\n  spreadOverload: .nan", "policy.spreadOverload"},
		{"reactive utilisation above 1", "strategy: hybrid", "strategy: hybrid\n  reactiveUtilization: 1.5", "policy.reactiveUtilization: must be in [0, 1]"},
		{"reactive utilisation negative", "strategy: hybrid", "strategy: hybrid\n  reactiveUtilization: -0.1", "policy.reactiveUtilization: must be in [0, 1]"},
		{"falling scale-in above 1", "strategy: hybrid", "strategy: hybrid\n  fallingScaleIn: 1.5", "policy.fallingScaleIn: must be in [0, 1]"},
		{"falling scale-in single above 1", "strategy: hybrid", "strategy: hybrid\n  fallingScaleInSingle: 1.5", "policy.fallingScaleInSingle: must be in [0, 1]"},
		{"trim-empty busy bar 0", "strategy: hybrid", "strategy: hybrid\n  trimEmptyBusy: 0", "policy.trimEmptyBusy: must be in (0, 1]"},
		{"trim-empty single busy bar above 1", "strategy: hybrid", "strategy: hybrid\n  trimEmptySingleBusy: 1.5", "policy.trimEmptySingleBusy: must be in (0, 1]"},
		{"spread overload below the default pack flows", "strategy: hybrid", "strategy: hybrid\n  spreadOverload: 0.5", "policy.spreadOverload: must be 0 (off) or at least policy.packFlows 0.88"},
		{"spread overload below pack flows", "strategy: hybrid", "strategy: hybrid\n  packFlows: 0.7\n  spreadOverload: 0.6", "policy.spreadOverload: must be 0 (off) or at least policy.packFlows 0.7"},
		{"zero flow packets", "strategy: hybrid", "strategy: hybrid\n  flowPackets: 0", "policy.flowPackets"},
		{"negative flow packets", "strategy: hybrid", "strategy: hybrid\n  flowPackets: -50", "policy.flowPackets"},
		{"bad crash-loop backoff", "strategy: hybrid", "strategy: hybrid\n  crashLoopBackoff: {initial: soon}", "policy.crashLoopBackoff.initial"},
		{"zero crash-loop reset", "strategy: hybrid", "strategy: hybrid\n  crashLoopBackoff: {reset: 0s}", "policy.crashLoopBackoff.reset"},
		{"crash-loop max below initial", "strategy: hybrid", "strategy: hybrid\n  crashLoopBackoff: {initial: 1m, max: 30s}", "policy.crashLoopBackoff.max"},
		{"crash-loop backoff off with a max", "strategy: hybrid", "strategy: hybrid\n  crashLoopBackoff: {initial: off, max: 1m}", "policy.crashLoopBackoff"},
		{"unknown crash-loop field", "strategy: hybrid", "strategy: hybrid\n  crashLoopBackoff: {base: 1s}", "field base not found"},
		{"bad rate", "london: [1]", "london: [-1]", `traffic.rates["london"][0]`},
		{"unknown traffic dc", "london: [1]", "paris: [1]", `traffic.rates["paris"]`},
		{"bad exits", "exits: local", "exits: random", "traffic.exits"},
		{"no auth", "allowUnauthenticated: true", "allowUnauthenticated: false", "api.tokensFile"},
		{"raft without bind", "id: node1", "id: node1\n  raftDir: /tmp/x", "node.raftBind"},
		{"traffic in cluster", "id: node1", "id: node1\n  raftBind: 127.0.0.1:7000", "traffic"},
		{"unknown limit dc", "strategy: hybrid", "strategy: hybrid\n  limits: [{dc: paris, vnf: ids, min: 1, max: 3}]", "limits[0].dc"},
		{"repeated limit", "strategy: hybrid", "strategy: hybrid\n  limits: [{dc: tokyo, vnf: ids, max: 3}, {dc: tokyo, vnf: ids, max: 4}]", "limits[1]"},
		{"unknown limit vnf", "strategy: hybrid", "strategy: hybrid\n  limits: [{vnf: dpi, min: 1, max: 3}]", "limits[0].vnf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.from) {
				t.Fatalf("default.yaml has no %q", tc.from)
			}
			_, err := ParseConfig([]byte(strings.Replace(base, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if _, err := ParseConfig(nil); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := ParseConfig([]byte(base + "\n---\nnode: {}\n")); err == nil {
		t.Fatal("two documents accepted")
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add([]byte("node: {id: a, raftBind: '127.0.0.1:1'}\napi: {allowUnauthenticated: true}\n"))
	f.Add([]byte("node: {id: a, raftBind: '127.0.0.1:1', raftTimeouts: {heartbeat: 2s, election: 1s, leaderLease: 3s}}\napi: {allowUnauthenticated: true}\n"))
	f.Add([]byte("traffic: {rates: {x: [1e400]}}"))
	f.Add([]byte(strings.Replace(string(DefaultYAML()), "strategy: hybrid", "strategy: hybrid\n  dpTargetUtilization: 0.97\n  targets: [{vnf: ids, utilization: 0.95}]", 1)))
	f.Add([]byte(strings.Replace(string(DefaultYAML()), "{name: ids,", "{name: ids, loadThreshold: 80, thresholds: {cpu: 80, mem: 50, pktRate: 2000},", 1)))
	f.Add([]byte(strings.Replace(string(DefaultYAML()), "{name: P-CSCF,", "{name: P-CSCF, loadThreshold: 80,", 1)))
	f.Add([]byte(strings.Replace(string(DefaultYAML()), "{name: firewall,", "{name: firewall, loadThreshold: 70,", 1)))
	// session 12's keys (revZ L3): the busy bars and a declared profile
	// with rates, offsets, zones, files and peak, which random mutation
	// would not come up with
	day := filepath.Join(f.TempDir(), "audio.csv")
	var lines strings.Builder
	for h := range 24 {
		fmt.Fprintf(&lines, "%d, %d\n", h, 5+h%7)
	}
	if err := os.WriteFile(day, []byte(lines.String()), 0o600); err != nil {
		f.Fatal(err)
	}
	policy := withPolicy
	f.Add(policy("  trimEmptyBusy: 0.8\n  trimEmptySingleBusy: 1\n  declaredProfile:\n    callDuration: 1h\n    dcs:\n" +
		"      - {dc: tokyo, utcOffset: 9, rates: [6.2, 3.0, 3.4, 3.7, 4.2, 8.4, 11.6, 11.6, 14.0, 13.8, 14.0, 15, 10.8, 10.8, 13.3, 13.7, 13.3, 14.0, 12.5, 11.1, 10.3, 9.1, 9.3, 7.8]}\n" +
		"      - {dc: hong-kong, timeZone: Asia/Hong_Kong, file: " + day + ", peak: 15}\n" +
		"      - {dc: london, timeZone: Europe/London, file: " + day + "}\n" +
		"      - {dc: houston, timeZone: UTC, rates: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}\n"))
	f.Add(policy("  trimEmptyBusy: 0.5\n  trimEmptySingleBusy: 0.9\n  declaredProfile: {hour: 1h, callDuration: 30s, dcs: [" +
		"{dc: tokyo, utcOffset: 0, rates: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24], peak: 3}, " +
		"{dc: hong-kong, timeZone: UTC, rates: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]}, " +
		"{dc: london, utcOffset: 5.5, file: " + day + "}, {dc: houston, timeZone: America/Chicago, file: " + day + "}]}\n"))
	// session 17's key (revH L4): the rise flags off, so that mutation
	// works around it
	f.Add(policy("  riseFlags: false\n"))
	// session 18's policy.rise, every key, and one with riseFlags off
	f.Add(policy("  rise: {epsilon: 0.2, rounds: 4, stepRise: 0.4, stepRounds: 10, fastRise: 0.6, fastRounds: 2, profileRise: 1.1, fastProfileRise: 1.5, hold: 90s, guard: 97, anticipateUpTo: 3, fastLoad: 95}\n"))
	f.Add(policy("  riseFlags: false\n  rise:\n    epsilon: 1e-9\n    rounds: 1\n    profileRise: 1.0000001\n    hold: 0s\n    guard: 100\n    fastLoad: 0.001\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// normalizing an accepted config again accepts it (serve's flags
		// and every operator pod do: ApplyIdentity)
		if err := c.Normalize(); err != nil {
			t.Fatalf("accepted config refused by a second Normalize: %v", err)
		}
		if c.Policy.DeclaredProfile != nil && c.Policy.profilePrior() == nil {
			t.Fatal("accepted declared profile without a prior after a second Normalize")
		}
		// an accepted config builds a valid replicated topology
		if top := c.fsmTopology(); top.Validate() != nil {
			err := top.Validate()
			t.Fatalf("accepted config with an invalid topology: %v", err)
		}
		// the rise policy in force is a valid one, the defaults filled in
		rise, noRise, err := c.Policy.risePolicies()
		if err != nil {
			t.Fatalf("accepted config with a refused rise policy: %v", err)
		}
		if again, err := rise.WithDefaults(riseKey); err != nil || again != rise || c.globalConfig().Rise != rise {
			t.Fatalf("rise policy in force %+v not a fixed point (%+v, %v) or not the engine's (%+v)", rise, again, err, c.globalConfig().Rise)
		}
		if again, err := noRise.WithDefaults("policy.rise"); err != nil || again != noRise || (&Daemon{cfg: c}).localTemplate().NoRise != noRise {
			t.Fatalf("local noRise in force %+v not a fixed point (%+v, %v) or not the template's", noRise, again, err)
		}
		// and a valid replicated policy (the DP targets in range)
		if p := c.fsmPolicy(); p.Validate() != nil {
			t.Fatalf("accepted config with an invalid policy: %v", p.Validate())
		}
	})
}

// With driver.kind local the S-CSCF minimum is N+1 (2) whatever the file
// says: registrations must survive any one S-CSCF failure.
func TestLocalDriverSCSCFNPlusOne(t *testing.T) {
	c, err := ParseConfig([]byte(strings.Replace(string(DefaultYAML()), "kind: sim", "kind: local", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Driver.Kind != DriverLocal || c.Topology.SCSCF.Min != MinSCSCFLocal {
		t.Fatalf("driver %s, S-CSCF min %d; want local and %d", c.Driver.Kind, c.Topology.SCSCF.Min, MinSCSCFLocal)
	}
	c, err = ParseConfig(DefaultYAML())
	if err != nil || c.Topology.SCSCF.Min != 1 {
		t.Fatalf("driver sim: S-CSCF min %d (%v), want the file's 1", c.Topology.SCSCF.Min, err)
	}
}

// TestDaemonDefaultsAreTheSystemDefaults: `serve` with the embedded default
// runs the scaling options the simulator runs (system.Defaults, one
// place): model, target utilisation, local-first, plan horizon, scale-in
// guard, buffer trim and spare; a config that sets them wins.
func TestDaemonDefaultsAreTheSystemDefaults(t *testing.T) {
	c, err := ParseConfig(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy.Scaling(); !reflect.DeepEqual(got, system.Defaults) {
		t.Fatalf("daemon scaling %+v, system defaults %+v", got, system.Defaults)
	}
	d := &Daemon{cfg: c}
	p, lc := c.fsmPolicy(), d.localTemplate()
	if c.Policy.Predictor != system.Defaults.Predictor || p.TargetUtilization != system.Defaults.TargetUtilization || p.LocalFirst != system.Defaults.LocalFirst ||
		p.DPTargetUtilization != system.Defaults.DPTargetUtilization || !reflect.DeepEqual(p.Targets, system.Defaults.Targets) ||
		lc.ScaleInGuard != system.Defaults.ScaleInGuard || lc.TrimBuffer != system.Defaults.TrimBuffer || lc.BufferSpare != system.Defaults.BufferSpare ||
		lc.TrimEmpty != system.Defaults.TrimEmpty || lc.ScaleIn.On != system.Defaults.ScaleIn || lc.Anticipate != system.Defaults.Anticipate ||
		lc.FallingScaleIn != system.Defaults.FallingScaleIn || lc.FallingScaleInSingle != system.Defaults.FallingScaleInSingle || lc.TrimEmptyBusy != system.Defaults.TrimEmptyBusy || lc.TrimEmptySingleBusy != system.Defaults.TrimEmptySingleBusy ||
		lc.NoRise.Off != !system.Defaults.RiseFlags {
		t.Fatalf("predictor %s, policy %+v, local %+v: not the system defaults %+v", c.Policy.Predictor, p, lc, system.Defaults)
	}
	// 10 s interval, 2 s boots: the interval's end and one boot after it
	if h := c.planHorizon(); h != 0.5+2.0/10 {
		t.Fatalf("plan horizon %g, want 0.7", h)
	}
	edit := "strategy: hybrid\n  predictor: ar1\n  targetUtilization: 1\n  localFirst: true\n  planHorizon: false\n  scaleInGuard: false\n  trimBuffer: false\n  bufferSpare: 2\n  trimEmpty: %v\n  scaleIn: %v\n  packFlows: 0.7\n  spreadOverload: 0.75\n  anticipate: %v\n  reactiveUtilization: 0.9\n  fallingScaleIn: 0.5\n  fallingScaleInSingle: 0.6\n  trimEmptyBusy: 0.8\n  trimEmptySingleBusy: 0.85\n  dpTargetUtilization: 0.93\n  targets: [{vnf: IDS, utilization: 0.97}]\n  riseFlags: false"
	edit = fmt.Sprintf(edit, !system.Defaults.TrimEmpty, !system.Defaults.ScaleIn, !system.Defaults.Anticipate)
	c, err = ParseConfig([]byte(strings.Replace(string(DefaultYAML()), "strategy: hybrid", edit, 1)))
	if err != nil {
		t.Fatal(err)
	}
	want := system.Scaling{Predictor: "ar1", TargetUtilization: 1, WarmStart: system.Defaults.WarmStart, LocalFirst: true, BufferSpare: 2, TrimEmpty: !system.Defaults.TrimEmpty, ScaleIn: !system.Defaults.ScaleIn, PackFlows: 0.7, SpreadOverload: 0.75,
		Anticipate: !system.Defaults.Anticipate, ReactiveUtilization: 0.9, FallingScaleIn: 0.5, FallingScaleInSingle: 0.6, TrimEmptyBusy: 0.8, TrimEmptySingleBusy: 0.85, DPTargetUtilization: 0.93, Targets: []fsm.Target{{VNF: "IDS", Utilization: 0.97}}, RiseFlags: false}
	if got := c.Policy.Scaling(); !reflect.DeepEqual(got, want) || c.planHorizon() != 0 {
		t.Fatalf("configured scaling %+v (horizon %g), want %+v", got, c.planHorizon(), want)
	}
	// the local controllers get the configured busy bars
	if lc := (&Daemon{cfg: c}).localTemplate(); lc.TrimEmptyBusy != 0.8 || lc.TrimEmptySingleBusy != 0.85 || !lc.NoRise.Off {
		t.Fatalf("local template's busy bars %g, %g, noRise %+v, want 0.8, 0.85, off (riseFlags: false)", lc.TrimEmptyBusy, lc.TrimEmptySingleBusy, lc.NoRise)
	}
	// the committed policy carries the DP target; reactive-only's drops it
	if p := c.fsmPolicy(); p.DPTargetUtilization != 0.93 || p.TargetUtilization != 1 || p.StageUtilization("ids") != 0.97 || p.StageUtilization("transcoder") != 0.93 {
		t.Fatalf("hybrid's committed policy %+v, want DP target 0.93", p)
	}
	c.Policy.Strategy = "reactive"
	if p := c.fsmPolicy(); p.DPTargetUtilization != 0 || p.Targets != nil || p.TargetUtilization != 1 {
		t.Fatalf("reactive-only's committed policy %+v, want no DP target", p)
	}
}

// TestCatalogVNFsFromTable2: a VNF of the catalog states only what differs
// from Table 2 (the embedded default states none of its figures); a stated
// figure wins.
func TestCatalogVNFsFromTable2(t *testing.T) {
	c, err := ParseConfig(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append([]VNFConfig{c.Topology.PCSCF, c.Topology.SCSCF}, c.Topology.Chain...) {
		ty, ok := vnf.Lookup(v.Name)
		if !ok || v.Capacity != ty.Capacity || v.Thresholds != ty.Thresholds {
			t.Errorf("%s: capacity %g thresholds %+v, Table 2 %+v", v.Name, v.Capacity, v.Thresholds, ty)
		}
	}
	c, err = ParseConfig([]byte(strings.Replace(string(DefaultYAML()), "{name: ids,", "{name: ids, capacity: 1000, thresholds: {cpu: 80, mem: 60, pktRate: 900}, loadThreshold: 80,", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Topology.Chain[1]; v.Capacity != 1000 || v.Thresholds != (vnf.Thresholds{CPU: 80, Mem: 60, PktRate: 900}) {
		t.Fatalf("stated figures lost: %+v", v)
	}
}

// TestCrashLoopBackoffConfig: policy.crashLoopBackoff reaches every local
// controller; what it leaves out is local.DefaultCrashBackoff (the one
// place of the defaults), "off" turns it off.
func TestCrashLoopBackoffConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want local.CrashBackoff
	}{
		{"", local.DefaultCrashBackoff},
		{"\n  crashLoopBackoff: {initial: 5s}", local.CrashBackoff{Initial: 5 * time.Second, Max: local.DefaultCrashBackoff.Max, Reset: local.DefaultCrashBackoff.Reset}},
		{"\n  crashLoopBackoff: {initial: 1s, max: 1m, reset: 2m}", local.CrashBackoff{Initial: time.Second, Max: time.Minute, Reset: 2 * time.Minute}},
		{"\n  crashLoopBackoff: {initial: off}", local.CrashBackoff{Initial: -1}},
	} {
		c, err := ParseConfig([]byte(strings.Replace(string(DefaultYAML()), "strategy: hybrid", "strategy: hybrid"+tc.yaml, 1)))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		d := &Daemon{cfg: c}
		if got := d.localTemplate().CrashBackoff; got != tc.want {
			t.Fatalf("%q: local controllers get %+v, want %+v", tc.yaml, got, tc.want)
		}
	}
}

// topology.chain[].loadThreshold reaches the local controllers' VNF
// configuration (a DP stage's trigger for its load rules); unset it is 0
// there, which local.Config fills with local.DefaultLoadThreshold.
func TestLoadThresholdReachesTheLocalControllers(t *testing.T) {
	base := string(DefaultYAML())
	c, err := ParseConfig([]byte(strings.Replace(base, "{name: firewall,", "{name: firewall, loadThreshold: 60,", 1)))
	if err != nil {
		t.Fatal(err)
	}
	vs := c.localVNFs()
	if fw, ids := vs["firewall"].LoadThreshold, vs["ids"].LoadThreshold; fw != 60 || ids != 0 {
		t.Fatalf("loadThreshold firewall %v ids %v, want 60 and 0 (the default)", fw, ids)
	}
}

// A DP stage's thresholds.cpu is checked against its loadThreshold as the
// file states it, not as filled in: a config that parses is accepted again by
// ApplyIdentity (serve --node-id, --listen, --driver ...: every operator
// pod), which normalizes it a second time, when the catalog's CPU
// threshold of 90 is already filled in beside a loadThreshold of 70.
func TestParsedLoadThresholdTakesAnIdentity(t *testing.T) {
	base := string(DefaultYAML())
	for _, tc := range []struct{ from, to string }{
		{"{name: firewall,", "{name: firewall, loadThreshold: 70,"},
		{"{name: ids,", "{name: ids, loadThreshold: 80,"},
		{"{name: ids,", "{name: ids, loadThreshold: 60, thresholds: {cpu: 60, mem: 50, pktRate: 2000},"},
		{"{name: transcoder,", "{name: dpi, capacity: 1000, loadThreshold: 75,"}, // outside the catalog: Type()'s CPU 90
	} {
		if !strings.Contains(base, tc.from) {
			t.Fatalf("default.yaml has no %q", tc.from)
		}
		c, err := ParseConfig([]byte(strings.Replace(base, tc.from, tc.to, 1)))
		if err != nil {
			t.Fatalf("%s: %v", tc.to, err)
		}
		if err := c.ApplyIdentity(Identity{NodeID: "node2", APIURL: "http://127.0.0.1:8081", BootstrapNode: "node2"}); err != nil {
			t.Errorf("%s: parsed, then refused by ApplyIdentity: %v", tc.to, err)
		}
	}
}

// A config built in code and given to Normalize directly gets the same DP
// CPU check as a parsed file, and Normalize is idempotent: what it filled
// in is not taken as stated the second time, what a caller changes after
// it is.
func TestNormalizeChecksStageCPUInCode(t *testing.T) {
	fw := vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 35000} // Table 2's firewall
	built := func(v VNFConfig) *Config {
		var c Config
		if err := yaml.Unmarshal(DefaultYAML(), &c); err != nil {
			t.Fatal(err)
		}
		c.Topology.Chain[0] = v
		return &c
	}
	const field = "topology.chain[0].thresholds.cpu"
	for _, tc := range []struct {
		name string
		c    *Config
		want string // "": accepted, twice
	}{
		{"stated cpu 5, loadThreshold absent", built(VNFConfig{Name: "firewall", Min: 1, Thresholds: vnf.Thresholds{CPU: 5, Mem: 50, PktRate: 1000}}),
			field + " 5 differs from topology.chain[0].loadThreshold 90 (not stated: the default)"},
		{"Table 2's thresholds stated, loadThreshold 70", built(VNFConfig{Name: "firewall", Min: 1, LoadThreshold: 70, Thresholds: fw}),
			field + " 90 differs from topology.chain[0].loadThreshold 70:"},
		{"thresholds left out, loadThreshold 70", built(VNFConfig{Name: "firewall", Min: 1, LoadThreshold: 70}), ""},
		{"cpu stated as the loadThreshold", built(VNFConfig{Name: "firewall", Min: 1, LoadThreshold: 70, Thresholds: vnf.Thresholds{CPU: 70, Mem: 50, PktRate: 35000}}), ""},
		{"normalized, then thresholds stated", func() *Config {
			c := DefaultConfig()
			c.Topology.Chain[0].Thresholds.CPU = 5
			return c
		}(), field + " 5 differs"},
		{"normalized, then loadThreshold 70", func() *Config {
			c := DefaultConfig()
			c.Topology.Chain[0].LoadThreshold = 70
			return c
		}(), ""},
	} {
		err := tc.c.Normalize()
		if tc.want == "" && err == nil {
			err = tc.c.Normalize()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: accepted, want %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v\nwant %q", tc.name, err, tc.want)
		}
	}
}

// The error for a DP stage's CPU threshold offers the CPU threshold as the
// remedy, never a loadThreshold of the CPU value (a share of the capacity:
// 5 would count an instance full at 5 % of it), and says "not stated" only
// of an absent loadThreshold.
func TestStageCPUErrorAdvice(t *testing.T) {
	base := string(DefaultYAML())
	for _, tc := range []struct {
		to        string
		want, not []string
	}{
		// session 11's advice for the real plane: the forwarder's few percent of CPU
		{"{name: firewall, thresholds: {cpu: 5, mem: 50, pktRate: 1000},",
			[]string{"topology.chain[0].thresholds.cpu 5 differs from topology.chain[0].loadThreshold 90 (not stated: the default): ", "set thresholds.cpu to 90, or leave thresholds out"},
			[]string{"set loadThreshold", "loadThreshold to 5"}},
		{"{name: firewall, loadThreshold: 70, thresholds: {cpu: 5, mem: 50, pktRate: 1000},",
			[]string{"topology.chain[0].loadThreshold 70: ", "set thresholds.cpu to 70, or leave thresholds out"},
			[]string{"not stated", "absent", "set loadThreshold", "loadThreshold to 5"}},
	} {
		_, err := ParseConfig([]byte(strings.Replace(base, "{name: firewall,", tc.to, 1)))
		if err == nil {
			t.Fatalf("%s: accepted", tc.to)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nwant %q", tc.to, err, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(err.Error(), n) {
				t.Errorf("%s: %v\nholds %q", tc.to, err, n)
			}
		}
	}
}
