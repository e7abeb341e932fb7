package controller

import (
	"bytes"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/openstack-k8s-operators/lib-common/modules/common/pdb"

	"github.com/ims-orch/ims-orch/controller/daemon"
	"github.com/ims-orch/ims-orch/controller/global"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// Paths inside the ims-orch container.
const (
	configDir    = "/etc/ims-orch/config"
	configFile   = configDir + "/config.yaml"
	tlsDir       = "/etc/ims-orch/tls"
	tokensDir    = "/etc/ims-orch/tokens"
	cloudsDir    = "/etc/openstack"
	raftDir      = "/var/lib/ims-orch/raft"
	raftVolume   = "raft"
	configKey    = "config.yaml"
	tokensKey    = "tokens.yaml"
	tokenKey     = "token"
	cloudsKey    = "clouds.yaml"
	maxReplicas  = 5
	hashAnnot    = "orch.ims-orch.io/config-hash"
	bundleAnnot  = "orch.ims-orch.io/ca-bundle"
	appLabel     = "app.kubernetes.io/name"
	instLabel    = "app.kubernetes.io/instance"
	appName      = "ims-orch"
	managedLabel = "app.kubernetes.io/managed-by"
	// the daemon's /healthz answers once its API serves (also while it
	// waits to be joined); /readyz only once it knows a raft leader and has
	// the replicated state (api.Backend.Ready)
	startedPath = "/healthz"
	readyPath   = "/readyz"
)

// Names of the objects an ImsOrch owns.
func peersService(name string) string  { return name + "-peers" }
func configMapName(name string) string { return name + "-config" }
func tlsSecretName(in *orchv1.ImsOrch) string {
	if in.Spec.TLSSecret != "" {
		return in.Spec.TLSSecret
	}
	return in.Name + "-api-tls"
}
func tokenSecretName(in *orchv1.ImsOrch) string {
	if in.Spec.TokenSecret != "" {
		return in.Spec.TokenSecret
	}
	return in.Name + "-api-token"
}

// podName is the StatefulSet pod (and raft node id) of ordinal i.
func podName(name string, i int) string { return name + "-" + strconv.Itoa(i) }

// podHost is pod i's stable DNS name in the headless Service.
func podHost(in *orchv1.ImsOrch, i int) string {
	return fmt.Sprintf("%s.%s.%s.svc", podName(in.Name, i), peersService(in.Name), in.Namespace)
}

// raftAddress is what pod i advertises and joins with.
func raftAddress(in *orchv1.ImsOrch, i int) string {
	return fmt.Sprintf("%s:%d", podHost(in, i), orchv1.RaftPort)
}

// endpoint is the client Service's API URL.
func endpoint(in *orchv1.ImsOrch) string {
	return fmt.Sprintf("https://%s.%s.svc:%d", in.Name, in.Namespace, orchv1.APIPort)
}

func labels(in *orchv1.ImsOrch) map[string]string {
	return map[string]string{appLabel: appName, instLabel: in.Name, managedLabel: "ims-orch-operator"}
}

func selector(in *orchv1.ImsOrch) map[string]string {
	return map[string]string{appLabel: appName, instLabel: in.Name}
}

// renderConfig merges the user's daemon configuration with the sections
// the operator owns (node, api) and checks the result with the daemon's own
// parser and the pods' identity flags, so a configuration the daemon would
// refuse never reaches a pod.
// The per-pod identity (node id, API URL, bootstrap) comes from flags.
func renderConfig(in *orchv1.ImsOrch, user string) (string, error) {
	doc := map[string]any{}
	if err := yaml.Unmarshal([]byte(user), &doc); err != nil {
		return "", fmt.Errorf("config: not a YAML mapping: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	if err := noProfileFiles(user); err != nil {
		return "", err
	}
	peers := make([]map[string]any, 0, maxReplicas)
	for i := range maxReplicas {
		peers = append(peers, map[string]any{"id": podName(in.Name, i),
			"api": fmt.Sprintf("https://%s:%d", podHost(in, i), orchv1.APIPort)})
	}
	doc["node"] = map[string]any{
		// replaced by --node-id in each pod; not a peer id, so the shared
		// file parses on its own
		"id":       in.Name,
		"raftBind": fmt.Sprintf("0.0.0.0:%d", orchv1.RaftPort),
		"raftDir":  raftDir,
		"peers":    peers,
		// raft on mutual TLS with the API's certificate: it names every
		// pod of the headless Service and allows client authentication
		"raftTLS": map[string]any{"cert": tlsDir + "/tls.crt", "key": tlsDir + "/tls.key", "ca": tlsDir + "/ca.crt"},
	}
	doc["api"] = map[string]any{
		"listen":     fmt.Sprintf("0.0.0.0:%d", orchv1.APIPort),
		"url":        endpoint(in),
		"tokensFile": tokensDir + "/" + tokensKey,
		"tls": map[string]any{"cert": tlsDir + "/tls.crt", "key": tlsDir + "/tls.key",
			"peerCA": tlsDir + "/ca.crt"},
	}
	if _, ok := doc["role"]; !ok {
		doc["role"] = map[string]any{"global": true}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	// as a pod reads it: serve parses the file, then applies the identity
	// flags (statefulSet's args; pod 0's here) and normalizes it again
	c, err := daemon.ParseConfig(buf.Bytes())
	if err == nil {
		err = c.ApplyIdentity(daemon.Identity{NodeID: podName(in.Name, 0),
			APIURL:        fmt.Sprintf("https://%s:%d", podHost(in, 0), orchv1.APIPort),
			BootstrapNode: podName(in.Name, 0)})
	}
	if err != nil {
		return "", fmt.Errorf("the daemon refuses the configuration: %w", err)
	}
	return buf.String(), nil
}

// noProfileFiles refuses a policy.declaredProfile datacenter that names a
// file: the pods mount no profile files (statefulSet's volumes), and the
// check here would read the path in the operator's own container. A
// configuration that does not decode is left to daemon.ParseConfig.
func noProfileFiles(user string) error {
	var c struct {
		Policy struct {
			DeclaredProfile *global.ProfileConfig `yaml:"declaredProfile"`
		} `yaml:"policy"`
	}
	if yaml.Unmarshal([]byte(user), &c) != nil || c.Policy.DeclaredProfile == nil {
		return nil
	}
	for i, dc := range c.Policy.DeclaredProfile.DCs {
		if dc.File != "" {
			return fmt.Errorf("config: policy.declaredProfile.dcs[%d].file %q: the operator's pods mount no profile files; under the operator give the day inline as rates (24 hourly values)", i, dc.File)
		}
	}
	return nil
}

// statefulSet renders the StatefulSet with replicas pods (the membership
// step decides the count), the config hash and the sum of the CA bundle the
// pods trust on the pod template.
func statefulSet(in *orchv1.ImsOrch, replicas int32, hash, caBundleSum string) *appsv1.StatefulSet {
	lb := labels(in)
	args := []string{"serve", "--config", configFile, "--log-format", "json",
		"--node-id", "$(POD_NAME)",
		"--api-url", fmt.Sprintf("https://$(POD_NAME).%s.%s.svc:%d", peersService(in.Name), in.Namespace, orchv1.APIPort),
		"--raft-advertise", fmt.Sprintf("$(POD_NAME).%s.%s.svc:%d", peersService(in.Name), in.Namespace, orchv1.RaftPort),
		"--bootstrap-node", podName(in.Name, 0),
	}
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: configDir, ReadOnly: true},
		{Name: "tls", MountPath: tlsDir, ReadOnly: true},
		{Name: "tokens", MountPath: tokensDir, ReadOnly: true},
		{Name: raftVolume, MountPath: raftDir},
	}
	vols := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: configMapName(in.Name)}}}},
		{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: tlsSecretName(in)}}},
		{Name: "tokens", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: tokenSecretName(in),
			Items: []corev1.KeyToPath{{Key: tokensKey, Path: tokensKey}}}}},
	}
	env := []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	if in.Spec.CloudsSecret != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "clouds", MountPath: cloudsDir, ReadOnly: true})
		vols = append(vols, corev1.Volume{Name: "clouds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: in.Spec.CloudsSecret, Items: []corev1.KeyToPath{{Key: cloudsKey, Path: cloudsKey}}}}})
		env = append(env, corev1.EnvVar{Name: "OS_CLIENT_CONFIG_FILE", Value: cloudsDir + "/" + cloudsKey})
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString("api"), Scheme: corev1.URISchemeHTTPS}},
			PeriodSeconds: period, TimeoutSeconds: 5, FailureThreshold: failures}
	}
	storage := resource.MustParse("1Gi")
	if in.Spec.Storage != nil {
		storage = *in.Spec.Storage
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: in.Namespace, Labels: lb},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: peersService(in.Name),
			Selector:    &metav1.LabelSelector{MatchLabels: selector(in)},
			// pods start together: ordinal 0 bootstraps, the others wait
			// and the operator joins them one at a time. Not OrderedReady:
			// a pod is ready only in a cluster with a leader (/readyz), so
			// after a quorum loss (-1 and -2 of 3 gone) -0 is not ready and
			// OrderedReady would never recreate -1: the quorum would never
			// come back. Updates still roll one pod at a time, from the top,
			// each once the one before is ready.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lb, Annotations: map[string]string{hashAnnot: hash, bundleAnnot: caBundleSum}},
				Spec: corev1.PodSpec{
					// a clean stop hands raft leadership over (ims-orch serve)
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), FSGroup: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:  appName,
						Image: in.Spec.Image,
						Args:  args,
						Env:   env,
						Ports: []corev1.ContainerPort{
							{Name: "api", ContainerPort: orchv1.APIPort, Protocol: corev1.ProtocolTCP},
							{Name: "raft", ContainerPort: orchv1.RaftPort, Protocol: corev1.ProtocolTCP},
						},
						// started = the API answers (/healthz): the operator
						// joins started pods to raft. ready = it can serve
						// (/readyz: a raft leader is known and the state is
						// loaded), so the client Service never routes to a
						// pod that waits to be joined (it would answer 503)
						// and a rolling update waits until the restarted
						// pod is back in the cluster before the next one.
						StartupProbe:   probe(startedPath, 2, 150),
						ReadinessProbe: probe(readyPath, 5, 2),
						LivenessProbe:  probe(startedPath, 10, 3),
						Resources:      in.Spec.Resources,
						VolumeMounts:   mounts,
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities:           &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
					Volumes:      vols,
					NodeSelector: in.Spec.NodeSelector,
					Tolerations:  in.Spec.Tolerations,
					Affinity:     in.Spec.Affinity,
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: raftVolume, Labels: lb},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: in.Spec.StorageClassName,
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: storage}},
				},
			}},
		},
	}
}

// headlessService gives every pod its stable DNS name for raft and the
// peers' API; not-ready pods are published so a joining pod is reachable.
func headlessService(in *orchv1.ImsOrch) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: peersService(in.Name), Namespace: in.Namespace, Labels: labels(in)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selector(in),
			Ports: []corev1.ServicePort{
				{Name: "raft", Port: orchv1.RaftPort, TargetPort: intstr.FromString("raft"), Protocol: corev1.ProtocolTCP},
				{Name: "api", Port: orchv1.APIPort, TargetPort: intstr.FromString("api"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// clientService serves the REST API and /metrics (a follower forwards
// writes to the leader).
func clientService(in *orchv1.ImsOrch) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: in.Namespace, Labels: labels(in)},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(in),
			Ports: []corev1.ServicePort{
				{Name: "api", Port: orchv1.APIPort, TargetPort: intstr.FromString("api"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// podDisruptionBudget lets voluntary disruptions (node drains) take pods
// only while a raft quorum of the StatefulSet's replicas stays ready
// (ready: in the cluster, /readyz): minAvailable = replicas/2 + 1, of the
// replicas that run now (a member that still has to leave counts). One
// replica has no quorum to keep, and minAvailable 1 would block every
// eviction, so every drain of its node would hang: maxUnavailable 1 lets
// the drain move it (the API is down until it runs again, as with any
// disruption of a single replica). A pod that is not ready may always be
// evicted: one that serves nothing (waiting to be joined, crash-looping)
// must not hold a drain up.
func podDisruptionBudget(in *orchv1.ImsOrch, replicas int32) *policyv1.PodDisruptionBudget {
	var b *policyv1.PodDisruptionBudget
	if replicas <= 1 {
		b = pdb.MaxUnavailablePodDisruptionBudget(in.Name, in.Namespace, intstr.FromInt32(1), selector(in))
	} else {
		b = pdb.MinAvailablePodDisruptionBudget(in.Name, in.Namespace, intstr.FromInt32(replicas/2+1), selector(in))
	}
	b.Labels = labels(in)
	b.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
	return b
}
