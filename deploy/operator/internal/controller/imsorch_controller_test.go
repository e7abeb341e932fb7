package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/openstack-k8s-operators/lib-common/modules/common/condition"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/daemon"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// fakeRaft stands in for the daemons' API: the voters, which pods answer,
// and the joins and leaves it received, in order. A pod that is not a voter
// answers with no leader (it waits to be joined), as the real daemon does.
type fakeRaft struct {
	mu       sync.Mutex
	voters   []string
	up       map[string]bool
	joins    []string
	leaves   []string
	addrs    []string
	interval int64
	tokens   []string
	caPEM    []byte // the CA bundle of the last dial
}

func newFakeRaft(bootstrap string) *fakeRaft {
	return &fakeRaft{voters: []string{bootstrap}, up: map[string]bool{}, interval: 7}
}

func (f *fakeRaft) dial(baseURL, token string, caPEM []byte) (Daemon, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(caPEM); blk == nil {
		return nil, fmt.Errorf("no CA PEM")
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, token)
	f.caPEM = caPEM
	f.mu.Unlock()
	return &fakeNode{f: f, id: strings.SplitN(u.Hostname(), ".", 2)[0]}, nil
}

func (f *fakeRaft) setUp(id string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up[id] = up
}

func (f *fakeRaft) calls() (joins, leaves []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.joins), slices.Clone(f.leaves)
}

type fakeNode struct {
	f  *fakeRaft
	id string
}

func (n *fakeNode) cluster() api.Cluster {
	c := api.Cluster{Leader: n.f.voters[0], Members: []api.Member{}}
	for i, v := range n.f.voters {
		contact := api.ContactOK
		if i == 0 {
			contact = api.ContactLeader
		} else if !n.f.up[v] {
			contact = api.ContactFailing
		}
		c.Members = append(c.Members, api.Member{ID: v, Suffrage: api.SuffrageVoter, Contact: contact})
	}
	c.Voters, c.Quorum = len(n.f.voters), api.QuorumOf(len(n.f.voters))
	return c
}

func (n *fakeNode) Cluster(context.Context) (api.Cluster, error) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	if !n.f.up[n.id] {
		return api.Cluster{}, fmt.Errorf("dial %s: connection refused", n.id)
	}
	if !slices.Contains(n.f.voters, n.id) {
		return api.Cluster{Members: []api.Member{}}, nil
	}
	return n.cluster(), nil
}

func (n *fakeNode) Join(_ context.Context, req api.JoinRequest) (api.MembershipResult, error) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	if !n.f.up[req.ID] {
		return api.MembershipResult{}, fmt.Errorf("%w: raftAddress %s does not answer", api.ErrConflict, req.RaftAddress)
	}
	n.f.joins = append(n.f.joins, req.ID)
	n.f.addrs = append(n.f.addrs, req.RaftAddress)
	n.f.voters = append(n.f.voters, req.ID)
	return api.MembershipResult{Changed: true, Cluster: n.cluster()}, nil
}

func (n *fakeNode) Leave(_ context.Context, id string) (api.MembershipResult, error) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	i := slices.Index(n.f.voters, id)
	if i < 0 {
		return api.MembershipResult{}, api.ErrNotFound
	}
	n.f.leaves = append(n.f.leaves, id)
	n.f.voters = slices.Delete(n.f.voters, i, i+1)
	return api.MembershipResult{Changed: true, Cluster: n.cluster()}, nil
}

func (n *fakeNode) State(context.Context) (api.State, error) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	return api.State{Interval: n.f.interval, Leader: n.f.voters[0]}, nil
}

// fixture is one ImsOrch in its own namespace with a reconciler whose
// daemons are a fakeRaft.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	ns   string
	key  types.NamespacedName
	raft *fakeRaft
	r    *ImsOrchReconciler
}

const testWait = 7 * time.Second

func newFixture(t *testing.T, name string) *fixture {
	t.Helper()
	needAPIServer(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, ns: ns.Name, key: types.NamespacedName{Namespace: ns.Name, Name: name},
		raft: newFakeRaft(name + "-0")}
	f.r = &ImsOrchReconciler{Client: k8sClient, Kclient: kclient, Scheme: testScheme, Dial: f.raft.dial,
		Wait: testWait, Resync: time.Minute, Now: func() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }}
	return f
}

// sample is the shipped sample CR, in the fixture's namespace.
func (f *fixture) sample() *orchv1.ImsOrch {
	f.t.Helper()
	b, err := os.ReadFile("../../config/samples/orch_v1beta1_imsorch.yaml")
	if err != nil {
		f.t.Fatal(err)
	}
	var in orchv1.ImsOrch
	if err := yamlToObject(b, &in); err != nil {
		f.t.Fatal(err)
	}
	in.Name, in.Namespace = f.key.Name, f.key.Namespace
	return &in
}

func (f *fixture) reconcile() ctrl.Result {
	f.t.Helper()
	ctx := ctrl.LoggerInto(f.ctx, testr.New(f.t))
	res, err := f.r.Reconcile(ctx, ctrl.Request{NamespacedName: f.key})
	if err != nil {
		f.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (f *fixture) get(name string, obj client.Object) {
	f.t.Helper()
	if err := k8sClient.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, obj); err != nil {
		f.t.Fatalf("get %T %s: %v", obj, name, err)
	}
}

func (f *fixture) instance() *orchv1.ImsOrch {
	f.t.Helper()
	in := &orchv1.ImsOrch{}
	f.get(f.key.Name, in)
	return in
}

func (f *fixture) update(mutate func(*orchv1.ImsOrch)) {
	f.t.Helper()
	in := f.instance()
	mutate(in)
	if err := k8sClient.Update(f.ctx, in); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) cond(t condition.Type) *condition.Condition {
	f.t.Helper()
	c := f.instance().Status.Conditions.Get(t)
	if c == nil {
		f.t.Fatalf("no %s condition", t)
	}
	return c
}

func (f *fixture) wantCond(t condition.Type, status corev1.ConditionStatus, reason condition.Reason, msgPart string) {
	f.t.Helper()
	c := f.cond(t)
	if c.Status != status || (reason != "" && c.Reason != reason) || !strings.Contains(c.Message, msgPart) {
		f.t.Fatalf("%s = %s/%s %q, want %s/%s containing %q", t, c.Status, c.Reason, c.Message, status, reason, msgPart)
	}
}

// simulatePod does what the StatefulSet controller and the kubelet would:
// the pod of ordinal i exists with the StatefulSet's current template
// annotations, its daemon answers and its container has started; the pod
// is Ready as the kubelet's probe of /readyz finds it (kubelet).
func (f *fixture) simulatePod(i int) {
	f.t.Helper()
	name := podName(f.key.Name, i)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: selector(f.instance()),
		Annotations: f.sts().Spec.Template.Annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: appName, Image: "ims-orch"}}}}
	if err := k8sClient.Create(f.ctx, p); err != nil && !k8serrors.IsAlreadyExists(err) {
		f.t.Fatal(err)
	}
	f.raft.setUp(name, true)
	f.kubelet()
}

// kubelet sets every pod's status as the kubelet's probes would find the
// daemons of the fakeRaft: started (/healthz answers) when its daemon is
// up, Ready (/readyz answers: a raft leader is known) when it is also a
// voter.
func (f *fixture) kubelet() {
	f.t.Helper()
	pods := &corev1.PodList{}
	if err := k8sClient.List(f.ctx, pods, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		f.raft.mu.Lock()
		up := f.raft.up[p.Name]
		member := up && slices.Contains(f.raft.voters, p.Name)
		f.raft.mu.Unlock()
		cond := corev1.ConditionFalse
		if member {
			cond = corev1.ConditionTrue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: appName, Image: "ims-orch", Started: ptr.To(up), Ready: member,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}
		if err := k8sClient.Status().Update(f.ctx, p); err != nil {
			f.t.Fatal(err)
		}
	}
}

// podReady is pod name's Ready condition as stored.
func (f *fixture) podReady(name string) bool {
	f.t.Helper()
	p := &corev1.Pod{}
	f.get(name, p)
	return ready(p)
}

// simulateStatefulSetReady sets the StatefulSet's status as its controller
// would once every pod is ready (lib-common's test helpers do the same).
func (f *fixture) simulateStatefulSetReady() {
	f.t.Helper()
	sts := &appsv1.StatefulSet{}
	f.get(f.key.Name, sts)
	n := *sts.Spec.Replicas
	sts.Status.Replicas, sts.Status.ReadyReplicas, sts.Status.AvailableReplicas = n, n, n
	sts.Status.CurrentReplicas, sts.Status.UpdatedReplicas = n, n
	sts.Status.ObservedGeneration = sts.Generation
	if err := k8sClient.Status().Update(f.ctx, sts); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sts() *appsv1.StatefulSet {
	f.t.Helper()
	sts := &appsv1.StatefulSet{}
	f.get(f.key.Name, sts)
	return sts
}

func wantOwned(t *testing.T, obj client.Object, in *orchv1.ImsOrch) {
	t.Helper()
	for _, o := range obj.GetOwnerReferences() {
		if o.UID == in.UID && o.Kind == "ImsOrch" && ptr.Deref(o.Controller, false) {
			return
		}
	}
	t.Fatalf("%T %s: no controller owner reference to ImsOrch %s: %+v", obj, obj.GetName(), in.Name, obj.GetOwnerReferences())
}

// Creating an ImsOrch makes the Secrets, ConfigMap, Services, PDB and
// StatefulSet with the expected content, each owned by the ImsOrch.
func TestCreateMakesOwnedObjects(t *testing.T) {
	f := newFixture(t, "orch")
	if err := k8sClient.Create(f.ctx, f.sample()); err != nil {
		t.Fatal(err)
	}
	res := f.reconcile()
	in := f.instance()

	tlsS := &corev1.Secret{}
	f.get("orch-api-tls", tlsS)
	wantOwned(t, tlsS, in)
	blk, _ := pem.Decode(tlsS.Data["tls.crt"])
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caBlk, _ := pem.Decode(tlsS.Data["ca.crt"])
	ca, err := x509.ParseCertificate(caBlk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, host := range []string{"orch." + f.ns + ".svc", "orch-2.orch-peers." + f.ns + ".svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: f.r.Now()}); err != nil {
			t.Fatalf("certificate for %s: %v", host, err)
		}
	}
	tokS := &corev1.Secret{}
	f.get("orch-api-token", tokS)
	wantOwned(t, tokS, in)
	var tf api.TokenFile
	if err := yaml.Unmarshal(tokS.Data[tokensKey], &tf); err != nil || len(tf.Tokens) != 1 {
		t.Fatalf("tokens.yaml: %+v %v", tf, err)
	}
	sum := sha256.Sum256(tokS.Data[tokenKey])
	if tf.Tokens[0].SHA256 != hex.EncodeToString(sum[:]) || tf.Tokens[0].Scope != api.ScopeAdmin {
		t.Fatalf("token file %+v does not hold the token's hash with admin scope", tf.Tokens[0])
	}

	cm := &corev1.ConfigMap{}
	f.get("orch-config", cm)
	wantOwned(t, cm, in)
	cfg, err := daemon.ParseConfig([]byte(cm.Data[configKey]))
	if err != nil {
		t.Fatalf("rendered config refused by the daemon: %v", err)
	}
	if cfg.Node.RaftBind != "0.0.0.0:7000" || len(cfg.Node.Peers) != 5 || cfg.API.TLS == nil || cfg.API.TokensFile == "" ||
		cfg.Node.Peers[2].API != "https://orch-2.orch-peers."+f.ns+".svc:8443" || len(cfg.Topology.Datacenters) != 4 {
		t.Fatalf("rendered config: node %+v api %+v", cfg.Node, cfg.API)
	}

	peers := &corev1.Service{}
	f.get("orch-peers", peers)
	wantOwned(t, peers, in)
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses || len(peers.Spec.Ports) != 2 {
		t.Fatalf("headless service: %+v", peers.Spec)
	}
	svc := &corev1.Service{}
	f.get("orch", svc)
	wantOwned(t, svc, in)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.Ports[0].Port != orchv1.APIPort {
		t.Fatalf("client service: %+v", svc.Spec)
	}
	pdbObj := &policyv1.PodDisruptionBudget{}
	f.get("orch", pdbObj)
	wantOwned(t, pdbObj, in)
	f.wantPDB(2, -1)

	sts := f.sts()
	wantOwned(t, sts, in)
	c := sts.Spec.Template.Spec.Containers[0]
	if *sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "orch-peers" || c.Image != in.Spec.Image ||
		sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement ||
		len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != raftVolume ||
		sts.Spec.Template.Annotations[hashAnnot] == "" || sts.Spec.Template.Annotations[hashAnnot] != in.Status.ConfigHash {
		t.Fatalf("statefulset: replicas %d service %s image %s claims %v annotations %v (status hash %s)",
			*sts.Spec.Replicas, sts.Spec.ServiceName, c.Image, sts.Spec.VolumeClaimTemplates, sts.Spec.Template.Annotations, in.Status.ConfigHash)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--node-id $(POD_NAME)", "--bootstrap-node orch-0", "--raft-advertise $(POD_NAME).orch-peers." + f.ns + ".svc:7000", "--config " + configFile} {
		if !strings.Contains(args, want) {
			t.Fatalf("container args %q lack %q", args, want)
		}
	}
	if c.Resources.Requests.Cpu().String() != "100m" {
		t.Fatalf("resources not passed: %+v", c.Resources)
	}

	// no pod answers yet: the quorum is unknown, the rest is in place
	f.wantCond(condition.InputReadyCondition, corev1.ConditionTrue, "", "")
	f.wantCond(condition.ServiceConfigReadyCondition, corev1.ConditionTrue, "", "")
	f.wantCond(condition.CreateServiceReadyCondition, corev1.ConditionTrue, "", "")
	f.wantCond(condition.DeploymentReadyCondition, corev1.ConditionFalse, condition.RequestedReason, "0 of 3")
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionFalse, ReasonDaemon, "no pod answers")
	f.wantCond(condition.ReadyCondition, corev1.ConditionFalse, "", "")
	if res.RequeueAfter != testWait {
		t.Fatalf("requeue %v, want %v while no daemon answers", res.RequeueAfter, testWait)
	}
	if got := f.instance().Status.Endpoint; got != "https://orch."+f.ns+".svc:8443" {
		t.Fatalf("endpoint %q", got)
	}
}

// A change of the daemon configuration (inline, then a referenced
// ConfigMap) changes the pod template's hash annotation: the StatefulSet
// rolls its pods. A reconcile without a change keeps the hash.
func TestConfigChangeRollsStatefulSet(t *testing.T) {
	f := newFixture(t, "roll")
	if err := k8sClient.Create(f.ctx, f.sample()); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	h0 := f.sts().Spec.Template.Annotations[hashAnnot]
	f.reconcile()
	if h := f.sts().Spec.Template.Annotations[hashAnnot]; h != h0 {
		t.Fatalf("hash changed without a change: %s → %s", h0, h)
	}
	f.update(func(in *orchv1.ImsOrch) {
		in.Spec.Config.Inline = strings.Replace(in.Spec.Config.Inline, "tau: 6", "tau: 4", 1)
	})
	f.reconcile()
	h1 := f.sts().Spec.Template.Annotations[hashAnnot]
	cm := &corev1.ConfigMap{}
	f.get("roll-config", cm)
	if h1 == h0 || !strings.Contains(cm.Data[configKey], "tau: 4") {
		t.Fatalf("inline change: hash %s → %s, config has tau 4: %v", h0, h1, strings.Contains(cm.Data[configKey], "tau: 4"))
	}

	user := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "user-config", Namespace: f.ns},
		Data: map[string]string{"config.yaml": f.sample().Spec.Config.Inline}}
	if err := k8sClient.Create(f.ctx, user); err != nil {
		t.Fatal(err)
	}
	f.update(func(in *orchv1.ImsOrch) {
		in.Spec.Config = orchv1.ConfigSource{ConfigMapRef: &orchv1.ConfigMapKey{Name: "user-config"}}
	})
	f.reconcile()
	h2 := f.sts().Spec.Template.Annotations[hashAnnot]
	if h2 == h1 {
		t.Fatal("switching to the ConfigMap (tau 6 again) kept the hash")
	}
	user.Data["config.yaml"] = strings.Replace(user.Data["config.yaml"], "delayBoundMs: 250", "delayBoundMs: 300", 1)
	if err := k8sClient.Update(f.ctx, user); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if h3 := f.sts().Spec.Template.Annotations[hashAnnot]; h3 == h2 {
		t.Fatal("a change of the referenced ConfigMap kept the hash")
	}
}

// The API server itself refuses invalid specs (CRD schema and CEL rules),
// with a message that says why.
func TestInvalidSpecsRefusedByAPIServer(t *testing.T) {
	f := newFixture(t, "bad")
	for _, c := range []struct {
		name   string
		mutate func(*orchv1.ImsOrch)
		want   string
	}{
		{"replicas 2", func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](2) }, "replicas must be 1, 3 or 5"},
		{"replicas 4", func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](4) }, "replicas must be 1, 3 or 5"},
		{"replicas 0", func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](0) }, "replicas must be 1, 3 or 5"},
		{"two config sources", func(in *orchv1.ImsOrch) {
			in.Spec.Config.ConfigMapRef = &orchv1.ConfigMapKey{Name: "x"}
		}, "set exactly one of inline and configMapRef"},
		{"no config", func(in *orchv1.ImsOrch) { in.Spec.Config = orchv1.ConfigSource{} }, "set exactly one of inline and configMapRef"},
		{"no image", func(in *orchv1.ImsOrch) { in.Spec.Image = "" }, "spec.image"},
		{"certRenewBefore 30m", func(in *orchv1.ImsOrch) { in.Spec.CertRenewBefore = &metav1.Duration{Duration: 30 * time.Minute} },
			"certRenewBefore must be between 1h and 4380h"},
		{"certRenewBefore a year", func(in *orchv1.ImsOrch) { in.Spec.CertRenewBefore = &metav1.Duration{Duration: 8760 * time.Hour} },
			"certRenewBefore must be between 1h and 4380h"},
	} {
		in := f.sample()
		c.mutate(in)
		err := k8sClient.Create(f.ctx, in)
		if !k8serrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want Invalid naming %q", c.name, err, c.want)
		}
	}
	// an update to an even count is refused as well
	in := f.sample()
	in.Spec.Replicas = ptr.To[int32](5)
	if err := k8sClient.Create(f.ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Spec.Replicas = ptr.To[int32](4)
	if err := k8sClient.Update(f.ctx, in); !k8serrors.IsInvalid(err) || !strings.Contains(err.Error(), "replicas must be 1, 3 or 5") {
		t.Fatalf("update to 4: %v", err)
	}
	// the default is 3
	d := f.sample()
	d.Name, d.Spec.Replicas = "defaulted", nil
	if err := k8sClient.Create(f.ctx, d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Fatalf("default replicas %v", d.Spec.Replicas)
	}
	if d.RenewBefore() != orchv1.DefaultCertRenewBefore || d.Spec.CertRenewBefore == nil {
		t.Fatalf("default certRenewBefore %v", d.Spec.CertRenewBefore)
	}
}

// 1 → 3 → 5 → 3: the operator joins each new pod through the daemon once
// the pod is ready, one per reconcile and in ordinal order, and removes
// members from the highest ordinal down before the StatefulSet shrinks.
// The conditions follow: QuorumReady and Ready only when the voters are the
// desired ones.
func TestMembershipFollowsReplicas(t *testing.T) {
	f := newFixture(t, "m")
	if err := k8sClient.Create(f.ctx, f.sample()); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.simulatePod(0) // bootstraps itself (the fake starts with m-0 as voter)
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionFalse, ReasonMembership, "waiting for pod m-1 to start")
	if !f.podReady("m-0") {
		t.Fatal("the bootstrap pod m-0 is not ready")
	}
	f.simulatePod(1)
	f.simulatePod(2)
	// started, not yet ready (not a voter): the operator joins it anyway
	if f.podReady("m-1") {
		t.Fatal("m-1 ready before it joined")
	}
	if res := f.reconcile(); res.RequeueAfter != time.Second {
		t.Fatalf("after a join: requeue %v", res.RequeueAfter)
	}
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionFalse, ReasonMembership, "joined m-1")
	f.kubelet()
	if !f.podReady("m-1") || f.podReady("m-2") {
		t.Fatalf("after m-1 joined: ready m-1 %v m-2 %v, want true false", f.podReady("m-1"), f.podReady("m-2"))
	}
	f.reconcile()
	f.reconcile()
	f.simulateStatefulSetReady()
	f.reconcile()
	joins, _ := f.raft.calls()
	if !slices.Equal(joins, []string{"m-1", "m-2"}) {
		t.Fatalf("joins %v", joins)
	}
	if f.raft.addrs[0] != "m-1.m-peers."+f.ns+".svc:7000" {
		t.Fatalf("join address %s", f.raft.addrs[0])
	}
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", "3 voters, leader m-0")
	f.wantCond(condition.DeploymentReadyCondition, corev1.ConditionTrue, "", "")
	f.wantCond(condition.ReadyCondition, corev1.ConditionTrue, "", "")
	st := f.instance().Status
	if !slices.Equal(st.Members, []string{"m-0", "m-1", "m-2"}) || st.Leader != "m-0" || st.Interval != 7 || st.ReadyReplicas != 3 {
		t.Fatalf("status %+v", st)
	}
	tok := &corev1.Secret{}
	f.get("m-api-token", tok)
	for _, got := range f.raft.tokens {
		if got != string(tok.Data[tokenKey]) {
			t.Fatal("the operator called the daemon without the generated admin token")
		}
	}

	// 3 → 5
	f.update(func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](5) })
	f.reconcile()
	if n := *f.sts().Spec.Replicas; n != 5 {
		t.Fatalf("statefulset replicas %d, want 5", n)
	}
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionFalse, ReasonMembership, "waiting for pod m-3")
	f.wantCond(condition.ReadyCondition, corev1.ConditionFalse, "", "")
	f.simulatePod(3)
	f.reconcile()
	f.reconcile() // m-4 not started: no join
	if joins, _ := f.raft.calls(); !slices.Equal(joins, []string{"m-1", "m-2", "m-3"}) {
		t.Fatalf("joins %v", joins)
	}
	f.simulatePod(4)
	f.reconcile()
	f.simulateStatefulSetReady()
	f.reconcile()
	if joins, _ := f.raft.calls(); !slices.Equal(joins, []string{"m-1", "m-2", "m-3", "m-4"}) {
		t.Fatalf("joins %v", joins)
	}
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", "5 voters")
	f.wantPDB(3, -1)

	// 5 → 3: leave m-4, then m-3; the StatefulSet keeps a pod until it left
	f.update(func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](3) })
	f.reconcile()
	if _, leaves := f.raft.calls(); !slices.Equal(leaves, []string{"m-4"}) {
		t.Fatalf("leaves %v", leaves)
	}
	f.wantPDB(3, -1) // 5 voters until m-4 left: 3 must stay
	if n := *f.sts().Spec.Replicas; n != 5 {
		t.Fatalf("statefulset shrank to %d before m-4 left raft", n)
	}
	f.reconcile()
	if n := *f.sts().Spec.Replicas; n != 4 {
		t.Fatalf("statefulset replicas %d after m-4 left, want 4", n)
	}
	f.reconcile()
	f.reconcile()
	if _, leaves := f.raft.calls(); !slices.Equal(leaves, []string{"m-4", "m-3"}) {
		t.Fatalf("leaves %v", leaves)
	}
	if n := *f.sts().Spec.Replicas; n != 3 {
		t.Fatalf("statefulset replicas %d, want 3", n)
	}
	f.simulateStatefulSetReady()
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", "3 voters")
	f.wantCond(condition.ReadyCondition, corev1.ConditionTrue, "", "")
	f.wantPDB(2, -1)

	// a voter that stops answering the leader: quorum still there (2 of 3)
	f.raft.setUp("m-2", false)
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", "")
	f.raft.setUp("m-1", false)
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionFalse, ReasonDaemon, "reaches 1 of 3 voters")
}

// testClock is the reconciler's injected clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// bringUp creates the instance and its n pods as the StatefulSet
// controller and kubelet would, joins them and returns once QuorumReady.
func (f *fixture) bringUp(in *orchv1.ImsOrch, n int) {
	f.t.Helper()
	if err := k8sClient.Create(f.ctx, in); err != nil {
		f.t.Fatal(err)
	}
	f.reconcile()
	for i := range n {
		f.simulatePod(i)
		f.reconcile()
	}
	f.kubelet()
	f.simulateStatefulSetReady()
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", fmt.Sprintf("%d voters", n))
}

// rollPods does what a finished rolling update leaves: every pod runs the
// StatefulSet's current template and is ready again.
func (f *fixture) rollPods() {
	f.t.Helper()
	tmpl := f.sts().Spec.Template.Annotations
	pods := &corev1.PodList{}
	if err := k8sClient.List(f.ctx, pods, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		p.Annotations = tmpl
		if err := k8sClient.Update(f.ctx, p); err != nil {
			f.t.Fatal(err)
		}
	}
	f.kubelet()
}

// tlsSecret is the generated API TLS Secret's data.
func (f *fixture) tlsSecret() map[string][]byte {
	f.t.Helper()
	s := &corev1.Secret{}
	f.get(f.key.Name+"-api-tls", s)
	return s.Data
}

// The generated CA and API certificate on the reconciler's injected clock,
// with spec.certRenewBefore 1000h: nothing changes a second before a
// certificate falls due, and the reconcile asks to come back then; at the
// due time the certificate is renewed from the same CA and the pods roll
// (the template's hash changes). When the CA falls due, a new CA joins the
// bundle (the pods roll) and the certificate it signs waits until every pod
// runs with that bundle and is ready; then it replaces the old one (the
// pods roll again). Every change keeps a pod on the old Secret and one on
// the new trusting each other, and the operator's own client trusts both.
func TestCertificatesRotateBeforeExpiry(t *testing.T) {
	f := newFixture(t, "rot")
	clk := &testClock{now: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	f.r.Now = clk.Now
	rb := 1000 * time.Hour
	in := f.sample()
	in.Spec.CertRenewBefore = &metav1.Duration{Duration: rb}
	f.bringUp(in, 3)
	caS := &corev1.Secret{}
	f.get("rot-api-ca", caS)
	wantOwned(t, caS, f.instance())
	for _, v := range f.sts().Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "rot-api-ca" {
			t.Fatal("the CA's key is mounted in the pods")
		}
	}
	firstCA := caS.Data[certKey]
	st := f.instance().Status
	if st.CertificateNotAfter == nil || !st.CertificateNotAfter.Time.Equal(clk.Now().Add(certValidity)) ||
		st.CANotAfter == nil || !st.CANotAfter.Time.Equal(clk.Now().Add(caValidity)) {
		t.Fatalf("status certificateNotAfter %v caNotAfter %v", st.CertificateNotAfter, st.CANotAfter)
	}

	step := func(at time.Time) (ctrl.Result, map[string][]byte, string) {
		t.Helper()
		before, hash := f.tlsSecret(), f.sts().Spec.Template.Annotations[hashAnnot]
		clk.set(at)
		res := f.reconcile()
		after := f.tlsSecret()
		if err := verifies(t, f.instance(), after, before, at); err != nil {
			t.Fatalf("at %v: a pod on the old Secret refuses the new certificate: %v", at, err)
		}
		if err := verifies(t, f.instance(), before, after, at); err != nil {
			t.Fatalf("at %v: a pod on the new Secret refuses the old certificate: %v", at, err)
		}
		return res, after, hash
	}
	renewals := 0
	for {
		st := f.instance().Status
		certDue, caDue := st.CertificateNotAfter.Add(-rb), st.CANotAfter.Add(-rb)
		if !caDue.After(certDue) {
			break
		}
		old := f.tlsSecret()
		res, now, hash := step(certDue.Add(-time.Second))
		if !bytes.Equal(now[certKey], old[certKey]) || f.sts().Spec.Template.Annotations[hashAnnot] != hash {
			t.Fatalf("renewed a second before %v", certDue)
		}
		if res.RequeueAfter != time.Second {
			t.Fatalf("a second before the renewal: requeue after %v", res.RequeueAfter)
		}
		_, now, hash = step(certDue)
		if bytes.Equal(now[certKey], old[certKey]) || !bytes.Equal(now[bundleKey], old[bundleKey]) {
			t.Fatalf("at %v: certificate renewed %v, bundle kept %v", certDue, !bytes.Equal(now[certKey], old[certKey]), bytes.Equal(now[bundleKey], old[bundleKey]))
		}
		if f.sts().Spec.Template.Annotations[hashAnnot] == hash {
			t.Fatal("a renewed certificate did not roll the pods")
		}
		f.rollPods()
		renewals++
	}
	if renewals < 4 {
		t.Fatalf("%d renewals before the CA fell due", renewals)
	}

	// the CA falls due: a new CA in the bundle, the certificate stays
	caDue := f.instance().Status.CANotAfter.Add(-rb)
	old := f.tlsSecret()
	_, now, hash := step(caDue)
	f.get("rot-api-ca", caS)
	if bytes.Equal(caS.Data[certKey], firstCA) || !bytes.Equal(now[certKey], old[certKey]) || countCerts(t, now[bundleKey]) != 2 {
		t.Fatal("the CA step did not add a new CA beside the old one and keep the certificate")
	}
	if f.sts().Spec.Template.Annotations[hashAnnot] == hash || f.sts().Spec.Template.Annotations[bundleAnnot] != bundleSum(now[bundleKey]) {
		t.Fatal("the new bundle did not roll the pods")
	}
	// the pods have not rolled yet: the certificate waits
	res, now2, _ := step(caDue.Add(time.Minute))
	if !bytes.Equal(now2[certKey], old[certKey]) {
		t.Fatal("the certificate signed by the new CA replaced the old one before the pods trusted the new CA")
	}
	if st := f.instance().Status; !strings.Contains(st.CertificateRotation, "waiting for every pod") {
		t.Fatalf("status certificateRotation %q", st.CertificateRotation)
	}
	if res.RequeueAfter != testWait {
		t.Fatalf("a waiting rotation: requeue after %v, want %v", res.RequeueAfter, testWait)
	}
	// two pods rolled, one did not: still waiting
	f.rollPods()
	p := &corev1.Pod{}
	f.get("rot-2", p)
	p.Annotations = map[string]string{hashAnnot: "old", bundleAnnot: bundleSum(old[bundleKey])}
	if err := k8sClient.Update(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, now3, _ := step(caDue.Add(2 * time.Minute)); !bytes.Equal(now3[certKey], old[certKey]) {
		t.Fatal("the certificate was replaced while rot-2 ran with the old bundle")
	}
	// every pod runs with the new bundle and is ready
	f.rollPods()
	_, now4, hash := step(caDue.Add(3 * time.Minute))
	newCA, err := parseCerts(caS.Data[certKey])
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCerts(now4[certKey])
	if err != nil {
		t.Fatal(err)
	}
	if cert[0].CheckSignatureFrom(newCA[0]) != nil {
		t.Fatal("the certificate is not signed by the new CA once every pod trusts it")
	}
	if f.sts().Spec.Template.Annotations[hashAnnot] == hash || f.instance().Status.CertificateRotation != "" {
		t.Fatalf("the new certificate did not roll the pods, or status still waits: %q", f.instance().Status.CertificateRotation)
	}
	// the operator's client trusts the bundle: old and new certificates
	f.raft.mu.Lock()
	lastCA := f.raft.caPEM
	f.raft.mu.Unlock()
	for _, d := range []map[string][]byte{old, now4} {
		if err := verifies(t, f.instance(), d, map[string][]byte{bundleKey: lastCA}, clk.Now()); err != nil {
			t.Fatalf("the operator's client refuses a pod's certificate: %v", err)
		}
	}
}

// A StatefulSet made with podManagementPolicy OrderedReady (by an older
// operator; the field is immutable) is deleted with its pods orphaned — not
// with them — and made again with Parallel once it is gone; the pod keeps
// running throughout.
func TestOrderedReadyStatefulSetReplaced(t *testing.T) {
	f := newFixture(t, "old")
	in := f.sample()
	in.Spec.Replicas = ptr.To[int32](1)
	f.bringUp(in, 1)
	// what an older operator left: the same StatefulSet, OrderedReady
	sts := f.sts()
	if err := k8sClient.Delete(f.ctx, sts); err != nil {
		t.Fatal(err)
	}
	old := sts.DeepCopy()
	old.ResourceVersion, old.UID, old.CreationTimestamp, old.Status = "", "", metav1.Time{}, appsv1.StatefulSetStatus{}
	old.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	if err := k8sClient.Create(f.ctx, old); err != nil {
		t.Fatal(err)
	}
	f.update(func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](3) })
	if res := f.reconcile(); res.RequeueAfter != time.Second {
		t.Fatalf("replacing: requeue %v", res.RequeueAfter)
	}
	f.wantCond(condition.DeploymentReadyCondition, corev1.ConditionFalse, condition.RequestedReason, "OrderedReady → Parallel")
	got := f.sts()
	if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, metav1.FinalizerOrphanDependents) {
		t.Fatalf("the old StatefulSet is not being deleted with its pods orphaned: deletion %v finalizers %v", got.DeletionTimestamp, got.Finalizers)
	}
	if joins, _ := f.raft.calls(); len(joins) != 0 {
		t.Fatalf("joined %v while the StatefulSet was being replaced", joins)
	}
	f.reconcile() // still going: no second delete, no error
	// the garbage collector orphans the pods and removes the finalizer
	got.Finalizers = nil
	if err := k8sClient.Update(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if n := f.sts(); n.Spec.PodManagementPolicy != appsv1.ParallelPodManagement || *n.Spec.Replicas != 3 || n.UID == got.UID {
		t.Fatalf("new StatefulSet: policy %s replicas %d (same object %v)", n.Spec.PodManagementPolicy, *n.Spec.Replicas, n.UID == got.UID)
	}
	f.get("old-0", &corev1.Pod{})
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionFalse, ReasonMembership, "waiting for pod old-1 to start")
}

// A generated TLS Secret that cannot be read (edited by hand) is bad
// input: InputReady=False InvalidSecret naming the key and how to recover,
// no requeue (the Secret is watched), nothing changed; deleting it makes
// new ones.
func TestUnreadableGeneratedSecret(t *testing.T) {
	f := newFixture(t, "us")
	if err := k8sClient.Create(f.ctx, f.sample()); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	hash := f.sts().Spec.Template.Annotations[hashAnnot]
	s := &corev1.Secret{}
	f.get("us-api-tls", s)
	s.Data[certKey] = []byte("not a certificate")
	if err := k8sClient.Update(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	if res := f.reconcile(); res != (ctrl.Result{}) {
		t.Fatalf("unreadable Secret: result %+v, want no requeue", res)
	}
	f.wantCond(condition.InputReadyCondition, corev1.ConditionFalse, ReasonInvalidSecret, "Secret us-api-tls (generated): tls.crt: no PEM certificate; delete it")
	f.wantCond(condition.ReadyCondition, corev1.ConditionFalse, ReasonInvalidSecret, "tls.crt")
	f.get("us-api-tls", s)
	if string(s.Data[certKey]) != "not a certificate" || f.sts().Spec.Template.Annotations[hashAnnot] != hash {
		t.Fatal("the reconcile changed the Secret or the StatefulSet")
	}
	if err := k8sClient.Delete(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.wantCond(condition.InputReadyCondition, corev1.ConditionTrue, "", "")
	f.get("us-api-tls", s)
	if _, err := parseCerts(s.Data[certKey]); err != nil {
		t.Fatalf("after the delete: %v", err)
	}
}

// wantPDB checks the instance's PodDisruptionBudget (-1: field unset).
func (f *fixture) wantPDB(minAvailable, maxUnavailable int) {
	f.t.Helper()
	b := &policyv1.PodDisruptionBudget{}
	f.get(f.key.Name, b)
	if intOrUnset(b.Spec.MinAvailable) != minAvailable || intOrUnset(b.Spec.MaxUnavailable) != maxUnavailable {
		f.t.Fatalf("PDB minAvailable %v maxUnavailable %v, want %d %d (-1: unset)", b.Spec.MinAvailable, b.Spec.MaxUnavailable, minAvailable, maxUnavailable)
	}
	if b.Spec.UnhealthyPodEvictionPolicy == nil || *b.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
		f.t.Fatalf("PDB unhealthyPodEvictionPolicy %v", b.Spec.UnhealthyPodEvictionPolicy)
	}
}

// One replica: the budget lets a drain evict its pod (minAvailable 1 would
// hang every drain of its node); 1 → 3 → 1: a quorum of the running
// replicas, and back to maxUnavailable 1 once the members left (the field
// of the other form is removed, or the API server would refuse both).
func TestPDBFollowsReplicas(t *testing.T) {
	f := newFixture(t, "pdb")
	in := f.sample()
	in.Spec.Replicas = ptr.To[int32](1)
	if err := k8sClient.Create(f.ctx, in); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.wantPDB(-1, 1)
	f.simulatePod(0)
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", "1 voters")
	f.wantPDB(-1, 1)

	f.update(func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](3) })
	f.reconcile()
	f.wantPDB(2, -1)
	f.simulatePod(1)
	f.reconcile()
	f.simulatePod(2)
	f.reconcile()
	f.reconcile()
	f.wantCond(orchv1.QuorumReadyCondition, corev1.ConditionTrue, "", "3 voters")

	f.update(func(in *orchv1.ImsOrch) { in.Spec.Replicas = ptr.To[int32](1) })
	f.reconcile() // pdb-2 leaves; 3 replicas run
	f.wantPDB(2, -1)
	f.reconcile() // pdb-1 leaves; 2 replicas run: both needed
	f.wantPDB(2, -1)
	f.reconcile()
	if _, leaves := f.raft.calls(); !slices.Equal(leaves, []string{"pdb-2", "pdb-1"}) {
		t.Fatalf("leaves %v", leaves)
	}
	f.wantPDB(-1, 1)
	if n := *f.sts().Spec.Replicas; n != 1 {
		t.Fatalf("statefulset replicas %d, want 1", n)
	}
}

// Bad input: a missing Secret or a configuration the daemon refuses gives a
// condition with the reason; the reconcile waits (a fixed requeue for a
// missing object, none for an invalid config, whose fix comes as a watched
// change) instead of failing in a loop; nothing that runs is deleted or
// changed.
func TestBadInputConditionNoLoopNothingDeleted(t *testing.T) {
	f := newFixture(t, "bi")
	in := f.sample()
	in.Spec.CloudsSecret = "clouds"
	if err := k8sClient.Create(f.ctx, in); err != nil {
		t.Fatal(err)
	}
	if res := f.reconcile(); res.RequeueAfter != testWait {
		t.Fatalf("missing secret: requeue %v, want %v", res.RequeueAfter, testWait)
	}
	f.wantCond(condition.InputReadyCondition, corev1.ConditionFalse, ReasonMissingInput, "spec.cloudsSecret: Secret clouds not found")
	f.wantCond(condition.ReadyCondition, corev1.ConditionFalse, ReasonMissingInput, "Secret clouds not found")
	if err := k8sClient.Get(f.ctx, f.key, &appsv1.StatefulSet{}); !k8serrors.IsNotFound(err) {
		t.Fatalf("statefulset made before the inputs were there: %v", err)
	}
	clouds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "clouds", Namespace: f.ns}, Data: map[string][]byte{"other": []byte("x")}}
	if err := k8sClient.Create(f.ctx, clouds); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.wantCond(condition.InputReadyCondition, corev1.ConditionFalse, ReasonMissingInput, "has no key clouds.yaml")
	clouds.Data = map[string][]byte{cloudsKey: []byte("clouds: {}\n")}
	if err := k8sClient.Update(f.ctx, clouds); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.wantCond(condition.InputReadyCondition, corev1.ConditionTrue, "", "")
	sts := f.sts()
	mounted := false
	for _, v := range sts.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.Secret != nil && v.Secret.SecretName == "clouds")
	}
	if !mounted {
		t.Fatal("clouds Secret not mounted")
	}
	hash := sts.Spec.Template.Annotations[hashAnnot]
	cm := &corev1.ConfigMap{}
	f.get("bi-config", cm)
	good := cm.Data[configKey]

	// a configuration the daemon refuses
	f.update(func(in *orchv1.ImsOrch) {
		in.Spec.Config.Inline = strings.Replace(in.Spec.Config.Inline, "kind: sim", "kind: nova", 1)
	})
	if res := f.reconcile(); res != (ctrl.Result{}) {
		t.Fatalf("invalid config: result %+v, want no requeue", res)
	}
	f.wantCond(condition.ServiceConfigReadyCondition, corev1.ConditionFalse, ReasonInvalidConfig, `driver.kind: "nova" must be sim, fake, local or openstack`)
	f.wantCond(condition.ReadyCondition, corev1.ConditionFalse, ReasonInvalidConfig, "driver.kind")
	f.get("bi-config", cm)
	if cm.Data[configKey] != good || f.sts().Spec.Template.Annotations[hashAnnot] != hash {
		t.Fatal("an invalid configuration changed the running ConfigMap or StatefulSet")
	}
	f.update(func(in *orchv1.ImsOrch) { in.Spec.Config.Inline = "{not yaml" })
	f.reconcile()
	f.wantCond(condition.ServiceConfigReadyCondition, corev1.ConditionFalse, ReasonInvalidConfig, "not a YAML mapping")

	// the referenced Secret disappears: everything made stays
	if err := k8sClient.Delete(f.ctx, clouds); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.wantCond(condition.InputReadyCondition, corev1.ConditionFalse, ReasonMissingInput, "Secret clouds not found")
	for _, o := range []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}} {
		f.get("bi", o)
	}
	f.get("bi-peers", &corev1.Service{})
	f.get("bi-config", cm)
	f.get("bi-api-tls", &corev1.Secret{})
	f.get("bi-api-token", &corev1.Secret{})
}

// A ServiceMonitor appears once Prometheus Operator's CRD is installed, and
// not before; once the CRD is removed again the reconcile goes on without it
// (a client that still maps the kind would fail every reconcile with
// NotFound).
func TestServiceMonitorWhenCRDExists(t *testing.T) {
	f := newFixture(t, "sm")
	if err := k8sClient.Create(f.ctx, f.sample()); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	crds, err := envtest.InstallCRDs(testCfg, envtest.CRDInstallOptions{Paths: []string{"testdata/servicemonitor-crd.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 1 {
		t.Fatalf("installed %d CRDs", len(crds))
	}
	uninstalled := false
	uninstall := func() {
		if !uninstalled {
			uninstalled = true
			if err := envtest.UninstallCRDs(testCfg, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crds[0]}}); err != nil {
				t.Error(err)
			}
		}
	}
	defer uninstall()
	sm := &unstructured.Unstructured{}
	sm.SetGroupVersionKind(serviceMonitorGVK)
	f.reconcile()
	if err := k8sClient.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "sm"}, sm); err != nil {
		t.Fatal(err)
	}
	wantOwned(t, sm, f.instance())
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["path"] != "/metrics" {
		t.Fatalf("endpoints %v", eps)
	}

	// Prometheus Operator uninstalled: the API server stops serving the
	// kind (asynchronously: poll its discovery with a bounded deadline),
	// then the next reconcile succeeds without a ServiceMonitor.
	uninstall()
	deadline := time.Now().Add(30 * time.Second)
	for {
		served, err := f.r.serviceMonitorServed()
		if err != nil {
			t.Fatal(err)
		}
		if !served {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ServiceMonitor still served 30 s after its CRD was deleted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.reconcile()
	f.wantCond(condition.CreateServiceReadyCondition, corev1.ConditionTrue, "", "")
}

func yamlToObject(b []byte, obj any) error {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return err
	}
	return runtimeFromMap(m, obj)
}
