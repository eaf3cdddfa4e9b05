package installation

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// ErrNotInstalled reports that no configuration ConfigMap was found.
var ErrNotInstalled = errors.New("no installed Driftless configuration")

// ConfigMap returns the ConfigMap holding the installed DriftlessConfig in namespace: the one
// labelled driftless.dev/component=config (config/default's generator names it
// driftless-config-<hash>), or failing that the one named driftless-config. When kubectl apply
// left earlier generations of the labelled ConfigMap behind, it is the one a Deployment in the
// namespace mounts. Its errors say what was looked for; a missing configuration wraps
// [ErrNotInstalled].
func ConfigMap(ctx context.Context, kube kubernetes.Interface, namespace string) (*corev1.ConfigMap, error) {
	selector := v1alpha1.LabelComponent + "=" + v1alpha1.ComponentConfig
	list, err := kube.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list ConfigMaps labelled %s in namespace %s: %w", selector, namespace, err)
	}
	switch len(list.Items) {
	case 0:
		cm, err := kube.CoreV1().ConfigMaps(namespace).Get(ctx, v1alpha1.ConfigMapName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: no ConfigMap labelled %s or named %s in namespace %s", ErrNotInstalled, selector, v1alpha1.ConfigMapName, namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("read configmap %s/%s: %w", namespace, v1alpha1.ConfigMapName, err)
		}
		return cm, nil
	case 1:
		return &list.Items[0], nil
	}
	return mounted(ctx, kube, namespace, list.Items)
}

// mounted picks, of several configuration ConfigMaps, the one a Deployment in namespace mounts,
// directly or through a projected volume.
func mounted(ctx context.Context, kube kubernetes.Interface, namespace string, cms []corev1.ConfigMap) (*corev1.ConfigMap, error) {
	deploys, err := kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%d configuration ConfigMaps in namespace %s, and the Deployments that would say which is in use cannot be listed: %w", len(cms), namespace, err)
	}
	for _, d := range deploys.Items {
		for _, v := range d.Spec.Template.Spec.Volumes {
			var names []string
			if v.ConfigMap != nil {
				names = append(names, v.ConfigMap.Name)
			}
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.ConfigMap != nil {
						names = append(names, s.ConfigMap.Name)
					}
				}
			}
			for i := range cms {
				if slices.Contains(names, cms[i].Name) {
					return &cms[i], nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%d configuration ConfigMaps in namespace %s and no Deployment mounts any of them", len(cms), namespace)
}

// Config returns the installed DriftlessConfig, decoded strictly, and the ConfigMap it came from.
func Config(ctx context.Context, kube kubernetes.Interface, namespace string) (*v1alpha1.DriftlessConfig, *corev1.ConfigMap, error) {
	cm, err := ConfigMap(ctx, kube, namespace)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := v1alpha1.Decode([]byte(cm.Data[v1alpha1.ConfigMapKey]))
	if err != nil {
		return nil, cm, fmt.Errorf("configmap %s/%s, key %s: %w", namespace, cm.Name, v1alpha1.ConfigMapKey, err)
	}
	return cfg, cm, nil
}
