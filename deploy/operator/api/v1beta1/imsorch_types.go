package v1beta1

import (
	"time"

	"github.com/openstack-k8s-operators/lib-common/modules/common/condition"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultCertRenewBefore is spec.certRenewBefore's default.
const DefaultCertRenewBefore = 720 * time.Hour

// Ports of the ims-orch pods.
const (
	// APIPort serves the REST API and /metrics (HTTPS).
	APIPort int32 = 8443
	// RaftPort carries raft between the replicas.
	RaftPort int32 = 7000
)

// QuorumReadyCondition is True when the raft voters are the desired
// replicas and a quorum of them answers the leader.
const QuorumReadyCondition condition.Type = "QuorumReady"

// ImsOrchSpec is what the operator of the telco cloud decides.
//
// +kubebuilder:validation:XValidation:rule="has(self.config.inline) != has(self.config.configMapRef)",message="config: set exactly one of inline and configMapRef"
type ImsOrchSpec struct {
	// Replicas of the global controller: the raft voters. 1, 3 or 5 — an
	// even count tolerates no more failed voters than the odd count below
	// it and needs a larger quorum.
	// +kubebuilder:default=3
	// +kubebuilder:validation:XValidation:rule="self == 1 || self == 3 || self == 5",message="replicas must be 1, 3 or 5 (raft needs an odd number of voters: 2 tolerates no more failures than 1, 4 no more than 3)"
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image of ims-orch (deploy/image/Dockerfile builds one).
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`

	// Config is the daemon configuration (topology, policy, driver, role,
	// traffic: `ims-orch serve --print-default-config` shows one). The
	// operator owns its node and api sections and overwrites them.
	Config ConfigSource `json:"config"`

	// CloudsSecret names a Secret whose key clouds.yaml is mounted at
	// /etc/openstack/clouds.yaml (OS_CLIENT_CONFIG_FILE) for the OpenStack
	// driver.
	// +optional
	CloudsSecret string `json:"cloudsSecret,omitempty"`

	// TLSSecret names a kubernetes.io/tls Secret (tls.crt, tls.key and
	// ca.crt) for the API. Empty: the operator generates
	// <name>-api-tls with its own CA, once.
	// +optional
	TLSSecret string `json:"tlsSecret,omitempty"`

	// CertRenewBefore is how long before the generated CA or API
	// certificate expires the operator replaces it (the generated TLS
	// Secret only: spec.tlsSecret empty). The CA is valid for 5 years, the
	// API certificate for 1 year and never beyond its CA. A new CA is first
	// added to the pods' trusted bundle and rolled out to every pod; only
	// then does a certificate it signs replace the old one, so the pods
	// trust each other throughout the rolling updates.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h') && duration(self) <= duration('4380h')",message="certRenewBefore must be between 1h and 4380h (half the API certificate's 1-year validity)"
	// +optional
	CertRenewBefore *metav1.Duration `json:"certRenewBefore,omitempty"`

	// TokenSecret names a Secret with the API token file (tokens.yaml,
	// api.TokenFile) and an admin token (token) that the operator uses.
	// Empty: the operator generates <name>-api-token, once.
	// +optional
	TokenSecret string `json:"tokenSecret,omitempty"`

	// Resources of the ims-orch container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector, Tolerations and Affinity place the pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Storage is the size of each replica's raft log volume.
	// +kubebuilder:default="1Gi"
	// +optional
	Storage *resource.Quantity `json:"storage,omitempty"`
	// StorageClassName of the raft log volumes (the cluster's default when
	// empty).
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// ConfigSource holds the daemon configuration inline or names a ConfigMap.
type ConfigSource struct {
	// Inline is the configuration YAML.
	// +optional
	Inline string `json:"inline,omitempty"`
	// ConfigMapRef names a ConfigMap key holding the configuration YAML.
	// +optional
	ConfigMapRef *ConfigMapKey `json:"configMapRef,omitempty"`
}

// ConfigMapKey is a key of a ConfigMap in the ImsOrch's namespace.
type ConfigMapKey struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:default="config.yaml"
	// +optional
	Key string `json:"key,omitempty"`
}

// ImsOrchStatus is what the operator observed.
type ImsOrchStatus struct {
	// Conditions: Ready, InputReady (referenced ConfigMap and Secrets),
	// ServiceConfigReady (the daemon accepts the configuration),
	// CreateServiceReady, DeploymentReady, QuorumReady.
	// +optional
	Conditions condition.Conditions `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation these conditions are about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// ReadyReplicas of the StatefulSet.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Members are the raft voters (pod names) as the daemon reports them.
	// +optional
	Members []string `json:"members,omitempty"`
	// Leader is the raft leader's pod name.
	// +optional
	Leader string `json:"leader,omitempty"`
	// Interval is the current scaling interval of the global controller.
	// +optional
	Interval int64 `json:"interval,omitempty"`
	// Endpoint is the REST API's URL inside the cluster.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// CANotAfter is when the generated CA that signs new certificates
	// expires.
	// +optional
	CANotAfter *metav1.Time `json:"caNotAfter,omitempty"`
	// CertificateNotAfter is when the generated API certificate expires.
	// +optional
	CertificateNotAfter *metav1.Time `json:"certificateNotAfter,omitempty"`
	// CertificateRotation is the step of a certificate rotation that waits
	// (empty when none does).
	// +optional
	CertificateRotation string `json:"certificateRotation,omitempty"`
	// ConfigHash is the hash of the rendered configuration and Secrets
	// that the pods run with (their template's annotation).
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
}

// ImsOrch is one replicated ims-orch global controller.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=imso
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Leader",type=string,JSONPath=`.status.leader`
// +kubebuilder:printcolumn:name="Interval",type=integer,JSONPath=`.status.interval`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[0].status`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[0].message`
type ImsOrch struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImsOrchSpec   `json:"spec,omitempty"`
	Status ImsOrchStatus `json:"status,omitempty"`
}

// ImsOrchList is a list of ImsOrch.
//
// +kubebuilder:object:root=true
type ImsOrchList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImsOrch `json:"items"`
}

// DesiredReplicas is spec.replicas with its default.
func (in *ImsOrch) DesiredReplicas() int32 {
	if in.Spec.Replicas == nil {
		return 3
	}
	return *in.Spec.Replicas
}

// RenewBefore is spec.certRenewBefore with its default.
func (in *ImsOrch) RenewBefore() time.Duration {
	if in.Spec.CertRenewBefore == nil {
		return DefaultCertRenewBefore
	}
	return in.Spec.CertRenewBefore.Duration
}
