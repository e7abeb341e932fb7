package simulation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
)

// Every shipped experiment parses.
func TestShippedExperimentsParse(t *testing.T) {
	files, _ := filepath.Glob(expDir + "*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d experiment files", len(files))
	}
	for _, f := range files {
		if _, err := LoadExperiment(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

const minimal = `version: 1
name: x
datacenters: [a, b]
delaysMs: [[0, 10], [10, 0]]
duration: 60s
traffic: {changeInterval: 20s, dcs: [{dc: 0, rates: [1]}]}
`

func TestParseExperimentErrors(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"unknown field", "bogus: 1\n", "bogus"},
		{"version", "version: 2\n", "version"},
		{"preset and matrix", "topology: paper-4dc\n", "delaysMs"},
		{"bad preset", "topology: mars\n", "topology"},
		{"bad interval", "interval: 5s\n", "interval"},
		{"negative tau", "tau: 0\n", "tau"},
		{"bad duration", "duration: soon\n", "duration"},
		{"scscf", "scscfDC: 5\n", "scscfDC"},
		{"min vnf", "min: {router: 1}\n", "min"},
		{"pairing", "pairing: random\n", "pairing"},
		{"strategy", "strategy: lazy\n", "strategy"},
		{"jitter", "transportJitter: 40s\n", "transportJitter"},
		{"traffic dc", "traffic: {changeInterval: 20s, dcs: [{dc: 7, rates: [1]}]}\n", "traffic"},
		{"delay change", "delayChanges: [{after: 1s, from: [9], to: [0], ms: 5}]\n", "delays"},
		{"bound", "delayBoundMs: -1\n", "delayBoundMs"},
		{"predictor", "predictor: oracle\n", "predictor"},
		{"pack flows", "packFlows: -0.5\n", "packFlows"},
		{"spread overload", "spreadOverload: 2\n", "spreadOverload"},
		{"spread overload below pack flows", "spreadOverload: 0.5\n", "spreadOverload: must be 0 (off) or at least packFlows 0.88"},
		{"DP target above 1", "dpTargetUtilization: 1.5\n", "dpTargetUtilization"},
		{"negative DP target", "dpTargetUtilization: -0.1\n", "dpTargetUtilization"},
		{"DP target not a number", "dpTargetUtilization: .nan\n", "dpTargetUtilization"},
		{"stage target above 1", "targets: [{vnf: ids, utilization: 2}]\n", "experiment targets[0].utilization"},
		{"repeated stage target", "targets: [{vnf: ids, utilization: 0.9}, {vnf: IDS, utilization: 0.9}]\n", "experiment targets[1].vnf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// later keys replace earlier ones: drop the edited key from minimal
			key := strings.SplitN(tc.edit, ":", 2)[0]
			var lines []string
			for _, l := range strings.Split(minimal, "\n") {
				if !strings.HasPrefix(l, key+":") {
					lines = append(lines, l)
				}
			}
			_, err := ParseExperiment([]byte(strings.Join(lines, "\n") + tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
	e, err := ParseExperiment([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if e.Interval != 50*time.Second || e.Tau != 10 || e.DelayBoundMs != 250 || e.Strategy.Name() != "hybrid" || e.Min["firewall"] != 1 {
		t.Fatalf("defaults %+v", e)
	}
	if e, err = ParseExperiment([]byte(minimal + "dpTargetUtilization: 0.93\n")); err != nil || e.DPTargetUtilization != 0.93 {
		t.Fatalf("dpTargetUtilization 0.93: %v, got %+v", err, e)
	}
	// given targets replace the default list; an empty list clears it
	if e, err = ParseExperiment([]byte(minimal + "targets: [{vnf: transcoder, utilization: 0.97}]\n")); err != nil ||
		len(e.Targets) != 1 || e.Targets[0] != (fsm.Target{VNF: "transcoder", Utilization: 0.97}) {
		t.Fatalf("targets: %v, got %+v", err, e)
	}
	if e, err = ParseExperiment([]byte(minimal + "targets: []\n")); err != nil || len(e.Targets) != 0 {
		t.Fatalf("empty targets: %v, got %+v", err, e)
	}
}

func TestStartDelayAndChangeInterval(t *testing.T) {
	e := load(t, "async-start.yaml")
	d, err := e.WithStartDelay(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[int]time.Duration{}
	for _, s := range d.Schedule.DCs {
		starts[s.DC] = s.Start
	}
	// tokyo 0, hong kong 60 s, houston +120 s, london +120 s
	if starts[0] != 0 || starts[1] != 60*time.Second || starts[3] != 180*time.Second || starts[2] != 300*time.Second {
		t.Fatalf("starts %v", starts)
	}
	if e.Schedule.DCs[1].Start != 240*time.Second {
		t.Fatal("WithStartDelay changed the original")
	}
	c, err := e.WithChangeInterval(45 * time.Second)
	if err != nil || c.Schedule.ChangeInterval != 45*time.Second || e.Schedule.ChangeInterval != 30*time.Second {
		t.Fatalf("change interval: %v", err)
	}
	if _, err := e.WithChangeInterval(0); err == nil {
		t.Fatal("0 change interval accepted")
	}
}

func FuzzParseExperiment(f *testing.F) {
	f.Add([]byte(minimal))
	files, _ := filepath.Glob(expDir + "*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(minimal + "dpTargetUtilization: 0.95\ntargetUtilization: 0.9\n"))
	f.Add([]byte(minimal + "targets: [{vnf: firewall, utilization: 0.95}, {vnf: ids, utilization: 1}]\n"))
	f.Add([]byte(minimal + "riseFlags: false\n")) // session 17's key (revH L4)
	f.Add([]byte("version: 1\nname: y\ntopology: paper-8dc\nduration: 1s\ntraffic: {changeInterval: 1h, dcs: []}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseExperiment(data)
		if err != nil {
			return
		}
		if len(e.DCs) == 0 || len(e.DCs) != len(e.DelaysMs) || e.Duration <= 0 || e.Schedule == nil || e.Interval <= 0 ||
			!(e.DPTargetUtilization >= 0 && e.DPTargetUtilization <= 1) || !(e.TargetUtilization >= 0 && e.TargetUtilization <= 1) ||
			(&fsm.Policy{DelayBoundMs: 1, Targets: e.Targets}).Validate() != nil {
			t.Fatalf("accepted an unusable experiment: %+v", e)
		}
	})
}
