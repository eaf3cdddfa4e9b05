package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
)

// GuardPath is the URL path the guard is served on.
const GuardPath = "/guard"

// Event reasons the guard records on the objects it decides about.
const (
	EventChangeDenied   = "ManualChangeDenied"
	EventChangeWarned   = "ManualChangeWarned"
	EventChangeRecorded = "ManualChangeRecorded"
	EventBreakGlassUsed = "BreakGlassUsed"
	EventPolicyDenied   = "PolicyViolation"
	// eventAction is the action of every Event the guard records.
	eventAction = "Admit"
)

// ParentReader reads the metadata of the object a subresource request is for. The guard uses
// it for scale requests, whose Scale body carries no labels or annotations.
type ParentReader interface {
	ParentMeta(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*metav1.PartialObjectMetadata, error)
}

// MetadataParentReader is a ParentReader backed by a metadata-only client.
type MetadataParentReader struct {
	Client metadata.Interface
}

// ParentMeta reads the object's metadata from the API server.
func (m MetadataParentReader) ParentMeta(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*metav1.PartialObjectMetadata, error) {
	return m.Client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
}

// Options configure a Guard.
type Options struct {
	// Config is the validated Driftless configuration. Required.
	Config *v1alpha1.DriftlessConfig
	// Clock decides break-glass expiry. Defaults to the real clock.
	Clock clock.PassiveClock
	// Metrics records decisions. Required.
	Metrics *Metrics
	// Recorder records Events for denials and break-glass uses. Nil records none.
	Recorder events.EventRecorder
	// Parents looks up the object behind a scale request. Nil makes break-glass unusable for
	// scale requests: they are denied like any other change in protected scope.
	Parents ParentReader
	// Policy evaluates the admission policy set named by guard.policySet. The caller loads it
	// (and reloads it before SetConfig). Required when a policy set is configured.
	Policy PolicyEvaluator
	// Ledger durably records every decision other than a plain allow. Nil records none.
	Ledger *ledger.Ledger
	// Sources finds the repository and path of sources that are not in the configuration
	// (GitSources), for denial messages. Nil names such sources only.
	Sources SourceLocator
}

// Guard is the admission handler that rejects manual changes in protected scope. Serve it with
// ReviewHandler: the guard reads only the parts of an object it needs and relies on
// ReviewHandler's check of the whole review (objects included: well formed, valid UTF-8, no key
// twice) for the rest. controller-runtime's admission.Webhook does not refuse a key twice.
type Guard struct {
	rules    atomic.Pointer[rules]
	clock    clock.PassiveClock
	metrics  *Metrics
	recorder events.EventRecorder
	parents  ParentReader
	policy   PolicyEvaluator
	events   *eventLimiter
	ledger   *ledger.Ledger
	sources  SourceLocator
}

var _ admission.Handler = (*Guard)(nil)

// NewGuard returns a guard deciding by the given configuration.
func NewGuard(opts Options) (*Guard, error) {
	if opts.Metrics == nil {
		return nil, errors.New("new guard: metrics are required")
	}
	g := &Guard{clock: opts.Clock, metrics: opts.Metrics, recorder: opts.Recorder, parents: opts.Parents, policy: opts.Policy, ledger: opts.Ledger, sources: opts.Sources}
	if g.clock == nil {
		g.clock = clock.RealClock{}
	}
	g.events = newEventLimiter(g.clock)
	if err := g.SetConfig(opts.Config); err != nil {
		return nil, err
	}
	return g, nil
}

// SetConfig atomically replaces the configuration the guard decides by. Requests in flight
// finish with the configuration they started with.
func (g *Guard) SetConfig(c *v1alpha1.DriftlessConfig) error {
	if c == nil {
		return errors.New("set guard config: config is nil")
	}
	if c.Guard.PolicySet != "" && g.policy == nil {
		return fmt.Errorf("set guard config: guard.policySet %q needs a policy engine", c.Guard.PolicySet)
	}
	g.rules.Store(newRules(c))
	return nil
}

// Handle decides one admission request. Anything it cannot decide is denied.
func (g *Guard) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	log := logr.FromContextOrDiscard(ctx)
	defer func() {
		if p := recover(); p != nil {
			// ReviewHandler turns the panic into a denial; count it first.
			g.metrics.observe(ResultErrored, ReasonInternalError, time.Since(start))
			panic(p)
		}
	}()

	r := g.rules.Load()
	if r == nil {
		g.metrics.observe(ResultErrored, ReasonInternalError, time.Since(start))
		return admission.Errored(http.StatusInternalServerError, errors.New("driftless guard has no configuration loaded"))
	}
	// On the stack: nothing keeps the facts after the decision.
	var known facts
	f := &known
	if err := f.read(&req); err != nil {
		log.Info("admission request rejected as malformed", "uid", req.UID, "error", err.Error())
		g.metrics.observe(ResultErrored, ReasonBadRequest, time.Since(start))
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("driftless guard: %w", err))
	}

	now := g.clock.Now()
	d := r.decide(f, now)
	if d.deny && needsParent(f) && g.parents != nil {
		d = g.decideByParent(ctx, r, f, now, d)
	}
	if d.deny && f.err == nil {
		d = g.decideSafeOperation(ctx, r, f, d)
	}
	if f.err == nil && r.wantsPolicy(f, d) {
		var err error
		if d, err = g.checkPolicy(ctx, r, f, d); err != nil {
			log.Error(err, "admission policy failed, denying", "uid", req.UID)
			g.metrics.observe(ResultErrored, ReasonInternalError, time.Since(start))
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("driftless guard: %w", err))
		}
	}
	if f.err != nil {
		log.Info("admission request rejected as malformed", "uid", req.UID, "error", f.err.Error())
		g.metrics.observe(ResultErrored, ReasonBadRequest, time.Since(start))
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("driftless guard: %w", f.err))
	}
	return g.respond(ctx, r, f, d, start)
}

// needsParent reports whether a request is decided by the object it is for rather than by its
// body: a scale request (a Scale carries no annotations) and a CONNECT (its body is the
// options of exec, attach or port-forward).
func needsParent(f *facts) bool {
	return f.subResource == "scale" || f.operation == admissionv1.Connect
}

// decideByParent decides a denied scale or CONNECT request again with
// the labels and annotations of the object it is for, which the request body does not carry.
func (g *Guard) decideByParent(ctx context.Context, r *rules, f *facts, now time.Time, d decision) decision {
	parent, err := g.parents.ParentMeta(ctx, f.resource, f.namespace, f.name)
	if err != nil {
		d.problem += fmt.Sprintf(" (could not read %s/%s to check for break-glass: %v)", f.resource.Resource, f.name, err)
		return d
	}
	meta := &objectMeta{
		Name: parent.Name, Namespace: parent.Namespace, UID: string(parent.UID),
		Labels: parent.Labels, Annotations: parent.Annotations,
	}
	f.replaceObjects(meta)
	return r.decide(f, now)
}

func (g *Guard) respond(ctx context.Context, r *rules, f *facts, d decision, start time.Time) admission.Response {
	var (
		resp   admission.Response
		result Result
		msg    string
	)
	if d.deny {
		if d.reason == ReasonPolicy {
			msg = r.policyMessage(f, d)
		} else {
			msg = r.denialMessage(f, d, r.owner(ctx, f, g.sources))
		}
	}
	switch {
	case !d.deny:
		result, resp = ResultAllowed, admission.Allowed("")
	case r.mode == v1alpha1.ModeWarn:
		result, resp = ResultWarned, admission.Allowed("").WithWarnings(warnings(msg)...)
	case r.mode == v1alpha1.ModeDryRun:
		result, resp = ResultRecorded, admission.Allowed("")
	default:
		result, resp = ResultDenied, admission.Denied(msg)
	}
	if len(d.policyWarnings) > 0 {
		resp = resp.WithWarnings(d.policyWarnings...)
	}
	took := time.Since(start)
	g.metrics.observe(result, d.reason, took)

	// Room for every pair below, so that the line is built in one allocation.
	kv := make([]any, 0, 40)
	kv = append(kv,
		"result", result, "reason", d.reason, "uid", f.uid, "user", f.user, "groups", f.groups,
		"operation", f.operation, "resource", f.resource.GroupResource().String(), "subresource", f.subResource,
		"namespace", f.namespace, "name", f.name, "dryRun", f.dryRun, "took", took,
	)
	if d.deny || d.breakGlass != nil {
		// Only these decisions read the objects; allowing decisions stay free of decoding.
		kv = append(kv, "source", f.sourceName())
	}
	if bg := d.breakGlass; bg != nil {
		kv = append(kv, "breakGlassReason", bg.reason, "breakGlassUntil", bg.until.UTC().Format(time.RFC3339), "breakGlassGroup", bg.group)
		// bg.group is one of the configured break-glass groups, never a value from the request.
		g.metrics.breakGlass.WithLabelValues(bg.group).Inc()
	}
	if d.deny {
		kv = append(kv, "problem", d.problem)
	}
	logr.FromContextOrDiscard(ctx).Info("admission decision", kv...)
	g.recordLedger(f, d, result)

	if g.recorder != nil && !f.dryRun {
		g.recordEvent(f, d, result)
	}
	return resp
}

// recordEvent records a Kubernetes Event for a denial (or would-be denial) and for a
// break-glass use. Events are not recorded for dry-run requests: they have no side effects.
// The Event limiter bounds how many are written; the log line records every decision.
func (g *Guard) recordEvent(f *facts, d decision, result Result) {
	reason := eventReason(d, result)
	if reason == "" {
		return
	}
	key := eventKey{user: f.user, reason: reason, namespace: f.namespace, name: f.displayName(), resource: f.resource.GroupResource().String()}
	if !g.events.allow(key) {
		g.metrics.events.WithLabelValues(reason, eventSuppressed).Inc()
		return
	}
	g.metrics.events.WithLabelValues(reason, eventRecorded).Inc()
	ref := &corev1.ObjectReference{
		APIVersion: f.kind.GroupVersion().String(),
		Kind:       f.kind.Kind,
		Namespace:  f.namespace,
		Name:       f.displayName(),
	}
	if f.resource.GroupResource() == namespacesResource {
		// A protected Namespace's Events belong in it, where on-call looks
		// (kubectl get events -n NAME), not in default.
		ref.Namespace = f.name
	}
	if f.operation == admissionv1.Connect {
		// The request's kind is PodExecOptions and the like; the Event is about the pod or
		// Service.
		ref.APIVersion, ref.Kind = "v1", connectKind(f.resource.Resource)
	}
	if t := f.target(); t != nil {
		ref.UID = types.UID(t.UID)
	}
	switch {
	case d.breakGlass != nil:
		g.recorder.Eventf(ref, nil, corev1.EventTypeWarning, EventBreakGlassUsed, eventAction,
			"break-glass: %s (group %s) may %s until %s, reason %q",
			f.user, d.breakGlass.group, f.what(), d.breakGlass.until.UTC().Format(time.RFC3339), d.breakGlass.reason)
	case !d.deny && d.safeOperation != "":
		g.recorder.Eventf(ref, nil, corev1.EventTypeNormal, EventSafeOperation, eventAction,
			"safe operation: %s may %s: %s", f.user, f.what(), d.safeOperation.describe())
	case d.deny && d.reason == ReasonPolicy:
		lines := make([]string, len(d.violations))
		for i, v := range d.violations {
			lines[i] = violationLine(v)
		}
		g.recorder.Eventf(ref, nil, corev1.EventTypeWarning, EventPolicyDenied, eventAction, "%s: %s tried to %s: %s: %s", result, f.user, f.what(), d.problem, strings.Join(lines, "; "))
	case d.deny:
		g.recorder.Eventf(ref, nil, corev1.EventTypeWarning, reason, eventAction, "%s: %s tried to %s: %s", result, f.user, f.what(), d.problem)
	}
}

// connectKind is the kind of the object a CONNECT to resource is for.
func connectKind(resource string) string {
	switch resource {
	case "services":
		return "Service"
	case "nodes":
		return "Node"
	default:
		return "Pod"
	}
}

// eventReason is the reason of the Event a decision records, "" for none.
func eventReason(d decision, result Result) string {
	switch {
	case d.breakGlass != nil:
		return EventBreakGlassUsed
	case !d.deny && d.safeOperation != "":
		return EventSafeOperation
	case d.deny && d.reason == ReasonPolicy:
		return EventPolicyDenied
	case d.deny && result == ResultWarned:
		return EventChangeWarned
	case d.deny && result == ResultRecorded:
		return EventChangeRecorded
	case d.deny:
		return EventChangeDenied
	}
	return ""
}
