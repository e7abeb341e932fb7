package controller

import (
	"k8s.io/apimachinery/pkg/runtime"
)

func runtimeFromMap(m map[string]any, obj any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(m, obj)
}
