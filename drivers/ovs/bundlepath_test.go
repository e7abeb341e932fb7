package ovs

import "testing"

// The way a Switch sends its bundles is set by Config.OpenFlowBundles or
// IMS_OVS_OPENFLOW_BUNDLES, and IMS_OVS_OPENFLOW_BUNDLES=0 with the default
// Config means ovs-ofctl: controller/dataplane's
// TestFailedOpenGivesTheTupleBackOnTheRealPlane pins ovs-ofctl so (its
// fault, a moved management socket, is invisible to an open OpenFlow
// connection). Making the connection the default must keep a way to pin
// ovs-ofctl, and that test must use it.
func TestBundlePathSetting(t *testing.T) {
	for _, tc := range []struct {
		cfg  bool
		env  string
		want bool
	}{
		{false, "", false},
		{false, "0", false},
		{false, "1", true},
		{true, "", true},
	} {
		t.Setenv("IMS_OVS_OPENFLOW_BUNDLES", tc.env)
		d := &Daemon{cfg: Config{OpenFlowBundles: tc.cfg}}
		if got := d.openFlowBundles(); got != tc.want {
			t.Errorf("Config.OpenFlowBundles=%v IMS_OVS_OPENFLOW_BUNDLES=%q: connection %v, want %v", tc.cfg, tc.env, got, tc.want)
		}
	}
}
