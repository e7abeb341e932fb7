// Package v1beta1 holds the ImsOrch API: one ImsOrch object is one
// replicated ims-orch global controller (a raft cluster of 1, 3 or 5 pods)
// that deploy/operator runs in its namespace.
//
// +kubebuilder:object:generate=true
// +groupName=orch.ims-orch.io
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of ImsOrch.
	GroupVersion = schema.GroupVersion{Group: "orch.ims-orch.io", Version: "v1beta1"}

	// SchemeBuilder registers the types of this group version (only
	// apimachinery: the API package stays light to import).
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ImsOrch{}, &ImsOrchList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
