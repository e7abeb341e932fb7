// Package controller reconciles ImsOrch objects: it renders and checks the
// daemon configuration, keeps the Secrets, ConfigMap, Services,
// PodDisruptionBudget, StatefulSet (and a ServiceMonitor when Prometheus
// Operator's CRD exists) in place with lib-common's helpers, and changes the
// raft membership one member at a time through the daemon's join / leave.
package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/openstack-k8s-operators/lib-common/modules/common/condition"
	"github.com/openstack-k8s-operators/lib-common/modules/common/configmap"
	"github.com/openstack-k8s-operators/lib-common/modules/common/helper"
	"github.com/openstack-k8s-operators/lib-common/modules/common/pdb"
	"github.com/openstack-k8s-operators/lib-common/modules/common/secret"
	"github.com/openstack-k8s-operators/lib-common/modules/common/service"
	"github.com/openstack-k8s-operators/lib-common/modules/common/statefulset"
	"github.com/openstack-k8s-operators/lib-common/modules/common/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ims-orch/ims-orch/api"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// Reasons of the conditions this operator sets (besides lib-common's).
const (
	ReasonMissingInput  condition.Reason = "MissingInput"
	ReasonInvalidConfig condition.Reason = "InvalidConfig"
	ReasonDaemon        condition.Reason = "DaemonUnreachable"
	ReasonMembership    condition.Reason = "MembershipChanging"
	ReasonInvalidSecret condition.Reason = "InvalidSecret"
)

// Defaults of ImsOrchReconciler's waits.
const (
	DefaultWait   = 10 * time.Second
	DefaultResync = 30 * time.Second
)

// serviceMonitorGVK is Prometheus Operator's ServiceMonitor.
var serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}

// ImsOrchReconciler reconciles ImsOrch objects.
type ImsOrchReconciler struct {
	client.Client
	Kclient kubernetes.Interface
	Scheme  *runtime.Scheme
	// Dial reaches a pod's API (DialDaemon in the manager; a fake in tests).
	Dial DaemonDialer
	// Wait is how long to wait before looking again at something outside
	// the operator's hands: a missing Secret or ConfigMap, a pod not ready,
	// a daemon not answering (DefaultWait when 0).
	Wait time.Duration
	// Resync refreshes the status (leader, interval) of a ready instance
	// (DefaultResync when 0).
	Resync time.Duration
	// Now is the clock of generated certificates (time.Now when nil).
	Now func() time.Time
}

// +kubebuilder:rbac:groups=orch.ims-orch.io,resources=imsorches,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=orch.ims-orch.io,resources=imsorches/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete

// Reconcile brings one ImsOrch to its spec. Nothing is deleted here
// (but a StatefulSet of an older operator that cannot be patched, whose
// pods keep running): owned objects go with the ImsOrch through their owner
// references, and a bad input stops the reconcile before anything changes.
func (r *ImsOrchReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	log := ctrl.LoggerFrom(ctx)
	inst := &orchv1.ImsOrch{}
	if err := r.Get(ctx, req.NamespacedName, inst); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	h, err := helper.NewHelper(inst, r.Client, r.Kclient, r.Scheme, log)
	if err != nil {
		return ctrl.Result{}, err
	}
	saved := inst.Status.Conditions.DeepCopy()
	cl := condition.CreateList(
		condition.UnknownCondition(condition.ReadyCondition, condition.InitReason, condition.ReadyInitMessage),
		condition.UnknownCondition(condition.InputReadyCondition, condition.InitReason, condition.InputReadyInitMessage),
		condition.UnknownCondition(condition.ServiceConfigReadyCondition, condition.InitReason, condition.ServiceConfigReadyInitMessage),
		condition.UnknownCondition(condition.CreateServiceReadyCondition, condition.InitReason, condition.CreateServiceReadyInitMessage),
		condition.UnknownCondition(condition.DeploymentReadyCondition, condition.InitReason, condition.DeploymentReadyInitMessage),
		condition.UnknownCondition(orchv1.QuorumReadyCondition, condition.InitReason, "raft membership not checked yet"),
	)
	inst.Status.Conditions.Init(&cl)
	inst.Status.ObservedGeneration = inst.Generation
	inst.Status.Endpoint = endpoint(inst)
	defer func() {
		c := &inst.Status.Conditions
		if c.AllSubConditionIsTrue() {
			c.MarkTrue(condition.ReadyCondition, condition.ReadyMessage)
		} else {
			c.Set(c.Mirror(condition.ReadyCondition))
		}
		condition.RestoreLastTransitionTimes(c, saved)
		if perr := h.PatchInstance(ctx, inst); perr != nil {
			err = errors.Join(err, perr)
		}
	}()
	return r.reconcile(ctx, h, inst, log)
}

func (r *ImsOrchReconciler) wait() time.Duration {
	if r.Wait > 0 {
		return r.Wait
	}
	return DefaultWait
}

func (r *ImsOrchReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// missing marks InputReady false for a missing input and waits (a watch on
// ConfigMaps and Secrets also brings the instance back when it appears).
func (r *ImsOrchReconciler) missing(inst *orchv1.ImsOrch, format string, args ...any) (ctrl.Result, error) {
	inst.Status.Conditions.MarkFalse(condition.InputReadyCondition, ReasonMissingInput, condition.SeverityWarning, format, args...)
	return ctrl.Result{RequeueAfter: r.wait()}, nil
}

func (r *ImsOrchReconciler) reconcile(ctx context.Context, h *helper.Helper, inst *orchv1.ImsOrch, log logr.Logger) (res ctrl.Result, err error) {
	conds := &inst.Status.Conditions
	ns := inst.Namespace
	// renewAt, once known, is when a generated certificate falls due: look
	// again then at the latest
	var renewAt time.Time
	defer func() {
		if err != nil || renewAt.IsZero() {
			return
		}
		until := renewAt.Sub(r.now())
		if until <= 0 {
			until = r.wait() // a due step waits for the pods
		}
		if res.RequeueAfter == 0 || until < res.RequeueAfter {
			res.RequeueAfter = until
		}
	}()

	// ---- inputs: the configuration and the Secrets named in the spec ----
	user := inst.Spec.Config.Inline
	if ref := inst.Spec.Config.ConfigMapRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = configKey
		}
		cm := &corev1.ConfigMap{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, cm); err != nil {
			if k8serrors.IsNotFound(err) {
				return r.missing(inst, "spec.config.configMapRef: ConfigMap %s not found", ref.Name)
			}
			return ctrl.Result{}, err
		}
		v, ok := cm.Data[key]
		if !ok {
			return r.missing(inst, "spec.config.configMapRef: ConfigMap %s has no key %s", ref.Name, key)
		}
		user = v
	}
	hashes := map[string]string{}
	var caBundle []byte // ca.crt of the TLS Secret: the pods trust it
	needSecret := func(field, name string, keys ...string) (bool, error) {
		s := &corev1.Secret{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
			if k8serrors.IsNotFound(err) {
				_, err := r.missing(inst, "%s: Secret %s not found", field, name)
				return false, err
			}
			return false, err
		}
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				_, err := r.missing(inst, "%s: Secret %s has no key %s", field, name, k)
				return false, err
			}
		}
		if name == inst.Spec.TLSSecret {
			caBundle = s.Data[bundleKey]
		}
		hs, err := secret.Hash(s)
		hashes[name] = hs
		return err == nil, err
	}
	for _, s := range []struct {
		field, name string
		keys        []string
	}{
		{"spec.cloudsSecret", inst.Spec.CloudsSecret, []string{cloudsKey}},
		{"spec.tlsSecret", inst.Spec.TLSSecret, []string{"tls.crt", "tls.key", "ca.crt"}},
		{"spec.tokenSecret", inst.Spec.TokenSecret, []string{tokenKey, tokensKey}},
	} {
		if s.name == "" {
			continue
		}
		if ok, err := needSecret(s.field, s.name, s.keys...); !ok || err != nil {
			return ctrl.Result{RequeueAfter: r.wait()}, err
		}
	}
	conds.MarkTrue(condition.InputReadyCondition, condition.InputReadyMessage)

	// ---- the configuration, checked by the daemon's own parser ----
	rendered, err := renderConfig(inst, user)
	if err != nil {
		// the user must change the spec or the ConfigMap (both watched):
		// no requeue, and nothing already running is touched
		conds.MarkFalse(condition.ServiceConfigReadyCondition, ReasonInvalidConfig, condition.SeverityError, "%s", err.Error())
		log.Info("configuration refused", "err", err.Error())
		return ctrl.Result{}, nil
	}

	// ---- what runs: the StatefulSet and its pods ----
	cur := &appsv1.StatefulSet{}
	curReplicas := int32(0)
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: inst.Name}, cur); err == nil && cur.Spec.Replicas != nil {
		curReplicas = *cur.Spec.Replicas
	} else if err != nil && !k8serrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	pods, err := r.pods(ctx, inst)
	if err != nil {
		return ctrl.Result{}, err
	}

	// ---- generated Secrets (owned by the instance): the token is made
	// once, the CA and API certificate are renewed before they expire ----
	if inst.Spec.TLSSecret == "" {
		tlsS, rot, err := r.ensureCerts(ctx, inst, podsRunWith(pods, inst.Name, curReplicas), log)
		if err != nil {
			var bad *badSecretError
			if errors.As(err, &bad) {
				conds.MarkFalse(condition.InputReadyCondition, ReasonInvalidSecret, condition.SeverityError, "%s", err.Error())
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, err
		}
		caBundle, renewAt = tlsS.Data[bundleKey], rot.renewAt
		inst.Status.CANotAfter, inst.Status.CertificateNotAfter = timeOrNil(rot.caNotAfter), timeOrNil(rot.certNotAfter)
		inst.Status.CertificateRotation = rot.wait
		if hashes[tlsS.Name], err = secret.Hash(tlsS); err != nil {
			return ctrl.Result{}, err
		}
	}
	if inst.Spec.TokenSecret == "" {
		if err := r.ensureSecret(ctx, inst, tokenSecretName(inst), corev1.SecretTypeOpaque, generateToken, hashes); err != nil {
			return ctrl.Result{}, err
		}
	}
	cmHash, _, err := configmap.CreateOrPatchRawConfigMap(ctx, h, inst, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configMapName(inst.Name), Namespace: ns, Labels: labels(inst)},
		Data:       map[string]string{configKey: rendered},
	}, false)
	if err != nil {
		conds.MarkFalse(condition.ServiceConfigReadyCondition, condition.ErrorReason, condition.SeverityWarning,
			condition.ServiceConfigReadyErrorMessage, err.Error())
		return ctrl.Result{}, err
	}
	hashes["config"] = cmHash
	hash, err := util.ObjectHash(hashes)
	if err != nil {
		return ctrl.Result{}, err
	}
	inst.Status.ConfigHash = hash
	conds.MarkTrue(condition.ServiceConfigReadyCondition, condition.ServiceConfigReadyMessage)

	// ---- Services, ServiceMonitor ----
	for _, s := range []*corev1.Service{headlessService(inst), clientService(inst)} {
		svc, err := service.NewService(s, r.wait(), nil)
		if err == nil {
			_, err = svc.CreateOrPatch(ctx, h)
		}
		if err != nil {
			conds.MarkFalse(condition.CreateServiceReadyCondition, condition.ErrorReason, condition.SeverityWarning,
				condition.CreateServiceReadyErrorMessage, err.Error())
			return ctrl.Result{}, err
		}
	}
	if err := r.ensureServiceMonitor(ctx, inst); err != nil {
		conds.MarkFalse(condition.CreateServiceReadyCondition, condition.ErrorReason, condition.SeverityWarning,
			condition.CreateServiceReadyErrorMessage, err.Error())
		return ctrl.Result{}, err
	}

	// ---- raft membership as the daemon sees it ----
	desired := inst.DesiredReplicas()
	d, cluster, derr := r.findMember(ctx, inst, max(desired, curReplicas))
	replicas := max(desired, curReplicas) // membership unknown: never shrink
	var voters []string
	if derr == nil {
		voters = voterIDs(cluster)
		replicas = stsReplicas(inst.Name, desired, voters)
	}

	// the budget follows the replicas that run (a quorum of them)
	if _, err := pdb.NewPDB(podDisruptionBudget(inst, replicas), r.wait()).CreateOrPatch(ctx, h); err != nil {
		conds.MarkFalse(condition.CreateServiceReadyCondition, condition.ErrorReason, condition.SeverityWarning,
			condition.CreateServiceReadyErrorMessage, err.Error())
		return ctrl.Result{}, err
	}
	conds.MarkTrue(condition.CreateServiceReadyCondition, condition.CreateServiceReadyMessage)

	// ---- StatefulSet ----
	if cur.Name != "" && cur.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		// made OrderedReady by an older operator: the field cannot change,
		// so the StatefulSet is deleted with its pods left running
		// (orphaned) and made again once it is gone; the new one adopts
		// the pods (same name, selector and claims)
		if cur.DeletionTimestamp == nil {
			if err := r.Delete(ctx, cur, client.PropagationPolicy(metav1.DeletePropagationOrphan),
				client.Preconditions{UID: &cur.UID}); err != nil && !k8serrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			log.Info("StatefulSet made with podManagementPolicy OrderedReady: deleted, its pods keep running, to make it again with Parallel")
		}
		conds.MarkFalse(condition.DeploymentReadyCondition, condition.RequestedReason, condition.SeverityInfo,
			"replacing the StatefulSet (podManagementPolicy %s → Parallel); its pods keep running", cur.Spec.PodManagementPolicy)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	sts := statefulset.NewStatefulSet(statefulSet(inst, replicas, hash, bundleSum(caBundle)), r.wait())
	if _, err := sts.CreateOrPatch(ctx, h); err != nil {
		conds.MarkFalse(condition.DeploymentReadyCondition, condition.ErrorReason, condition.SeverityWarning,
			condition.DeploymentReadyErrorMessage, err.Error())
		return ctrl.Result{}, err
	}
	got := sts.GetStatefulSet()
	inst.Status.ReadyReplicas = got.Status.ReadyReplicas
	if statefulset.IsReady(got) {
		conds.MarkTrue(condition.DeploymentReadyCondition, condition.DeploymentReadyMessage)
	} else {
		conds.MarkFalse(condition.DeploymentReadyCondition, condition.RequestedReason, condition.SeverityInfo,
			"%d of %d pods ready", got.Status.ReadyReplicas, replicas)
	}

	if derr != nil {
		conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonDaemon, condition.SeverityWarning, "%s", derr.Error())
		return ctrl.Result{RequeueAfter: r.wait()}, nil
	}
	inst.Status.Members, inst.Status.Leader = voters, cluster.Leader
	if st, err := d.State(ctx); err == nil {
		inst.Status.Interval = st.Interval
	}

	next := nextStep(inst.Name, int(desired), voters, func(i int) bool { return started(pods[podName(inst.Name, i)]) })
	switch {
	case next.join >= 0:
		id := podName(inst.Name, next.join)
		mr, err := d.Join(ctx, api.JoinRequest{ID: id, RaftAddress: raftAddress(inst, next.join)})
		if err != nil {
			conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonMembership, condition.SeverityWarning, "join %s: %s", id, err.Error())
			return ctrl.Result{RequeueAfter: r.wait()}, nil
		}
		log.Info("raft member joined", "member", id)
		inst.Status.Members = voterIDs(mr.Cluster)
		conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonMembership, condition.SeverityInfo, "joined %s; %d of %d voters", id, len(inst.Status.Members), desired)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	case next.leave != "":
		mr, err := d.Leave(ctx, next.leave)
		if err != nil {
			conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonMembership, condition.SeverityWarning, "leave %s: %s", next.leave, err.Error())
			return ctrl.Result{RequeueAfter: r.wait()}, nil
		}
		log.Info("raft member left", "member", next.leave)
		inst.Status.Members = voterIDs(mr.Cluster)
		conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonMembership, condition.SeverityInfo, "removed %s; %d voters, want %d", next.leave, len(inst.Status.Members), desired)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	case next.wait != "":
		conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonMembership, condition.SeverityInfo, "%s", next.wait)
		return ctrl.Result{RequeueAfter: r.wait()}, nil
	}
	reach := 0
	for _, m := range cluster.Members {
		if m.Suffrage == api.SuffrageVoter && (m.Contact == api.ContactLeader || m.Contact == api.ContactOK) {
			reach++
		}
	}
	if reach < api.QuorumOf(len(voters)) {
		conds.MarkFalse(orchv1.QuorumReadyCondition, ReasonDaemon, condition.SeverityWarning,
			"the leader reaches %d of %d voters, a quorum is %d", reach, len(voters), api.QuorumOf(len(voters)))
		return ctrl.Result{RequeueAfter: r.wait()}, nil
	}
	conds.MarkTrue(orchv1.QuorumReadyCondition, "%d voters, leader %s", len(voters), cluster.Leader)
	resync := r.Resync
	if resync <= 0 {
		resync = DefaultResync
	}
	return ctrl.Result{RequeueAfter: resync}, nil
}

func voterIDs(c api.Cluster) []string {
	ids := []string{}
	for _, m := range c.Members {
		if m.Suffrage == api.SuffrageVoter {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// findMember asks the pods in ordinal order for the raft configuration and
// returns the first that knows a leader (a pod that waits to be joined
// knows none), with a client of it: joins and leaves sent there reach the
// leader (a follower forwards them).
func (r *ImsOrchReconciler) findMember(ctx context.Context, inst *orchv1.ImsOrch, pods int32) (Daemon, api.Cluster, error) {
	tok := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: tokenSecretName(inst)}, tok); err != nil {
		return nil, api.Cluster{}, fmt.Errorf("token Secret: %w", err)
	}
	tls := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: tlsSecretName(inst)}, tls); err != nil {
		return nil, api.Cluster{}, fmt.Errorf("TLS Secret: %w", err)
	}
	var errs []error
	for i := range int(pods) {
		url := fmt.Sprintf("https://%s:%d", podHost(inst, i), orchv1.APIPort)
		d, err := r.Dial(url, string(tok.Data[tokenKey]), tls.Data["ca.crt"])
		if err != nil {
			return nil, api.Cluster{}, err
		}
		c, err := d.Cluster(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", podName(inst.Name, i), err))
			continue
		}
		if c.Leader == "" {
			errs = append(errs, fmt.Errorf("%s: no leader known", podName(inst.Name, i)))
			continue
		}
		return d, c, nil
	}
	if len(errs) == 0 {
		return nil, api.Cluster{}, errors.New("no pod yet")
	}
	return nil, api.Cluster{}, fmt.Errorf("no pod answers with a raft leader: %w", errors.Join(errs...))
}

// pods are the instance's pods by name.
func (r *ImsOrchReconciler) pods(ctx context.Context, inst *orchv1.ImsOrch) (map[string]*corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := r.List(ctx, list, client.InNamespace(inst.Namespace), client.MatchingLabels(selector(inst))); err != nil {
		return nil, err
	}
	pods := make(map[string]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[list.Items[i].Name] = &list.Items[i]
	}
	return pods, nil
}

// started reports whether the ims-orch container of p passed its startup
// probe (its API answers /healthz) and p is not being deleted: it can be
// joined. Readiness is no answer: a pod becomes ready (/readyz) only once
// it is in the raft cluster.
func started(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == appName {
			return ptr.Deref(cs.Started, false)
		}
	}
	return false
}

// ready reports whether p's Ready condition is true (it serves: /readyz).
func ready(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// caSecretName is the generated CA's Secret (never mounted in a pod).
func caSecretName(in *orchv1.ImsOrch) string { return in.Name + "-api-ca" }

// badSecretError is a generated Secret the operator cannot read.
type badSecretError struct {
	name string
	err  error
}

func (e *badSecretError) Error() string {
	return fmt.Sprintf("Secret %s (generated): %v; delete it to have a new CA and certificate generated", e.name, e.err)
}

func (e *badSecretError) Unwrap() error { return e.err }

// ensureCerts creates the generated CA and TLS Secrets, or takes the next
// step of their rotation when one falls due (rotateCerts); podsTrust says
// whether every pod runs with, and is ready with, the CA bundle of the
// given sum. It returns the TLS Secret as stored.
func (r *ImsOrchReconciler) ensureCerts(ctx context.Context, inst *orchv1.ImsOrch, podsTrust func(bundleSum string) bool,
	log logr.Logger) (*corev1.Secret, rotation, error) {
	caS, err := r.getSecret(ctx, inst, caSecretName(inst))
	if err != nil {
		return nil, rotation{}, err
	}
	tlsS, err := r.getSecret(ctx, inst, tlsSecretName(inst))
	if err != nil {
		return nil, rotation{}, err
	}
	var caData, tlsData map[string][]byte
	trusted := true
	if caS != nil {
		caData = caS.Data
	}
	if tlsS != nil {
		tlsData = tlsS.Data
		trusted = podsTrust(bundleSum(tlsS.Data[bundleKey]))
	}
	rot, err := rotateCerts(inst, caData, tlsData, r.now(), inst.RenewBefore(), trusted)
	if err != nil {
		return nil, rotation{}, &badSecretError{name: tlsSecretName(inst), err: err}
	}
	if rot.did != "" {
		log.Info("certificates: "+rot.did, "caNotAfter", rot.caNotAfter, "certificateNotAfter", rot.certNotAfter)
	}
	if rot.wait != "" {
		log.Info("certificates: " + rot.wait)
	}
	// the CA first: should the TLS Secret's write fail, the next reconcile
	// finds a CA the bundle lacks and adds it
	if rot.caData != nil {
		if _, err := r.writeSecret(ctx, inst, caS, caSecretName(inst), corev1.SecretTypeTLS, rot.caData); err != nil {
			return nil, rotation{}, err
		}
	}
	if rot.tlsData != nil {
		if tlsS, err = r.writeSecret(ctx, inst, tlsS, tlsSecretName(inst), corev1.SecretTypeTLS, rot.tlsData); err != nil {
			return nil, rotation{}, err
		}
	}
	return tlsS, rot, nil
}

// getSecret reads Secret name of inst's namespace (nil when there is none).
func (r *ImsOrchReconciler) getSecret(ctx context.Context, inst *orchv1.ImsOrch, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: name}, s)
	if k8serrors.IsNotFound(err) {
		return nil, nil
	}
	return s, err
}

// writeSecret is the one write path of the generated Secrets: it creates
// Secret name of type typ with data, owned by inst (cur nil), or replaces
// cur's data.
func (r *ImsOrchReconciler) writeSecret(ctx context.Context, inst *orchv1.ImsOrch, cur *corev1.Secret, name string,
	typ corev1.SecretType, data map[string][]byte) (*corev1.Secret, error) {
	if cur == nil {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: inst.Namespace, Labels: labels(inst)},
			Type: typ, Data: data}
		if err := controllerutil.SetControllerReference(inst, s, r.Scheme); err != nil {
			return nil, err
		}
		return s, r.Create(ctx, s)
	}
	cur.Data = data
	return cur, r.Update(ctx, cur)
}

// podsRunWith returns whether each of the StatefulSet's replicas pods runs
// the template made for a CA bundle of the given sum and is ready.
func podsRunWith(pods map[string]*corev1.Pod, name string, replicas int32) func(bundleSum string) bool {
	return func(sum string) bool {
		for i := range int(replicas) {
			p := pods[podName(name, i)]
			if p == nil || p.Annotations[bundleAnnot] != sum || !ready(p) {
				return false
			}
		}
		return true
	}
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t}
}

// ensureSecret creates a generated Secret when it does not exist (through
// writeSecret); an existing one is kept as it is (its token is in use).
func (r *ImsOrchReconciler) ensureSecret(ctx context.Context, inst *orchv1.ImsOrch, name string, typ corev1.SecretType,
	gen func() (map[string][]byte, error), hashes map[string]string) error {
	s, err := r.getSecret(ctx, inst, name)
	if err != nil {
		return err
	}
	if s == nil {
		data, err := gen()
		if err != nil {
			return err
		}
		if s, err = r.writeSecret(ctx, inst, nil, name, typ, data); err != nil {
			return err
		}
	}
	hs, err := secret.Hash(s)
	hashes[name] = hs
	return err
}

// ensureServiceMonitor creates a ServiceMonitor for /metrics when Prometheus
// Operator's CRD is installed, and does nothing otherwise.
func (r *ImsOrchReconciler) ensureServiceMonitor(ctx context.Context, inst *orchv1.ImsOrch) error {
	if ok, err := r.serviceMonitorServed(); !ok || err != nil {
		return err
	}
	sm := &unstructured.Unstructured{}
	sm.SetGroupVersionKind(serviceMonitorGVK)
	sm.SetName(inst.Name)
	sm.SetNamespace(inst.Namespace)
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, sm, func() error {
		sm.SetLabels(labels(inst))
		spec := map[string]any{
			"selector": map[string]any{"matchLabels": toAny(selector(inst))},
			"endpoints": []any{map[string]any{
				"port": "api", "path": "/metrics", "scheme": "https",
				"tlsConfig": map[string]any{
					"ca":         map[string]any{"secret": map[string]any{"name": tlsSecretName(inst), "key": "ca.crt"}},
					"serverName": fmt.Sprintf("%s.%s.svc", inst.Name, inst.Namespace),
				},
			}},
		}
		if err := unstructured.SetNestedField(sm.Object, spec, "spec"); err != nil {
			return err
		}
		return controllerutil.SetControllerReference(inst, sm, r.Scheme)
	})
	return err
}

// serviceMonitorServed asks the API server's discovery whether it serves
// ServiceMonitors now. The client's REST mapper is no answer: it keeps a
// kind it once found after its CRD is deleted (every create would then
// fail with NotFound until the operator restarts).
func (r *ImsOrchReconciler) serviceMonitorServed() (bool, error) {
	list, err := r.Kclient.Discovery().ServerResourcesForGroupVersion(serviceMonitorGVK.GroupVersion().String())
	if err != nil {
		if k8serrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("discovery of %s: %w", serviceMonitorGVK.GroupVersion(), err)
	}
	for _, res := range list.APIResources {
		if res.Kind == serviceMonitorGVK.Kind {
			return true, nil
		}
	}
	return false, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SetupWithManager registers the controller: it owns what it creates,
// follows its pods' readiness, and the ConfigMaps and Secrets an ImsOrch
// names.
func (r *ImsOrchReconciler) SetupWithManager(mgr ctrl.Manager) error {
	byInstanceLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if o.GetLabels()[appLabel] != appName || o.GetLabels()[instLabel] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetLabels()[instLabel]}}}
	})
	byReference := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &orchv1.ImsOrchList{}
		if err := r.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, in := range list.Items {
			s := in.Spec
			n := o.GetName()
			if (s.Config.ConfigMapRef != nil && s.Config.ConfigMapRef.Name == n) || s.CloudsSecret == n || s.TLSSecret == n || s.TokenSecret == n {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: in.Namespace, Name: in.Name}})
			}
		}
		return reqs
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&orchv1.ImsOrch{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Pod{}, byInstanceLabel).
		Watches(&corev1.ConfigMap{}, byReference).
		Watches(&corev1.Secret{}, byReference).
		Named("imsorch").
		Complete(r)
}
