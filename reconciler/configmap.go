package reconciler

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// readConfigMap returns the data of a ConfigMap; found is false when it does not exist.
func readConfigMap(ctx context.Context, client dynamic.Interface, namespace, name string) (map[string]string, bool, error) {
	u, err := client.Resource(configMapsGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read configmap %s/%s: %w", namespace, name, err)
	}
	d, _, err := unstructured.NestedStringMap(u.Object, "data")
	if err != nil {
		return nil, true, fmt.Errorf("read configmap %s/%s: %w", namespace, name, err)
	}
	return d, true, nil
}

// applyConfigMap creates or replaces a ConfigMap of the reconciler's own state with
// server-side apply; keys missing from data are removed.
func applyConfigMap(ctx context.Context, client dynamic.Interface, namespace, name, component string, data map[string]string) (*unstructured.Unstructured, error) {
	d := make(map[string]any, len(data))
	for k, v := range data {
		d[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":      name,
			"namespace": namespace,
			"labels": map[string]any{
				labelManagedBy: FieldManager,
				labelComponent: component,
			},
		},
		"data": d,
	}}
	out, err := client.Resource(configMapsGVR).Namespace(namespace).Apply(ctx, name, u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("write configmap %s/%s: %w", namespace, name, err)
	}
	return out, nil
}
