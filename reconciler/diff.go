package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// DiffMode is how a diff learns what applying an object would do.
type DiffMode string

// The diff modes.
const (
	// DiffRead reads the live objects and the inventory and predicts each apply locally
	// (predict.go): it needs get on the objects only, sends no write and no dry-run, needs no
	// impersonation, and passes no admission. Defaulting, mutating admission webhooks and
	// validation are not applied, so it may show a change the API server would normalise
	// away; it never hides one those do not make.
	DiffRead DiffMode = "read"
	// DiffServerDryRun asks the API server with a server-side dry-run apply of every object:
	// its own answer, defaults and admission included. It needs the rights to patch every
	// object and, in protected namespaces, the reconciler's identity, since the guard decides
	// dry-runs like real requests.
	DiffServerDryRun DiffMode = "server-dry-run"
)

// Action is what a sync would do to one object.
type Action string

// The actions a sync takes.
const (
	// ActionCreate: the object is in Git but not in the cluster.
	ActionCreate Action = "create"
	// ActionUpdate: the live object differs from Git, or carries fields set out of band.
	ActionUpdate Action = "update"
	// ActionPrune: the object left Git and would be deleted.
	ActionPrune Action = "prune"
	// ActionOrphan: the object left Git but would not be deleted, only released (its source
	// label removed); Message says why.
	ActionOrphan Action = "orphan"
	// ActionBreakGlass: the object differs from Git under an active break-glass and is left
	// alone until it expires.
	ActionBreakGlass Action = "break-glass"
	// ActionAdoptionRefused: the object exists without the source's label and nothing opts in
	// to adoption, so the sync would refuse the whole revision (AdoptionRefused).
	ActionAdoptionRefused Action = "adoption-refused"
	// ActionConflict: another source applies the object too, so the sync would refuse the
	// whole revision.
	ActionConflict Action = "conflict"
	// ActionUnknown: the diff could not tell, because the caller may not read the object;
	// Message says what is missing.
	ActionUnknown Action = "unknown"
)

// ObjectDiff is what a sync would do to one object.
type ObjectDiff struct {
	// Object names the object.
	Object string `json:"object"`
	// Action is what the sync would do.
	Action Action `json:"action"`
	// Diff is a unified diff of the object's YAML from the cluster (---) to Git (+++),
	// without status and the fields the API server maintains. Empty for a prune, an orphan
	// and an unknown.
	Diff string `json:"diff,omitempty"`
	// Message explains an unknown, an orphan or a refused adoption.
	Message string `json:"message,omitempty"`
}

// DiffReport is what a sync of a source's current revision would change.
type DiffReport struct {
	// Source is the source's name.
	Source string `json:"source"`
	// Mode is how the diff was computed.
	Mode DiffMode `json:"mode"`
	// Revision is the commit the source's ref resolves to now.
	Revision string `json:"revision"`
	// Author is Revision's author.
	Author string `json:"author,omitempty"`
	// Subject is the first line of Revision's message.
	Subject string `json:"subject,omitempty"`
	// Violations are the policy violations that would stop the sync; the objects are
	// compared anyway.
	Violations []Violation `json:"violations,omitempty"`
	// Changes lists every object the sync would create, update, prune, orphan or leave alone
	// under break-glass, and those the diff could not tell (unknown), in apply order then
	// prune order.
	Changes []ObjectDiff `json:"changes,omitempty"`
	// Unchanged counts the objects that already match Git.
	Unchanged int `json:"unchanged"`
	// Notes say where the report may be inexact: what it could not read, and what a read
	// cannot know.
	Notes []string `json:"notes,omitempty"`
}

// Pending reports whether the report has a change, or an object it could not tell.
func (r *DiffReport) Pending() bool { return len(r.Changes) > 0 }

// readNote is the note of every read-only report.
const readNote = "computed from a read of the live objects, without asking the API server: its defaulting, " +
	"mutating admission webhooks and validation are not applied, so a value the API server would default or " +
	"normalise may show as a change (--server-dry-run asks the API server, with the rights to patch every object)"

// DiffOptions are what [DiffConfig] and [DiffGitSources] need.
type DiffOptions struct {
	// Options are the reconciler's. CacheDir may be empty: the diff then fetches into a
	// temporary directory it removes. A read diff reads with Client and never writes; give it
	// OpenAPI so that it merges with the API server's schemas.
	Options
	// Source names the one source of the configuration to diff; empty diffs every source.
	// [DiffConfig] only.
	Source string
	// Mode is how to diff; empty is [DiffRead].
	Mode DiffMode
	// Reader reads the Secrets and ConfigMaps a GitSource refers to (its credentials and
	// keyrings), with the identity of whoever asks for the diff. Required by
	// [DiffGitSources].
	Reader client.Reader
	// Notes are added to every report: what the caller knows to make the reports inexact.
	Notes []string
}

// diffMode returns the mode m names; empty is [DiffRead].
func diffMode(m DiffMode) (DiffMode, error) {
	switch m {
	case "":
		return DiffRead, nil
	case DiffRead, DiffServerDryRun:
		return m, nil
	}
	return "", fmt.Errorf("diff mode %q: want %q or %q", m, DiffRead, DiffServerDryRun)
}

// diffCacheDir makes a temporary cache directory for opts when it names none, and returns
// the function that removes it.
func diffCacheDir(opts *DiffOptions) (func(), error) {
	if opts.CacheDir != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "driftless-diff-")
	if err != nil {
		return nil, fmt.Errorf("diff: cache directory: %w", err)
	}
	opts.CacheDir = dir
	return func() { os.RemoveAll(dir) }, nil
}

// DiffGitSources reports what a sync of each GitSource of gitSources would change, without
// changing anything. Each is run as the GitSource controller runs it with the installation's
// configuration cfg (its policy set, break-glass maximum and, for a GitSource mirrored from
// the configuration file, its credential files): the Secrets and ConfigMaps it refers to are
// read with opts.Reader, and its credentials written to files in a directory of the cache
// that only the process may read (a temporary one, removed on return, unless opts names a
// CacheDir). Its status and inventory are read from the GitSource's own namespace. A
// suspended GitSource is diffed too, with a note: what the sync at the suspension's end would
// change. An error means no report could be made: a GitSource refers to what cannot be read
// (named; one the reader may not read says so) or names a policy set cfg does not declare, a
// fetch, render or policy evaluation failed, or the cluster could not be read at all.
func DiffGitSources(ctx context.Context, cfg *v1alpha1.DriftlessConfig, gitSources []v1alpha1.GitSource, opts DiffOptions) ([]*DiffReport, error) {
	mode, err := diffMode(opts.Mode)
	if err != nil {
		return nil, err
	}
	if opts.Reader == nil {
		return nil, errors.New("diff options: reader is required")
	}
	if len(gitSources) == 0 {
		return nil, errors.New("no GitSource to diff")
	}
	cleanup, err := diffCacheDir(&opts)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if opts.BreakGlassMaxDuration == 0 {
		opts.BreakGlassMaxDuration = cfg.Guard.BreakGlass.MaxDuration.Duration
	}
	var clk clock.PassiveClock = clock.RealClock{}
	if opts.Clock != nil {
		clk = opts.Clock
	}
	reports := make([]*DiffReport, 0, len(gitSources))
	for i := range gitSources {
		gs := &gitSources[i]
		res := runResolver{reader: opts.Reader, namespace: gs.Namespace, authDir: filepath.Join(opts.CacheDir, ".auth"), clock: clk}
		run, problems := res.runFor(ctx, cfg, gs)
		if len(problems) > 0 {
			return nil, gitSourceProblems(gs, problems)
		}
		o := opts.Options
		o.Namespace = gs.Namespace
		r, err := NewRun(run, o)
		if err != nil {
			return nil, err
		}
		rep, err := r.Diff(ctx, mode)
		if err != nil {
			return nil, fmt.Errorf("diff gitsource %s/%s: %w", gs.Namespace, gs.Name, err)
		}
		if s := run.Suspension; s != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("gitsource %s/%s is %s; no sync runs until the suspension ends, and this is what the sync then would change",
				gs.Namespace, gs.Name, suspensionMessage(s)))
		}
		rep.Notes = append(rep.Notes, opts.Notes...)
		reports = append(reports, rep)
	}
	return reports, nil
}

// gitSourceProblems is the error of the problems that keep a GitSource from being fetched as
// it declares. When the reader may not read a Secret or ConfigMap it refers to, it says that
// the diff reads them as the caller.
func gitSourceProblems(gs *v1alpha1.GitSource, problems []error) error {
	err := fmt.Errorf("gitsource %s/%s: %w", gs.Namespace, gs.Name, problems[0])
	for _, p := range problems[1:] {
		err = fmt.Errorf("%w; %w", err, p)
	}
	if slices.ContainsFunc(problems, apierrors.IsForbidden) {
		return fmt.Errorf("%w; diff fetches with the GitSource's credentials and keyrings, read as you: it needs get on them (or run it as someone who may read them)", err)
	}
	return err
}

// DiffConfig reports what a sync of each source of cfg (or of the one opts names) would
// change, without changing anything. An error means no report could be made: the
// configuration names no such source, a fetch, render or policy evaluation failed, or the
// cluster could not be read at all.
func DiffConfig(ctx context.Context, cfg *v1alpha1.DriftlessConfig, opts DiffOptions) ([]*DiffReport, error) {
	mode, err := diffMode(opts.Mode)
	if err != nil {
		return nil, err
	}
	sel := *cfg
	sel.Sources = nil
	for _, s := range cfg.Sources {
		if opts.Source == "" || s.Name == opts.Source {
			sel.Sources = append(sel.Sources, s)
		}
	}
	if len(sel.Sources) == 0 {
		if opts.Source == "" {
			return nil, errors.New("the configuration declares no source")
		}
		return nil, fmt.Errorf("the configuration declares no source named %q", opts.Source)
	}
	cleanup, err := diffCacheDir(&opts)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rs, err := NewForConfig(&sel, opts.Options)
	if err != nil {
		return nil, err
	}
	reports := make([]*DiffReport, 0, len(rs))
	for _, r := range rs {
		rep, err := r.Diff(ctx, mode)
		if err != nil {
			return nil, fmt.Errorf("diff source %q: %w", r.Name(), err)
		}
		rep.Notes = append(rep.Notes, opts.Notes...)
		reports = append(reports, rep)
	}
	return reports, nil
}

// Diff fetches, renders, gates and prepares the source's current revision as a sync does, and
// reports what a sync would change: every object the revision declares that would be created,
// or changed in a field Git declares, or lose a field that the reconciler would take over
// from kubectl's field managers (managedfields.go) and remove; and every object of the
// inventory that would be pruned or orphaned. It changes nothing in the cluster and needs no
// running reconciler. With [DiffRead] it only reads; an object it may not read is reported as
// unknown, saying so. With [DiffServerDryRun] it asks the API server (see [DiffServerDryRun]).
func (r *Reconciler) Diff(ctx context.Context, mode DiffMode) (*DiffReport, error) {
	if mode != DiffRead && mode != DiffServerDryRun {
		return nil, fmt.Errorf("diff mode %q: want %q or %q", mode, DiffRead, DiffServerDryRun)
	}
	art, _, err := r.fetch.fetch(ctx)
	if err != nil {
		return nil, err
	}
	md := art.Metadata
	rep := &DiffReport{Source: r.env.src.Name, Mode: mode, Revision: art.Revision, Author: md.Author, Subject: md.Subject}
	rendered, res, err := r.plan.render(ctx, art)
	if res == ResultPruneRefused {
		return nil, fmt.Errorf("render %s at %s: no objects; a sync would refuse it", r.env.src.Path, short(art.Revision))
	}
	if err != nil {
		return nil, err
	}
	if rep.Violations, err = r.plan.check(ctx, art, rendered); err != nil {
		return nil, err
	}
	objs, err := r.plan.prepare(rendered, art.Revision)
	if err != nil {
		return nil, err
	}
	markAutoscaled(objs)
	d := &differ{env: r.env, mode: mode, commit: short(art.Revision), predictor: newPredictor(r.env.openapi), claims: &claims{e: r.env}}
	if mode == DiffRead {
		d.note(readNote)
	}
	inv, found, err := r.env.readInventory(ctx)
	switch {
	case apierrors.IsForbidden(err):
		d.note(fmt.Sprintf("cannot read the inventory of gitsource %s/%s: forbidden; objects to prune are unknown, and objects are taken as the source's by their label alone",
			r.env.namespace, r.env.src.Name))
		inv, found = &inventory{}, false
	case err != nil:
		return nil, err
	}
	d.inv = inv

	changes := make([]*ObjectDiff, len(objs))
	errs := parallel(ctx, r.env.concurrency, indexes(len(objs)), func(ctx context.Context, i int) error {
		c, err := d.object(ctx, objs[i])
		changes[i] = c
		return err
	})
	if len(errs) > 0 {
		return nil, firstError(errs)
	}
	desired := map[objKey]*object{}
	for i, c := range changes {
		desired[objs[i].ref.key()] = objs[i]
		if c == nil {
			rep.Unchanged++
		} else {
			rep.Changes = append(rep.Changes, *c)
		}
	}
	if found && r.env.src.PruneEnabled() {
		pruned, err := d.prunes(ctx, r.prune, pruneCandidates(inv, desired))
		if err != nil {
			return nil, err
		}
		rep.Changes = append(rep.Changes, pruned...)
	}
	rep.Notes = d.notes
	return rep, nil
}

// differ compares the desired objects of one revision with the cluster.
type differ struct {
	*env
	mode      DiffMode
	commit    string
	inv       *inventory
	predictor *predictor
	// claims knows which objects other sources' inventories hold.
	claims *claims
	// mu guards notes, which parallel comparisons add to.
	mu    sync.Mutex
	notes []string
}

// note adds a note to the report once.
func (d *differ) note(n string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, have := range d.notes {
		if have == n {
			return
		}
	}
	d.notes = append(d.notes, n)
}

// object compares one desired object with the cluster; nil means unchanged.
func (d *differ) object(ctx context.Context, o *object) (*ObjectDiff, error) {
	live, err := d.resource(o.gvr, o.ref.Namespace).Get(ctx, o.ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		live = nil
	case apierrors.IsForbidden(err):
		return &ObjectDiff{Object: o.ref.String(), Action: ActionUnknown, Message: cannotRead(o.ref, "shown as unknown")}, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", o.ref, err)
	}
	keepLive(o, live, true)
	if live != nil {
		owner, err := d.claims.claimedByOther(ctx, live)
		switch {
		case apierrors.IsForbidden(err):
			d.note(fmt.Sprintf("cannot read the inventory of source %s: forbidden; whether it applies objects of this source too is unknown", live.GetLabels()[v1alpha1.LabelSource]))
		case err != nil:
			return nil, fmt.Errorf("%s: %w", o.ref, err)
		case owner != "":
			return &ObjectDiff{Object: o.ref.String(), Action: ActionConflict, Message: fmt.Sprintf(
				"source %s applies it too; the sync would refuse the revision (declare it in one source only)", owner)}, nil
		}
	}
	if live != nil && ownershipIn(&d.src, d.inv, o.ref.key(), live) == refused {
		return &ObjectDiff{Object: o.ref.String(), Action: ActionAdoptionRefused, Message: fmt.Sprintf(
			"it exists without the label %s=%s and neither it (%s=%q) nor the source (adopt: true) opts in to adoption; the sync would refuse the revision",
			v1alpha1.LabelSource, d.src.Name, v1alpha1.AnnotationAdopt, v1alpha1.AdoptAllowed)}, nil
	}
	var want *unstructured.Unstructured
	switch d.mode {
	case DiffServerDryRun:
		dry, err := d.dryRun(ctx, o)
		if err != nil {
			if live == nil && (apierrors.IsNotFound(err) || meta.IsNoMatchError(err)) {
				// Its namespace or kind is created by the same revision.
				return d.created(o, o.obj)
			}
			return nil, err
		}
		if live == nil {
			return d.created(o, dry)
		}
		want = withoutForeignFields(dry, d.takeover)
	default:
		if live == nil {
			return d.created(o, o.applied())
		}
		predicted, why, err := d.predictor.predict(o, live, d.takeover, d.clock.Now())
		if why != "" {
			d.note(fmt.Sprintf("%s: lists compared whole, so fields the API server defaulted inside them may show as removed (%s)", o.ref.GroupVersionKind().GroupVersion(), why))
		}
		if err != nil {
			return nil, err
		}
		want = predicted
	}
	diff, err := unifiedDiff(live, want, "cluster", "git@"+d.commit)
	if err != nil || diff == "" {
		return nil, err
	}
	action := ActionUpdate
	if readBreakGlass(live, d.clock.Now(), d.maxBreakGlass()).State == v1alpha1.BreakGlassActive {
		action = ActionBreakGlass
	}
	return &ObjectDiff{Object: o.ref.String(), Action: action, Diff: diff}, nil
}

// created is the change of an object the sync would create as want.
func (d *differ) created(o *object, want *unstructured.Unstructured) (*ObjectDiff, error) {
	diff, err := unifiedDiff(nil, want, "cluster", "git@"+d.commit)
	return &ObjectDiff{Object: o.ref.String(), Action: ActionCreate, Diff: diff}, err
}

// prunes decides, as a sync's prune would, what happens to each candidate that left Git.
func (d *differ) prunes(ctx context.Context, p *pruner, cands []ObjectRef) ([]ObjectDiff, error) {
	var out []ObjectDiff
	for _, ref := range cands {
		m, err := d.mapper.RESTMapping(ref.GroupVersionKind().GroupKind(), ref.Version)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", ref, err)
		}
		live, err := d.resource(m.Resource, ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case apierrors.IsForbidden(err):
			out = append(out, ObjectDiff{Object: ref.String(), Action: ActionUnknown, Message: cannotRead(ref, "whether it would be pruned is unknown")})
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", ref, err)
		}
		switch decision, why := p.decidePrune(ref, live, d.inv.origin(ref.key())); decision {
		case pruneDelete:
			out = append(out, ObjectDiff{Object: ref.String(), Action: ActionPrune})
		case pruneOrphan:
			out = append(out, ObjectDiff{Object: ref.String(), Action: ActionOrphan, Message: "left Git but would not be deleted: " + why})
		}
	}
	return out, nil
}

// cannotRead says that the caller may not read ref, and what the diff makes of it:
// "cannot read secret payments/db: forbidden; shown as unknown".
func cannotRead(ref ObjectRef, consequence string) string {
	kind := strings.ToLower(ref.Kind)
	if ref.Group != "" {
		kind += "." + ref.Group
	}
	name := ref.Name
	if ref.Namespace != "" {
		name = ref.Namespace + "/" + ref.Name
	}
	return fmt.Sprintf("cannot read %s %s: forbidden; %s", kind, name, consequence)
}

// firstError returns the first of errs, saying how many more there were: one clear error
// instead of a stack of similar ones.
func firstError(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more errors)", errs[0], len(errs)-1)
}

// actionOrder is the order in which [DiffReport.Counts] lists actions.
var actionOrder = []Action{ActionCreate, ActionUpdate, ActionPrune, ActionOrphan, ActionBreakGlass, ActionAdoptionRefused, ActionConflict, ActionUnknown}

// Counts says how many changes of each action the report holds: "1 create", "2 update".
func (r *DiffReport) Counts() []string {
	n := map[Action]int{}
	for _, c := range r.Changes {
		n[c.Action]++
	}
	var out []string
	for _, a := range actionOrder {
		if n[a] > 0 {
			out = append(out, fmt.Sprintf("%d %s", n[a], a))
		}
	}
	return out
}

// indexes returns 0..n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
