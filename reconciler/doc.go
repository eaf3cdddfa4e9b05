// Package reconciler keeps a cluster as Git declares it: for each GitSource, a
// [Reconciler] pulls the approved revision, renders it, gates it on policy, applies it with
// server-side apply, prunes what left Git and reverts drift.
//
// One [Reconciler.Sync]:
//
//  1. fetches the source's artifact with a [source.Source] (for Git, the commit its ref
//     resolves to, its signature verified when the source asks for it) within the source's
//     limits; on failure the cluster keeps the last good revision and the next attempt backs
//     off exponentially, capped at the interval;
//  2. renders the source's path in the artifact with [render.RenderWithInputs]; an empty
//     render is refused and prunes nothing. The last render is reused while nothing it read
//     changed (the Git blob and tree hashes of the paths it read, with the same path and
//     limits), and a kustomization listing only files is brought up to date file by file
//     ([render.Rendered.Update]);
//  3. checks the rendered objects against the source's policy set with a [Gate]; any
//     violation stops the revision;
//  4. labels every object driftless.dev/source=<source>, annotates it
//     driftless.dev/revision=<commit> and gives namespaced objects without a namespace the
//     source's target namespace;
//  5. dry-runs every object on the API server, and applies nothing if any dry-run fails
//     (objects whose kind or namespace the same revision creates are dry-run after those),
//     or if an object exists without the source's label and neither it nor the source opts
//     in to adoption (AdoptionRefused);
//  6. applies in stages with server-side apply (field manager "driftless", conflicts
//     forced): CustomResourceDefinitions and Namespaces, then, once the CRDs are
//     established, everything else, kind by kind;
//  7. prunes, in reverse apply order with PersistentVolumeClaims, CRDs and Namespaces last,
//     the objects of the source's inventory that left Git, if their live label still names
//     the source and they are not annotated driftless.dev/prune: disabled; adopted objects,
//     Namespaces, PVCs and CRDs only when annotated driftless.dev/prune: confirm, and are
//     otherwise orphaned (dropped from the inventory, their source label removed, reported).
//
// Objects that a new commit does not change are not written, so their revision annotation
// names the commit that last changed them; the status names the commit applied.
//
// Sources are GitSource objects (driftless.dev/v1alpha1) in the Driftless namespace. The
// [GitSourceController] turns each into a [SourceRun] (Secrets written to files readable only
// by the process, the suspension read by the injected clock) and puts it into the [Set],
// which starts, restarts (on any change) or stops the source's reconciler live; a
// driftless.dev/reconcile-requested-at annotation reaches the running reconciler's loop
// through [Reconciler.Request], without a restart. GitSources in other namespaces are
// ignored: a GitSource applies with the reconciler's rights. A deleted GitSource orphans its
// objects unless spec.pruneOnDelete asked for a finalizer, which prunes them within the
// ownership rules first. A suspended source (spec.suspend, or valid driftless.dev/suspend
// annotations within the break-glass maximum) neither syncs nor heals; at the annotations'
// expiry its reconciler removes them, records the end in an Event and the ledger, and the
// restarted source reverts the drift. The [ConfigMirror] mirrors the deprecated sources of
// the configuration file into labelled GitSources.
//
// The inventory (what the source applied, in apply order) and the status (conditions Ready,
// Reconciling and Stalled, revision, result, violations, counts, active break-glass, and the
// last ten syncs as history) live in the status of the source's GitSource, written with
// server-side apply by two field managers (driftless for the report, driftless-inventory for
// the inventory), so a restart forgets nothing and `kubectl get gitsources` shows the status.
// [ReadStatus] reads it back. The driftless-inventory-<source> and driftless-status-<source>
// ConfigMaps of earlier versions are read once, moved into the GitSource and deleted.
//
// Drift: [Reconciler.Start] watches the applied objects and re-applies one as soon as it is
// changed out of band. Re-applying alone would keep fields that someone else added, since
// server-side apply only removes fields the applier owns; so before applying, the fields
// owned by kubectl's field managers (and by whoever set break-glass annotations, and by
// before-first-apply) are moved to the reconciler's own apply entry in managedFields, and
// the apply then removes every one Git does not declare. Fields owned by Kubernetes'
// controllers and other operators are left alone. Two fields the live object keeps although
// Git says otherwise (livekeep.go): the pod template's kubectl.kubernetes.io/restartedAt,
// never taken over, so that kubectl rollout restart is not undone; and spec.replicas of a
// workload a HorizontalPodAutoscaler of the same revision targets, once the autoscaler owns it.
//
// Break-glass: an object whose driftless.dev/break-glass annotation gives a reason and whose
// driftless.dev/break-glass-until is in the future (by the injected clock) and within the
// configured maximum is left alone; its difference from Git is kept in the status. When the
// break-glass expires the object is reverted, added fields and the annotations included, and
// an Event and a log line carry the change as a patch to commit to the overlay.
//
// [Reconciler.Diff] reports what a sync would change without changing anything.
//
// Inside, a Reconciler is parts with one job each — fetch, plan, apply, prune, heal and
// status — sharing one small state (inventory, desired objects, status, break-glass holds)
// behind its own lock. Fetching, rendering and the policy gate never take that lock, so a
// heal never waits for a slow source. Only the status writer writes the status; only the
// healer's reverted records a revert. The one place that knows the kinds of source builds a
// [source.Source] from the configuration; everything after it works on the artifact.
//
// This package must not shell out (git, kubectl, kustomize), must not keep state outside
// the cluster apart from the Git cache and the credential files, and must not write status
// anywhere but the GitSource's status. It never deletes an object it did not record in its
// inventory as created (or that was not explicitly confirmed for pruning).
package reconciler
