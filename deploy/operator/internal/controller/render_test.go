package controller

import (
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// The budget keeps a raft quorum of the running replicas through drains,
// and never blocks every eviction: one replica may be evicted (a budget of
// minAvailable 1 on one pod hangs every drain of its node), and a pod that
// is not ready may always be.
func TestPodDisruptionBudget(t *testing.T) {
	in := &orchv1.ImsOrch{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}}
	for _, c := range []struct {
		replicas           int32
		minAvail, maxUnav  int // -1: unset
		evictableWhenAllUp int // pods a drain may take with every pod ready
	}{
		{1, -1, 1, 1},
		{2, 2, -1, 0}, // a member still to join or leave: 2 voters need both
		{3, 2, -1, 1},
		{4, 3, -1, 1},
		{5, 3, -1, 2},
	} {
		b := podDisruptionBudget(in, c.replicas)
		s := b.Spec
		if intOrUnset(s.MinAvailable) != c.minAvail || intOrUnset(s.MaxUnavailable) != c.maxUnav {
			t.Errorf("%d replicas: minAvailable %v maxUnavailable %v, want %d %d", c.replicas, s.MinAvailable, s.MaxUnavailable, c.minAvail, c.maxUnav)
		}
		evictable := c.maxUnav
		if c.minAvail >= 0 {
			evictable = int(c.replicas) - c.minAvail
		}
		if evictable != c.evictableWhenAllUp {
			t.Errorf("%d replicas: a drain may take %d pods, want %d", c.replicas, evictable, c.evictableWhenAllUp)
		}
		if c.replicas >= 3 && int(c.replicas)-evictable < int(c.replicas)/2+1 {
			t.Errorf("%d replicas: evicting %d loses the raft quorum", c.replicas, evictable)
		}
		if s.UnhealthyPodEvictionPolicy == nil || *s.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
			t.Errorf("%d replicas: unhealthyPodEvictionPolicy %v, want AlwaysAllow", c.replicas, s.UnhealthyPodEvictionPolicy)
		}
		if s.Selector == nil || s.Selector.MatchLabels[instLabel] != "x" || b.Labels[managedLabel] == "" || b.Name != "x" {
			t.Errorf("%d replicas: selector %v labels %v name %s", c.replicas, s.Selector, b.Labels, b.Name)
		}
	}
}

// intOrUnset is v's integer, -1 when v is nil.
func intOrUnset(v *intstr.IntOrString) int {
	if v == nil {
		return -1
	}
	return v.IntValue()
}
