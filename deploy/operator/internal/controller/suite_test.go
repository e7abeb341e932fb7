package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	orchv1 "github.com/ims-orch/ims-orch/deploy/operator/api/v1beta1"
)

// The envtest control plane: a real kube-apiserver and etcd, built by
// scripts/ci-envtest.sh into the folder KUBEBUILDER_ASSETS names. Started
// once for the package; each test works in its own namespace.
var (
	testScheme = runtime.NewScheme()
	testCfg    *rest.Config
	k8sClient  client.Client
	kclient    kubernetes.Interface
	envErr     error
)

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(orchv1.AddToScheme(testScheme))
	var env *envtest.Environment
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		envErr = fmt.Errorf("KUBEBUILDER_ASSETS is not set (scripts/ci-envtest.sh builds kube-apiserver and etcd and prints the folder)")
	} else {
		env = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
		}
		testCfg, envErr = env.Start()
		if envErr == nil {
			k8sClient, envErr = client.New(testCfg, client.Options{Scheme: testScheme})
		}
		if envErr == nil {
			kclient, envErr = kubernetes.NewForConfig(testCfg)
		}
	}
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "envtest stop:", err)
		}
	}
	os.Exit(code)
}

// needAPIServer skips a test without the envtest control plane, and fails
// it in CI (CI=true), where a missing install step must not pass silently.
func needAPIServer(t *testing.T) {
	t.Helper()
	if envErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("envtest control plane unavailable in CI: %v", envErr)
	}
	t.Skipf("envtest control plane unavailable: %v", envErr)
}
