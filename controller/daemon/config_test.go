package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"zero capacity", "{name: firewall, capacity: 35000", "{name: firewall, capacity: 0", "topology.chain[0].capacity"},
		{"repeated vnf", "{name: ids,", "{name: firewall,", "topology.chain[1].name"},
		{"chain longer than the flow tag", "    - {name: transcoder,", "    - {name: dpi, capacity: 1000}\n    - {name: transcoder,", "at most 3"},
		{"bad strategy", "strategy: hybrid", "strategy: lazy", "strategy"},
		{"bad predictor", "predictor: ar1", "predictor: crystal-ball", "policy.predictor"},
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
	f.Add([]byte("traffic: {rates: {x: [1e400]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// an accepted config builds a valid replicated topology
		if top := c.fsmTopology(); top.Validate() != nil {
			err := top.Validate()
			t.Fatalf("accepted config with an invalid topology: %v", err)
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
