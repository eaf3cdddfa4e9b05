package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// MirrorFieldManager is the field manager of the GitSources mirrored from the configuration
// file.
const MirrorFieldManager = FieldManager + "-config"

var (
	_ manager.Runnable               = (*ConfigMirror)(nil)
	_ manager.LeaderElectionRunnable = (*ConfigMirror)(nil)
)

// ConfigMirror keeps a GitSource, labelled driftless.dev/from-config, for every source of the
// configuration file, which is deprecated in favour of GitSource objects and accepted for one
// release: it creates and updates them, deletes the labelled ones whose source left the
// configuration (their objects stay in place, as when a GitSource is deleted), and never
// touches a GitSource without the label. Run it on the leader with [ConfigMirror.Start].
type ConfigMirror struct {
	client dynamic.Interface

	mu      sync.Mutex
	cfg     *v1alpha1.DriftlessConfig
	started context.Context
}

// NewConfigMirror returns the mirror of cfg's sources into GitSources in cfg's reconciler
// namespace.
func NewConfigMirror(client dynamic.Interface, cfg *v1alpha1.DriftlessConfig) *ConfigMirror {
	return &ConfigMirror{client: client, cfg: cfg}
}

// Start mirrors the configuration's sources, then again on every [ConfigMirror.SetConfig],
// until ctx is done.
func (m *ConfigMirror) Start(ctx context.Context) error {
	m.mu.Lock()
	m.started = ctx
	cfg := m.cfg
	m.mu.Unlock()
	if err := m.mirror(ctx, cfg); err != nil {
		crlog.FromContext(ctx).Error(err, "cannot mirror the configuration's sources into GitSources")
	}
	<-ctx.Done()
	m.mu.Lock()
	m.started = nil
	m.mu.Unlock()
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader writes.
func (m *ConfigMirror) NeedLeaderElection() bool { return true }

// SetConfig mirrors cfg's sources from now on, and at once when the mirror runs.
func (m *ConfigMirror) SetConfig(cfg *v1alpha1.DriftlessConfig) error {
	m.mu.Lock()
	m.cfg = cfg
	ctx := m.started
	m.mu.Unlock()
	if ctx == nil {
		return nil
	}
	return m.mirror(ctx, cfg)
}

// mirror makes the labelled GitSources in cfg's namespace the mirrors of cfg's sources.
func (m *ConfigMirror) mirror(ctx context.Context, cfg *v1alpha1.DriftlessConfig) error {
	log := crlog.FromContext(ctx)
	ns := cfg.Reconciler.ServiceAccount.Namespace
	res := m.client.Resource(v1alpha1.GitSourceGVR).Namespace(ns)
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list gitsources in %s: %w", ns, err)
	}
	existing := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		existing[list.Items[i].GetName()] = &list.Items[i]
	}
	var errs []error
	want := map[string]bool{}
	for _, src := range cfg.Sources {
		want[src.Name] = true
		if u := existing[src.Name]; u != nil && u.GetLabels()[v1alpha1.LabelFromConfig] != "true" {
			log.Info("source of the configuration file not mirrored: a GitSource of the same name exists that does not come from the configuration; it wins", "source", src.Name)
			continue
		}
		gs := v1alpha1.GitSourceForSource(src, ns)
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gs)
		if err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", src.Name, err))
			continue
		}
		delete(obj, "status")
		if _, err := res.Apply(ctx, src.Name, &unstructured.Unstructured{Object: obj}, metav1.ApplyOptions{FieldManager: MirrorFieldManager, Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("mirror source %s into gitsource %s/%s: %w", src.Name, ns, src.Name, err))
			continue
		}
		log.Info("DEPRECATED: sources in the configuration file are mirrored into GitSource objects for one more release; move this one to a GitSource", "source", src.Name, "gitsource", ns+"/"+src.Name)
	}
	for name, u := range existing {
		if want[name] || u.GetLabels()[v1alpha1.LabelFromConfig] != "true" {
			continue
		}
		if err := res.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete gitsource %s/%s of a source removed from the configuration: %w", ns, name, err))
			continue
		}
		log.Info("deleted the GitSource of a source removed from the configuration file; its objects stay in place", "source", name)
	}
	return errors.Join(errs...)
}
