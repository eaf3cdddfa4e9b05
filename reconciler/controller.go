package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// FinalizerPruneOnDelete is the finalizer the controller keeps on a GitSource with
// spec.pruneOnDelete, so that it can prune the source's objects before the GitSource goes.
const FinalizerPruneOnDelete = v1alpha1.Group + "/prune-on-delete"

var _ reconcile.Reconciler = (*GitSourceController)(nil)

// GitSourceController is the controller of the GitSources in Driftless's own namespace: it
// turns each into a [SourceRun] (its Secrets resolved to files, its suspension read by the
// injected clock) and puts it into the [Set], which starts, restarts or stops the source's
// reconciler; it passes sync requests (driftless.dev/reconcile-requested-at) to the running
// reconciler, and prunes a deleted GitSource's objects when its spec asks.
//
// GitSources in other namespaces are ignored: a GitSource applies whatever its repository
// holds with the reconciler's rights, so being able to create one must need the rights of the
// Driftless namespace, which the guard's self-protection keeps to Driftless and break-glass.
//
// Make one with [NewGitSourceController] and add it to a manager with
// [GitSourceController.SetupWithManager]; it is leader-elected, as the set is.
type GitSourceController struct {
	// runResolver turns GitSources into runs with the reconciler's identity.
	runResolver
	client   client.Client
	set      *Set
	recorder events.EventRecorder

	mu  sync.Mutex
	cfg *v1alpha1.DriftlessConfig
	// requeue wakes the controller for every GitSource after a configuration change.
	requeue chan event.GenericEvent
}

// ControllerOptions are what a [GitSourceController] needs.
type ControllerOptions struct {
	// Client reads GitSources (from the manager's cache) and writes their finalizers.
	// Required.
	Client client.Client
	// Reader reads the Secrets and ConfigMaps GitSources refer to, uncached. Required.
	Reader client.Reader
	// Set runs the sources. Required.
	Set *Set
	// Config is the installation's configuration: its namespace, policy sets, break-glass
	// maximum, and the configuration-file sources whose mirrored GitSources take their
	// credential files from it. Required.
	Config *v1alpha1.DriftlessConfig
	// CacheDir is the absolute directory of the sources' caches; Secrets are written to
	// files, readable only by the process, under its .auth subdirectory. Required.
	CacheDir string
	// Clock decides suspension expiry. Nil is the real clock.
	Clock clock.PassiveClock
	// Recorder records Events on GitSources. Nil records none.
	Recorder events.EventRecorder
}

// NewGitSourceController returns the controller of the GitSources in opts.Config's reconciler
// namespace.
func NewGitSourceController(opts ControllerOptions) (*GitSourceController, error) {
	var errs []error
	if opts.Client == nil || opts.Reader == nil {
		errs = append(errs, errors.New("controller options: client and reader are required"))
	}
	if opts.Set == nil {
		errs = append(errs, errors.New("controller options: set is required"))
	}
	if opts.Config == nil {
		errs = append(errs, errors.New("controller options: config is required"))
	}
	if !filepath.IsAbs(opts.CacheDir) {
		errs = append(errs, fmt.Errorf("controller options: cacheDir %q must be an absolute path", opts.CacheDir))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &GitSourceController{
		runResolver: runResolver{
			reader:    opts.Reader,
			namespace: opts.Config.Reconciler.ServiceAccount.Namespace,
			authDir:   filepath.Join(opts.CacheDir, ".auth"),
			clock:     opts.Clock,
		},
		client: opts.Client, set: opts.Set, recorder: opts.Recorder, cfg: opts.Config,
		requeue: make(chan event.GenericEvent, 64),
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	return c, nil
}

// SetConfig makes cfg the configuration the controller resolves policy sets, the break-glass
// maximum and configuration-file credentials against, and has it reconcile every GitSource
// again.
func (c *GitSourceController) SetConfig(cfg *v1alpha1.DriftlessConfig) {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var list v1alpha1.GitSourceList
		if err := c.client.List(ctx, &list, client.InNamespace(c.namespace)); err != nil {
			// The periodic resync reaches them.
			return
		}
		for i := range list.Items {
			select {
			case c.requeue <- event.GenericEvent{Object: &list.Items[i]}:
			case <-ctx.Done():
				return
			}
		}
	}()
}

func (c *GitSourceController) config() *v1alpha1.DriftlessConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// SetupWithManager registers the controller with mgr, watching GitSources in the Driftless
// namespace. Status-only changes (the reconciler's own writes) do not wake it.
func (c *GitSourceController) SetupWithManager(mgr ctrl.Manager) error {
	ns := c.namespace
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == ns })
	notStatusOnly := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() ||
			!reflect.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
			!reflect.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
			!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
	}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("gitsource").
		// `driftless run` may run more than once in a process (tests, the playground); the
		// name only labels the controller's metrics.
		WithOptions(controller.Options{SkipNameValidation: ptr.To(true)}).
		For(&v1alpha1.GitSource{}, builder.WithPredicates(inNamespace, notStatusOnly)).
		WatchesRawSource(crsource.Channel(c.requeue, &handler.EnqueueRequestForObject{})).
		Complete(c)
}

// resync is how often a GitSource is re-read although nothing changed, so that a rotated
// Secret reaches the source's files.
const resync = 5 * time.Minute

// Reconcile makes the set run the GitSource req as it says now.
func (c *GitSourceController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := ctrl.LoggerFrom(ctx).WithValues("source", req.Name)
	if req.Namespace != c.namespace {
		return reconcile.Result{}, nil
	}
	var gs v1alpha1.GitSource
	if err := c.client.Get(ctx, req.NamespacedName, &gs); err != nil {
		if apierrors.IsNotFound(err) {
			if c.set.isRunning(req.Name) {
				log.Info("GitSource deleted: stopped its source; its objects stay in place, labelled, no longer managed (set spec.pruneOnDelete to delete them with it)")
			}
			c.set.Remove(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("read gitsource %s: %w", req, err)
	}
	if !gs.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, c.finalize(ctx, &gs)
	}
	if gs.Spec.PruneOnDelete != controllerutil.ContainsFinalizer(&gs, FinalizerPruneOnDelete) {
		patch := client.MergeFrom(gs.DeepCopy())
		if gs.Spec.PruneOnDelete {
			controllerutil.AddFinalizer(&gs, FinalizerPruneOnDelete)
		} else {
			controllerutil.RemoveFinalizer(&gs, FinalizerPruneOnDelete)
		}
		if err := c.client.Patch(ctx, &gs, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("update the finalizers of gitsource %s: %w", req, err)
		}
	}
	// What keeps gs from running stalls it: the run says what in Stalled.
	run, _ := c.runFor(ctx, c.config(), &gs)
	if err := c.set.Put(run); err != nil {
		return reconcile.Result{}, fmt.Errorf("run gitsource %s: %w", req, err)
	}
	if tok := gs.Annotations[v1alpha1.AnnotationReconcileRequestedAt]; tok != "" && tok != gs.Status.LastHandledReconcileAt {
		c.set.Request(gs.Name, tok)
	}
	return reconcile.Result{RequeueAfter: resync}, nil
}

// finalize stops a GitSource that is being deleted and, when it carries the pruneOnDelete
// finalizer, prunes its objects before letting it go.
func (c *GitSourceController) finalize(ctx context.Context, gs *v1alpha1.GitSource) error {
	log := ctrl.LoggerFrom(ctx).WithValues("source", gs.Name)
	if !controllerutil.ContainsFinalizer(gs, FinalizerPruneOnDelete) {
		c.set.Remove(gs.Name)
		return nil
	}
	run := SourceRun{Source: v1alpha1.SourceFromGitSource(gs), Generation: gs.Generation}
	pruned, orphaned, err := c.set.PruneAll(ctx, run)
	if err != nil {
		c.event(gs, corev1.EventTypeWarning, string(ResultPruneFailed), "Delete", err.Error())
		return err
	}
	msg := fmt.Sprintf("GitSource deleted with pruneOnDelete: %d objects pruned", pruned)
	if len(orphaned) > 0 {
		msg += fmt.Sprintf("; %d orphaned (not deleted): %s", len(orphaned), strings.Join(orphaned, "; "))
	}
	log.Info("pruned the objects of the deleted GitSource", "pruned", pruned, "orphaned", len(orphaned))
	c.event(gs, corev1.EventTypeNormal, "Pruned", "Delete", msg)
	patch := client.MergeFrom(gs.DeepCopy())
	controllerutil.RemoveFinalizer(gs, FinalizerPruneOnDelete)
	if err := c.client.Patch(ctx, gs, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the finalizer of gitsource %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	return nil
}

func (c *GitSourceController) event(gs *v1alpha1.GitSource, eventType, reason, action, note string) {
	if c.recorder == nil {
		return
	}
	c.recorder.Eventf(gs, nil, eventType, reason, action, "%s", truncate(note, maxNote))
}

// runResolver turns a GitSource into the [SourceRun] it declares: the Secrets and ConfigMaps
// it refers to are read with reader, in namespace, and written to files under authDir; its
// suspension is read by clock. The controller resolves with the reconciler's identity, and
// `driftless diff` ([DiffGitSources]) with the caller's, so that both run a GitSource the
// same way.
type runResolver struct {
	reader    client.Reader
	namespace string
	authDir   string
	clock     clock.PassiveClock
}

// runFor returns how the set runs gs now with the installation's configuration cfg: its
// source with the credentials of its Secrets written to files, and its suspension. What keeps
// it from running is in Stalled, and returned as problems, each wrapping its cause (such as
// a Secret the reader may not read).
func (r *runResolver) runFor(ctx context.Context, cfg *v1alpha1.DriftlessConfig, gs *v1alpha1.GitSource) (SourceRun, []error) {
	src := v1alpha1.SourceFromGitSource(gs)
	run := SourceRun{Generation: gs.Generation}
	var problems []error
	if gs.Labels[v1alpha1.LabelFromConfig] == "true" {
		for _, cs := range cfg.Sources {
			if cs.Name == gs.Name {
				src.Auth, src.Verify = cs.Auth, cs.Verify
			}
		}
	}
	if ref := gs.Spec.SecretRef; ref != nil {
		auth, err := r.authFromSecret(ctx, gs.Name, ref.Name)
		if err != nil {
			problems = append(problems, fmt.Errorf("spec.secretRef: %w", err))
		}
		src.Auth = auth
	}
	if v := gs.Spec.Verify; v != nil {
		files, err := r.keyrings(ctx, gs.Name, v)
		if err != nil {
			problems = append(problems, fmt.Errorf("spec.verify: %w", err))
		}
		src.Verify = &v1alpha1.Verification{KeyringFiles: files}
	}
	if ps := src.PolicySet; ps != "" && !slices.ContainsFunc(cfg.PolicySets, func(p v1alpha1.PolicySet) bool { return p.Name == ps }) {
		problems = append(problems, fmt.Errorf("spec.policySet: %q is not a policy set of the Driftless configuration", ps))
	}
	run.Source = src
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		run.Stalled = strings.Join(msgs, "; ")
		return run, problems
	}
	if gs.Spec.Suspend {
		run.Suspension = &v1alpha1.SuspensionStatus{Reason: "spec.suspend is true"}
		return run, nil
	}
	claim := v1alpha1.ReadSuspension(gs.Annotations, r.clock.Now(), cfg.Guard.BreakGlass.MaxDuration.Duration)
	switch claim.State {
	case v1alpha1.BreakGlassActive, v1alpha1.BreakGlassExpired:
		// An expired suspension is ended by the reconciler at once: it removes the
		// annotations and records the end.
		run.Suspension = &v1alpha1.SuspensionStatus{Reason: claim.Reason, By: claim.By, Until: &metav1.Time{Time: claim.Until}}
	case v1alpha1.BreakGlassInvalid:
		run.SuspendProblem = claim.Problem
	}
	return run, nil
}

// authFromSecret writes the credentials of Secret name to files for source and returns the
// auth that reads them. The Secret's values are never logged or put in an error.
func (r *runResolver) authFromSecret(ctx context.Context, source, name string) (*v1alpha1.GitAuth, error) {
	var sec corev1.Secret
	if err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: name}, &sec); err != nil {
		return nil, fmt.Errorf("read secret %s/%s: %w", r.namespace, name, err)
	}
	d := sec.Data
	has := func(k string) bool { return len(d[k]) > 0 }
	dir := filepath.Join(r.authDir, source)
	write := func(key string) (string, error) {
		p := filepath.Join(dir, "secret-"+strings.ReplaceAll(key, ".", "-"))
		if err := writePrivate(p, d[key]); err != nil {
			return "", fmt.Errorf("secret %s/%s key %s: %w", r.namespace, name, key, err)
		}
		return p, nil
	}
	a := &v1alpha1.GitAuth{}
	var err error
	switch {
	case has(v1alpha1.SecretKeyIdentity):
		if !has(v1alpha1.SecretKeyKnownHosts) {
			return nil, fmt.Errorf("secret %s/%s: key %s needs key %s, which pins the SSH server", r.namespace, name, v1alpha1.SecretKeyIdentity, v1alpha1.SecretKeyKnownHosts)
		}
		if a.SSHPrivateKeyFile, err = write(v1alpha1.SecretKeyIdentity); err != nil {
			return nil, err
		}
		if a.SSHKnownHostsFile, err = write(v1alpha1.SecretKeyKnownHosts); err != nil {
			return nil, err
		}
	case has(v1alpha1.SecretKeyBearerToken):
		if a.BearerTokenFile, err = write(v1alpha1.SecretKeyBearerToken); err != nil {
			return nil, err
		}
	case has(v1alpha1.SecretKeyPassword):
		a.Username = string(d[v1alpha1.SecretKeyUsername])
		if a.PasswordFile, err = write(v1alpha1.SecretKeyPassword); err != nil {
			return nil, err
		}
	case !has(v1alpha1.SecretKeyCA):
		return nil, fmt.Errorf("secret %s/%s has none of the keys %s, %s, %s or %s", r.namespace, name,
			v1alpha1.SecretKeyPassword, v1alpha1.SecretKeyBearerToken, v1alpha1.SecretKeyIdentity, v1alpha1.SecretKeyCA)
	}
	if has(v1alpha1.SecretKeyCA) {
		if a.CAFile, err = write(v1alpha1.SecretKeyCA); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// keyrings writes every key of the Secret or ConfigMap v names to a file for source and
// returns the files, sorted by key.
func (r *runResolver) keyrings(ctx context.Context, source string, v *v1alpha1.GitSourceVerification) ([]string, error) {
	data := map[string][]byte{}
	var what string
	switch {
	case v.SecretRef != nil:
		what = "secret " + r.namespace + "/" + v.SecretRef.Name
		var sec corev1.Secret
		if err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: v.SecretRef.Name}, &sec); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		data = sec.Data
	case v.ConfigMapRef != nil:
		what = "configmap " + r.namespace + "/" + v.ConfigMapRef.Name
		var cm corev1.ConfigMap
		if err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: v.ConfigMapRef.Name}, &cm); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		for k, s := range cm.Data {
			data[k] = []byte(s)
		}
		for k, b := range cm.BinaryData {
			data[k] = b
		}
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s holds no keyring", what)
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dir := filepath.Join(r.authDir, source)
	files := make([]string, 0, len(keys))
	for _, k := range keys {
		p := filepath.Join(dir, "keyring-"+strings.ReplaceAll(k, ".", "-"))
		if err := writePrivate(p, data[k]); err != nil {
			return nil, fmt.Errorf("%s key %s: %w", what, k, err)
		}
		files = append(files, p)
	}
	return files, nil
}

// writePrivate writes data to path, readable only by the process, unless it holds data
// already; the file is replaced atomically so that a fetch never reads half of it.
func writePrivate(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// isRunning reports whether the source name runs.
func (s *Set) isRunning(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[name] != nil
}
