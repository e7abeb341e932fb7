package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

func TestNextStep(t *testing.T) {
	all := func(int) bool { return true }
	none := func(int) bool { return false }
	for _, c := range []struct {
		name    string
		desired int
		voters  []string
		ready   func(int) bool
		want    step
	}{
		{"in place", 3, []string{"x-0", "x-1", "x-2"}, all, step{join: -1}},
		{"join lowest missing first", 5, []string{"x-0", "x-2"}, all, step{join: 1}},
		{"wait for the pod to start", 3, []string{"x-0"}, none, step{join: -1, wait: "waiting for pod x-1 to start (its API to answer) to join it"}},
		{"no ordinal skipped", 3, []string{"x-0"}, func(i int) bool { return i == 2 }, step{join: -1, wait: "waiting for pod x-1 to start (its API to answer) to join it"}},
		{"leave highest first", 3, []string{"x-0", "x-1", "x-2", "x-3", "x-4"}, all, step{join: -1, leave: "x-4"}},
		{"foreign member first", 3, []string{"x-0", "x-1", "x-2", "x-3", "old"}, all, step{join: -1, leave: "old"}},
		{"join before leave", 3, []string{"x-0", "x-2", "x-4"}, all, step{join: 1}},
	} {
		if got := nextStep("x", c.desired, c.voters, c.ready); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	if n := stsReplicas("x", 3, []string{"x-0", "x-1", "x-2", "x-3", "x-4"}); n != 5 {
		t.Errorf("stsReplicas while x-4 is a member: %d", n)
	}
	if n := stsReplicas("x", 5, []string{"x-0"}); n != 5 {
		t.Errorf("stsReplicas growing: %d", n)
	}
	for id, want := range map[string]int{"x-0": 0, "x-12": 12, "x-01": -1, "x-": -1, "y-1": -1, "x-a": -1, "x--1": -1} {
		if got := ordinalOf("x", id); got != want {
			t.Errorf("ordinalOf(%q) = %d, want %d", id, got, want)
		}
	}
}

func TestRenderConfigRefusals(t *testing.T) {
	b, err := os.ReadFile("../../config/samples/orch_v1beta1_imsorch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sample orchv1.ImsOrch
	if err := yamlToObject(b, &sample); err != nil {
		t.Fatal(err)
	}
	good := sample.Spec.Config.Inline
	in := &orchv1.ImsOrch{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns"}}
	for _, c := range []struct{ user, want string }{
		{strings.Replace(good, "kind: sim", "kind: nova", 1), "driver.kind"},
		{"[1, 2]\n", "not a YAML mapping"},
		{good + "unknownSection: 1\n", "unknownSection"},
		{strings.Replace(good, "tau: 6", "tau: -1", 1), "policy"},
		{strings.Replace(good, "global: true", "global: false", 1), "role"},
		{strings.Replace(good, "scscfDC: tokyo", "scscfDC: paris", 1), "topology.scscfDC"},
		{"", "topology"},
	} {
		_, err := renderConfig(in, c.user)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: %v, want an error naming %q", c.user, err, c.want)
		}
	}
	out, err := renderConfig(in, good)
	if err != nil {
		t.Fatal(err)
	}
	// a DP stage's loadThreshold beside the catalog's thresholds: accepted,
	// and by the pods too, which normalize it again with their identity
	lt := strings.Replace(good, "{name: firewall,", "{name: firewall, loadThreshold: 70,", 1)
	if lt == good {
		t.Fatal("the sample has no firewall stage")
	}
	if _, err := renderConfig(in, lt); err != nil {
		t.Fatalf("loadThreshold 70: %v", err)
	}
	// a declared profile: rates (with utcOffset or timeZone) render; a
	// file is refused even where the operator's own process could read it,
	// since the pods mount none
	file := filepath.Join(t.TempDir(), "houston.csv")
	var day strings.Builder
	for h := range 24 {
		fmt.Fprintf(&day, "%d, 1\n", h)
	}
	if err := os.WriteFile(file, []byte(day.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	rates := "rates: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]"
	profile := func(houston string) string {
		p := "strategy: hybrid\n  declaredProfile:\n    dcs:\n" +
			"      - {dc: tokyo, utcOffset: 9, " + rates + "}\n" +
			"      - {dc: hong-kong, timeZone: Asia/Hong_Kong, " + rates + "}\n" +
			"      - {dc: london, timeZone: Europe/London, " + rates + "}\n" +
			"      - {dc: houston, " + houston + "}\n"
		u := strings.Replace(good, "strategy: hybrid\n", p, 1)
		if u == good {
			t.Fatal("the sample has no strategy: hybrid")
		}
		return u
	}
	if _, err := renderConfig(in, profile("timeZone: America/Chicago, "+rates)); err != nil {
		t.Fatalf("declared profile with rates: %v", err)
	}
	_, err = renderConfig(in, profile("timeZone: America/Chicago, file: "+file))
	if err == nil || !strings.Contains(err.Error(), "policy.declaredProfile.dcs[3].file") ||
		!strings.Contains(err.Error(), "rates") {
		t.Errorf("declared profile with a file: %v, want an error naming policy.declaredProfile.dcs[3].file and rates", err)
	}
	if !strings.Contains(out, "raftBind: 0.0.0.0:7000") || !strings.Contains(out, "https://o-4.o-peers.ns.svc:8443") {
		t.Fatalf("rendered: %s", out)
	}
}
