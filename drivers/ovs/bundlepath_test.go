package ovs

import (
	"context"
	"strings"
	"testing"
)

// The way a Switch sends its bundles is Config.RulePath; an empty one is
// IMS_OVS_OPENFLOW_BUNDLES's when set, else DefaultRulePath, and a path set
// in the Config wins over the environment: controller/dataplane's
// TestFailedOpenGivesTheTupleBackOnTheRealPlane pins ovs-ofctl so (its
// fault, a moved management socket, is invisible to an open OpenFlow
// connection), whatever the environment of the run.
func TestBundlePathSetting(t *testing.T) {
	for _, tc := range []struct {
		cfg  RulePath
		env  string
		want RulePath
	}{
		{"", "", RulePathOpenFlow}, // the default since session 18
		{"", "0", RulePathOfctl},
		{"", "1", RulePathOpenFlow},
		{RulePathOfctl, "", RulePathOfctl},
		{RulePathOfctl, "1", RulePathOfctl},
		{RulePathOpenFlow, "", RulePathOpenFlow},
		{RulePathOpenFlow, "0", RulePathOpenFlow},
		{RulePathOpenFlow, "yes", RulePathOpenFlow}, // not read: the Config names the path
	} {
		got, err := resolveRulePath(tc.cfg, tc.env)
		if err != nil || got != tc.want {
			t.Errorf("RulePath %q, %s=%q: %q, %v; want %q", tc.cfg, RulePathEnv, tc.env, got, err, tc.want)
		}
		d := &Daemon{cfg: Config{RulePath: got}}
		if conn := d.NewSwitch("br").conn != nil; conn != (tc.want == RulePathOpenFlow) {
			t.Errorf("RulePath %q, %s=%q: a Switch with a connection %v, want the path %q", tc.cfg, RulePathEnv, tc.env, conn, tc.want)
		}
	}
	if conn := (&Daemon{}).NewSwitch("br").conn != nil; conn != (DefaultRulePath == RulePathOpenFlow) {
		t.Errorf("a Daemon with an empty RulePath: a Switch with a connection %v, want the default %q", conn, DefaultRulePath)
	}
}

// A rule path other than the two (in the Config or the environment) is
// refused by Start and StartFree before anything is touched, naming the
// field or the variable.
func TestStartRefusesAnUnknownRulePath(t *testing.T) {
	ctx := context.Background()
	// no Open vSwitch on the PATH: a Start that did not check first fails
	// further on (not naming the setting), with nothing started
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		cfg  RulePath
		env  string
		name string
	}{
		{"ofctl", "", "RulePath"},
		{"OpenFlow", "1", "RulePath"},
		{"", "true", RulePathEnv},
		{"", "on", RulePathEnv},
	} {
		t.Setenv(RulePathEnv, tc.env)
		dir := t.TempDir()
		_, err := Start(ctx, Config{Dir: dir, Prefix: "zzzzz", RulePath: tc.cfg})
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Start with RulePath %q, %s=%q: %v; want an error naming %s", tc.cfg, RulePathEnv, tc.env, err, tc.name)
		}
		_, err = StartFree(ctx, Config{Dir: dir, RulePath: tc.cfg}, 'z')
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("StartFree with RulePath %q, %s=%q: %v; want an error naming %s", tc.cfg, RulePathEnv, tc.env, err, tc.name)
		}
	}
	if _, err := StartFree(ctx, Config{Dir: t.TempDir(), Prefix: "zzzzz"}, 'z'); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("StartFree with a prefix: %v; want an error naming the prefix", err)
	}
}
