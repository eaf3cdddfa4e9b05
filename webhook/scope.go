package webhook

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// ScopeEntry is the guard's decision for one resource or subresource: which operations the
// webhook configuration sends to the guard, and why the others are not sent.
type ScopeEntry struct {
	// Group and Resource name the resource. Resource "*" stands for every resource (Group is
	// then ignored) that has no entry of its own.
	Group, Resource string
	// Subresource is "" for the resource itself.
	Subresource string
	// Scope is NamespacedScope, ClusterScope or AllScopes ("*").
	Scope admissionregistrationv1.ScopeType
	// Connect is set for subresources reached with CONNECT (exec, attach, port-forward,
	// proxy): every verb on them is a CONNECT.
	Connect bool
	// Guarded are the operations sent to the guard. In protected scope only the reconciler,
	// Kubernetes' own components, controller identities and a valid break-glass get through.
	Guarded []admissionregistrationv1.OperationType
	// NotGuarded says why the other operations are left to RBAC; "" when there are none.
	NotGuarded string
}

// Scope is the guard's decision for every resource and subresource a Kubernetes 1.37 API
// server serves, in the order it is looked up: an entry for the exact resource first, then the
// entry for "*" with the same subresource and scope. The webhook configuration's rules are
// generated from it, and test/e2e walks the API server's discovery to show that every
// resource and subresource it serves has an entry.
func Scope() []ScopeEntry {
	const ns, cl, all = admissionregistrationv1.NamespacedScope, admissionregistrationv1.ClusterScope, admissionregistrationv1.AllScopes
	create, update, del, connect := admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete, admissionregistrationv1.Connect
	podConnect := "exec, attach, port-forward and proxy reach into a running pod and can change it outside Git: break-glass only"
	return []ScopeEntry{
		{Resource: "*", Scope: all, Guarded: ops(create, update, del)},
		// Status is what controllers observe, not desired state, and a write that changes only
		// the status is allowed; but the API server keeps the metadata a status write changes.
		{Resource: "*", Subresource: "status", Scope: all, Guarded: ops(update)},
		{Resource: "*", Subresource: "scale", Scope: ns, Guarded: ops(update)},
		{Resource: "*", Subresource: "scale", Scope: cl,
			NotGuarded: "the cluster webhook selects objects by their driftless.dev/source label, which a Scale does not carry"},
		{Resource: "*", Subresource: "ephemeralcontainers", Scope: ns, Guarded: ops(update)},
		{Resource: "pods", Subresource: "resize", Scope: ns, Guarded: ops(update)},
		{Resource: "pods", Subresource: "binding", Scope: ns, Guarded: ops(create)},
		{Resource: "pods", Subresource: "eviction", Scope: ns,
			NotGuarded: "evictions are how kubectl drain and autoscalers move pods; PodDisruptionBudgets bound them and the owning controller recreates the pod"},
		{Resource: "pods", Subresource: "log", Scope: ns, NotGuarded: "read-only"},
		{Resource: "pods", Subresource: "exec", Scope: ns, Connect: true, Guarded: ops(connect), NotGuarded: podConnect},
		{Resource: "pods", Subresource: "attach", Scope: ns, Connect: true, Guarded: ops(connect), NotGuarded: podConnect},
		{Resource: "pods", Subresource: "portforward", Scope: ns, Connect: true, Guarded: ops(connect), NotGuarded: podConnect},
		{Resource: "pods", Subresource: "proxy", Scope: ns, Connect: true, Guarded: ops(connect), NotGuarded: podConnect},
		{Resource: "services", Subresource: "proxy", Scope: ns, Connect: true, Guarded: ops(connect), NotGuarded: podConnect},
		{Resource: "serviceaccounts", Subresource: "token", Scope: ns,
			NotGuarded: "minting a token changes no object; who may mint tokens is RBAC's (and self-protection's in driftless-system)"},
		{Resource: "namespaces", Subresource: "finalize", Scope: cl, Guarded: ops(update)},
		{Resource: "nodes", Subresource: "proxy", Scope: cl, Connect: true,
			NotGuarded: "nodes are not Git-owned; access to the kubelet is RBAC's"},
		{Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", Scope: cl,
			NotGuarded: "approving a certificate request changes no Git-owned object; RBAC's approve verb decides"},
	}
}

func ops(o ...admissionregistrationv1.OperationType) []admissionregistrationv1.OperationType {
	return o
}

// ScopeOf returns the entry that decides group/resource/subresource in the given scope (a
// namespaced or a cluster-scoped resource), and false when there is none.
func ScopeOf(group, resource, subresource string, namespaced bool) (ScopeEntry, bool) {
	scope := admissionregistrationv1.ClusterScope
	if namespaced {
		scope = admissionregistrationv1.NamespacedScope
	}
	entries := Scope()
	fits := func(e ScopeEntry) bool {
		return e.Subresource == subresource && (e.Scope == admissionregistrationv1.AllScopes || e.Scope == scope)
	}
	for _, e := range entries {
		if e.Resource == resource && e.Group == group && fits(e) {
			return e, true
		}
	}
	for _, e := range entries {
		if e.Resource == "*" && fits(e) {
			return e, true
		}
	}
	return ScopeEntry{}, false
}

// guardsConnect reports whether a CONNECT request is one the guard decides.
func guardsConnect(f *facts) bool {
	e, ok := ScopeOf(f.resource.Group, f.resource.Resource, f.subResource, f.namespace != "")
	if !ok {
		return false
	}
	for _, o := range e.Guarded {
		if o == admissionregistrationv1.Connect {
			return true
		}
	}
	return false
}
