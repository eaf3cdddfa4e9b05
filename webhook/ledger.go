package webhook

import (
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/driftless-dev/driftless/internal/ledger"
)

// plainAllow reports whether an allowing decision with reason is one the ledger leaves out:
// a request the guard does not guard. Every other decision — a denial, a warning, a dry-run
// record, a break-glass use, and any allowing reason added later (safe operations) — is
// recorded.
func plainAllow(reason Reason) bool {
	switch reason {
	case ReasonReconciler, ReasonKubernetes, ReasonController, ReasonStatus, ReasonNotGuarded,
		ReasonIgnoredResource, ReasonUnprotected, ReasonUnmanagedCluster:
		return true
	}
	return false
}

// recordLedger hands a decision to the ledger unless it is a plain allow or a dry-run
// request (the webhook declares sideEffects: NoneOnDryRun, so a dry-run writes nothing, as
// for Events). The ledger only buffers it; the changed fields of an update are computed off
// the admission path from the objects the request already carries.
func (g *Guard) recordLedger(f *facts, d decision, result Result) {
	if g.ledger == nil || f.dryRun || (result == ResultAllowed && plainAllow(d.reason)) {
		return
	}
	rec := ledger.Record{
		Time: g.clock.Now(), Decision: string(result), Reason: string(d.reason), Message: d.problem,
		User: f.user, Groups: f.groups, Operation: string(f.operation),
		Object: ledger.Object{
			APIVersion: f.kind.GroupVersion().String(), Kind: f.kind.Kind,
			Resource: f.resource.GroupResource().String(), Subresource: f.subResource,
			Namespace: f.namespace, Name: f.displayName(),
		},
		Source: f.sourceName(),
	}
	if bg := d.breakGlass; bg != nil {
		rec.BreakGlass = &ledger.BreakGlass{Reason: bg.reason, Group: bg.group, Until: bg.until.UTC()}
	}
	for _, v := range d.violations {
		rec.Violations = append(rec.Violations, violationLine(v))
	}
	var before, after []byte
	if f.operation == admissionv1.Update && f.subResource == "" {
		before, after = f.rawOldObject, f.rawObject
	}
	g.ledger.Admission(rec, before, after)
}
