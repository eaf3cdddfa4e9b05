package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/webhook"
)

// scopeConfig is guardConfig with a controller identity, so that every identity class is
// represented.
const scopeConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: platform
    url: https://git.example.com/platform/config.git
    path: overlays/production
guard:
  protectedNamespaces: [production]
  controllerIdentities:
    usernames: [system:serviceaccount:autoscaling:cluster-autoscaler]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
`

// identity is one class of caller and whether the guard lets it change protected scope.
type identity struct {
	class, user string
	groups      []string
	allowed     bool
}

// identities are the classes of caller the scope walk decides for.
func identities() []identity {
	return []identity{
		{"person", "bob", []string{"developers", "system:authenticated"}, false},
		{"break-glass member, no break-glass", "alice", []string{"oncall", "system:authenticated"}, false},
		{"reconciler", "system:serviceaccount:driftless-system:driftless", []string{"system:serviceaccounts"}, true},
		{"kubernetes component", "system:kube-scheduler", nil, true},
		{"node", "system:node:n1", []string{"system:nodes"}, true},
		{"controller identity", "system:serviceaccount:autoscaling:cluster-autoscaler", nil, true},
	}
}

// TestEveryServedResourceHasAScopeDecision walks the API server's discovery: every resource
// and subresource it serves must have an entry in webhook.Scope, every verb on it must be an
// operation the entry guards or says why not, the generated webhook configuration must send
// exactly the guarded operations, and the guard must decide them by identity as the table in
// docs/guard.md says. A subresource that a new Kubernetes version adds fails here until it is
// decided.
func TestEveryServedResourceHasAScopeDecision(t *testing.T) {
	cfg, err := v1alpha1.Decode([]byte(scopeConfig))
	if err != nil {
		t.Fatal(err)
	}
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://guard.invalid/guard")})
	metrics, err := webhook.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g, err := webhook.NewGuard(webhook.Options{Config: cfg, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.APIResources {
			served++
			resource, sub, _ := strings.Cut(r.Name, "/")
			name := gv.String() + " " + r.Name
			entry, ok := webhook.ScopeOf(gv.Group, resource, sub, r.Namespaced)
			if !ok {
				t.Errorf("%s (namespaced %v, verbs %v): the API server serves it and webhook.Scope does not decide it", name, r.Namespaced, r.Verbs)
				continue
			}
			for _, op := range operations(entry, r.Verbs) {
				guarded := slices.Contains(entry.Guarded, op)
				if !guarded && entry.NotGuarded == "" {
					t.Errorf("%s %s: webhook.Scope neither guards it nor says why not", name, op)
				}
				if got := routed(vwc, gv, resource, sub, r.Namespaced, op); got != guarded {
					t.Errorf("%s %s: the webhook configuration sends it to the guard: %v, webhook.Scope guards it: %v", name, op, got, guarded)
				}
				if !guarded {
					continue
				}
				// Ignored resources (Events, Leases) are routed but skipped by matchConditions
				// and allowed by the handler.
				ignored := slices.ContainsFunc(cfg.Guard.IgnoredResources, func(gr v1alpha1.GroupResource) bool {
					return gr.Group == gv.Group && gr.Resource == resource
				})
				for _, id := range identities() {
					resp := g.Handle(t.Context(), scopeRequest(gv, resource, sub, r.Namespaced, op, id))
					if want := id.allowed || ignored; resp.Allowed != want {
						t.Errorf("%s %s by %s (%s): allowed %v, want %v: %s", name, op, id.user, id.class, resp.Allowed, want, resp.Result.Message)
					}
				}
			}
		}
	}
	if served < 50 {
		t.Fatalf("discovery listed %d resources; the walk saw too little to mean anything", served)
	}
}

// operations are the admission operations the discovery verbs of a resource lead to.
func operations(e webhook.ScopeEntry, verbs []string) []admissionregistrationv1.OperationType {
	var out []admissionregistrationv1.OperationType
	add := func(op admissionregistrationv1.OperationType) {
		if !slices.Contains(out, op) {
			out = append(out, op)
		}
	}
	for _, v := range verbs {
		switch {
		case e.Connect:
			add(admissionregistrationv1.Connect)
		case v == "create":
			add(admissionregistrationv1.Create)
		case v == "update" || v == "patch":
			add(admissionregistrationv1.Update)
		case v == "delete" || v == "deletecollection":
			add(admissionregistrationv1.Delete)
		}
	}
	return out
}

// routed reports whether a webhook of vwc has a rule matching the request, by the rule
// semantics of admissionregistration.k8s.io/v1: "*" is every resource, "*/x" subresource x
// of every resource, "r/*" every subresource of r, "*/*" everything.
func routed(vwc *admissionregistrationv1.ValidatingWebhookConfiguration, gv schema.GroupVersion, resource, sub string, namespaced bool, op admissionregistrationv1.OperationType) bool {
	in := func(list []string, v string) bool { return slices.Contains(list, "*") || slices.Contains(list, v) }
	for _, w := range vwc.Webhooks {
		for _, r := range w.Rules {
			if !in(opStrings(r.Operations), string(op)) || !in(r.APIGroups, gv.Group) || !in(r.APIVersions, gv.Version) {
				continue
			}
			if s := ptr.Deref(r.Scope, admissionregistrationv1.AllScopes); s == admissionregistrationv1.NamespacedScope && !namespaced || s == admissionregistrationv1.ClusterScope && namespaced {
				continue
			}
			for _, res := range r.Resources {
				rr, rs, _ := strings.Cut(res, "/")
				if (rr == "*" || rr == resource) && (rs == sub || rs == "*") {
					return true
				}
			}
		}
	}
	return false
}

func opStrings(ops []admissionregistrationv1.OperationType) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = string(o)
	}
	return out
}

// scopeRequest is a request in protected scope: in the production namespace, or, for a
// cluster-scoped resource, on an object that carries driftless.dev/source.
func scopeRequest(gv schema.GroupVersion, resource, sub string, namespaced bool, op admissionregistrationv1.OperationType, id identity) admission.Request {
	ns, name := "production", "scope-object"
	if !namespaced {
		ns = ""
		if resource == "namespaces" {
			name = "production"
		}
	}
	object := func(labels map[string]string) []byte {
		raw, _ := json.Marshal(map[string]any{"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels}})
		return raw
	}
	raw := object(map[string]string{v1alpha1.LabelSource: "platform"})
	newRaw := raw
	if sub == "status" {
		// A status write that changes only the status is allowed to anyone; one that changes
		// the metadata is decided by identity, as the table says.
		newRaw = object(map[string]string{v1alpha1.LabelSource: "platform", "changed": "by-a-status-write"})
	}
	req := admissionv1.AdmissionRequest{
		UID:         types.UID("scope"),
		Kind:        metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: "Object"},
		Resource:    metav1.GroupVersionResource{Group: gv.Group, Version: gv.Version, Resource: resource},
		SubResource: sub,
		Name:        name,
		Namespace:   ns,
		Operation:   admissionv1.Operation(op),
		UserInfo:    authenticationv1.UserInfo{Username: id.user, Groups: id.groups},
	}
	switch op {
	case admissionregistrationv1.Create, admissionregistrationv1.Connect:
		req.Object = runtime.RawExtension{Raw: raw}
	case admissionregistrationv1.Update:
		req.Object, req.OldObject = runtime.RawExtension{Raw: newRaw}, runtime.RawExtension{Raw: raw}
	case admissionregistrationv1.Delete:
		req.OldObject = runtime.RawExtension{Raw: raw}
	}
	return admission.Request{AdmissionRequest: req}
}
