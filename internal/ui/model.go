package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/installation"
	"github.com/driftless-dev/driftless/internal/ledger"
	"github.com/driftless-dev/driftless/reconciler"
)

// Reader is the view's read model: it reads the cluster as the caller, with the caller's
// RBAC, and never writes to it.
type Reader struct {
	kube      kubernetes.Interface
	dyn       dynamic.Interface
	disco     discovery.CachedDiscoveryInterface
	namespace string
	context   string
	clock     clock.PassiveClock
}

// NewReader returns a Reader for the cluster restConfig reaches, with Driftless installed in
// driftlessNamespace; contextName names the kubeconfig context for the page's header.
func NewReader(restConfig *rest.Config, driftlessNamespace, contextName string) (*Reader, error) {
	if driftlessNamespace == "" {
		return nil, errors.New("ui: the Driftless namespace is required")
	}
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", restConfig.Host, err)
	}
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", restConfig.Host, err)
	}
	return &Reader{kube: kube, dyn: dyn, disco: memory.NewMemCacheClient(kube.Discovery()),
		namespace: driftlessNamespace, context: contextName, clock: clock.RealClock{}}, nil
}

// Info is what the page's header shows: who is looking, at which cluster.
type Info struct {
	// User is the caller's user name, as the API server authenticates it.
	User string `json:"user"`
	// Groups are the caller's groups.
	Groups []string `json:"groups,omitempty"`
	// Context is the kubeconfig context.
	Context string `json:"context,omitempty"`
	// DriftlessNamespace is the namespace Driftless runs in.
	DriftlessNamespace string `json:"driftlessNamespace"`
	// Namespace is the namespace the views show first (-n); empty for all.
	Namespace string `json:"namespace,omitempty"`
	// PollMillis is how often the page refreshes.
	PollMillis int64 `json:"pollMillis"`
	// Error says why the caller could not be identified.
	Error string `json:"error,omitempty"`
}

// Info identifies the caller (SelfSubjectReview, which changes nothing).
func (r *Reader) Info(ctx context.Context) Info {
	info := Info{Context: r.context, DriftlessNamespace: r.namespace}
	review, err := r.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		info.Error = fmt.Sprintf("who you are is unknown (SelfSubjectReview): %v", err)
		return info
	}
	info.User, info.Groups = review.Status.UserInfo.Username, review.Status.UserInfo.Groups
	return info
}

// SourcesView is the sources page.
type SourcesView struct {
	// Now is the server's time when the view was read.
	Now time.Time `json:"now"`
	// Sources are the sources that have a status, by name.
	Sources []Source `json:"sources"`
	// Error says why the sources could not be read.
	Error string `json:"error,omitempty"`
}

// Source is one source on the sources page: its status, with its Ready condition spelled out.
// Its history is the status's: the last syncs, newest first.
type Source struct {
	reconciler.Status
	// Ready is whether the source's Ready condition is True (without conditions, whether the
	// last sync applied the revision).
	Ready bool `json:"ready"`
	// ReadyReason and ReadyMessage are the Ready condition's reason and message.
	ReadyReason  string `json:"readyReason,omitempty"`
	ReadyMessage string `json:"readyMessage,omitempty"`
}

// Sources reads every source's status.
func (r *Reader) Sources(ctx context.Context) SourcesView {
	v := SourcesView{Now: r.clock.Now(), Sources: []Source{}}
	statuses, err := reconciler.ReadStatus(ctx, r.dyn, r.namespace)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	for _, st := range statuses {
		s := Source{Status: st, Ready: st.Result == reconciler.ResultApplied}
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
			s.Ready, s.ReadyReason, s.ReadyMessage = c.Status == metav1.ConditionTrue, c.Reason, c.Message
		}
		if s.History == nil {
			s.History = []v1alpha1.RevisionRecord{}
		}
		v.Sources = append(v.Sources, s)
	}
	return v
}

// BreakGlassView is the break-glass page.
type BreakGlassView struct {
	// Now is the server's time when the view was read; time left counts from it.
	Now time.Time `json:"now"`
	// Active are the sessions in progress, soonest expiry first.
	Active []Session `json:"active"`
	// Ended are the latest ended sessions, newest first.
	Ended []Session `json:"ended"`
	// Error says why the record could not be read.
	Error string `json:"error,omitempty"`
}

// Session is a break-glass session; the page counts its time left down to Until from Now.
type Session struct {
	reconciler.BreakGlassSession
}

// maxEnded bounds the ended sessions shown.
const maxEnded = 20

// BreakGlass reads the break-glass record of every source and the objects the statuses list
// as held back, in namespace (all when empty). The patch of an active session is the one
// the source's status holds, rebased on the current Git.
func (r *Reader) BreakGlass(ctx context.Context, namespace string) BreakGlassView {
	now := r.clock.Now()
	v := BreakGlassView{Now: now, Active: []Session{}, Ended: []Session{}}
	sessions, err := reconciler.ReadBreakGlassHistory(ctx, r.dyn, r.namespace)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	statuses, err := reconciler.ReadStatus(ctx, r.dyn, r.namespace)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	held := map[string]reconciler.BreakGlassObject{}
	for _, st := range statuses {
		for _, bg := range st.BreakGlass {
			held[st.Source+"\x00"+bg.Object] = bg
		}
	}
	for _, s := range sessions {
		if namespace != "" && s.Ref.Namespace != namespace {
			continue
		}
		if !s.Active() {
			if len(v.Ended) < maxEnded {
				v.Ended = append(v.Ended, Session{BreakGlassSession: s})
			}
			continue
		}
		if bg, ok := held[s.Source+"\x00"+s.Object]; ok {
			s.Patch, s.Conflicts = bg.Patch, bg.Conflicts
			if !bg.Until.IsZero() {
				s.Until = bg.Until
			}
		}
		v.Active = append(v.Active, Session{BreakGlassSession: s})
	}
	slices.SortStableFunc(v.Active, func(a, b Session) int { return a.Until.Compare(b.Until) })
	return v
}

// LedgerFilter selects the ledger entries shown.
type LedgerFilter struct {
	// Namespace keeps the entries about objects in it; empty keeps all.
	Namespace string `json:"namespace"`
	// User keeps the entries whose user or author contains it, case-insensitively.
	User string `json:"user"`
	// Since is how far back from now.
	Since time.Duration `json:"-"`
	// SinceText is Since as given.
	SinceText string `json:"since"`
	// What keeps one category; empty keeps all.
	What string `json:"what"`
}

// Categories of ledger entries, as the page filters them.
const (
	CategoryDenied     = "denied"
	CategoryBreakGlass = "break-glass"
	CategorySafe       = "safe operation"
	CategoryRevert     = "revert"
	CategoryEnded      = "break-glass ended"
	CategoryRevision   = "revision applied"
)

var categories = []string{CategoryDenied, CategoryBreakGlass, CategorySafe, CategoryRevert, CategoryEnded, CategoryRevision}

// maxSince bounds how far back the ledger page reads.
const maxSince = 90 * 24 * time.Hour

// ParseLedgerFilter reads the ledger page's filter; since is a Go duration (default 24h).
func ParseLedgerFilter(namespace, user, since, what string) (LedgerFilter, error) {
	f := LedgerFilter{Namespace: strings.TrimSpace(namespace), User: strings.TrimSpace(user), SinceText: since, What: what}
	if since == "" {
		f.SinceText = "24h"
	}
	d, err := time.ParseDuration(f.SinceText)
	if err != nil || d <= 0 || d > maxSince {
		return f, fmt.Errorf("since %q: want a duration such as 1h or 24h, at most %s", since, maxSince)
	}
	f.Since = d
	if what != "" && !slices.Contains(categories, what) {
		return f, fmt.Errorf("what %q: want one of %s", what, strings.Join(categories, ", "))
	}
	return f, nil
}

// LedgerView is the ledger page.
type LedgerView struct {
	// Now is the server's time when the view was read.
	Now time.Time `json:"now"`
	// Filter is the filter applied.
	Filter LedgerFilter `json:"filter"`
	// Disabled says the installed configuration turns the ledger off.
	Disabled bool `json:"disabled"`
	// Entries are the matching entries, newest first, at most maxEntries.
	Entries []LedgerEntry `json:"entries"`
	// Matched counts every matching entry.
	Matched int `json:"matched"`
	// Notes say what the view could not show.
	Notes []string `json:"notes,omitempty"`
	// Error says why the ledger could not be read.
	Error string `json:"error,omitempty"`
}

// LedgerEntry is one ledger record with its category.
type LedgerEntry struct {
	ledger.Record
	// Category is one of the Category constants.
	Category string `json:"category"`
	// What names the object ("configmaps production/app").
	What string `json:"what"`
}

// maxEntries bounds the entries one ledger view returns.
const maxEntries = 500

// Ledger reads the ledger records that match f, newest first.
func (r *Reader) Ledger(ctx context.Context, f LedgerFilter) LedgerView {
	now := r.clock.Now()
	v := LedgerView{Now: now, Filter: f, Entries: []LedgerEntry{}}
	cfg, _, err := installation.Config(ctx, r.kube, r.namespace)
	switch {
	case err != nil:
		v.Notes = append(v.Notes, "whether the ledger is enabled is unknown: "+err.Error())
	case cfg.Ledger.Disabled:
		v.Disabled = true
	}
	records, unreadable, err := ledger.Read(ctx, r.kube, r.namespace, now.Add(-f.Since))
	if err != nil {
		v.Error = err.Error()
		return v
	}
	if unreadable > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d ledger lines could not be read", unreadable))
	}
	for i := len(records) - 1; i >= 0; i-- {
		e := LedgerEntry{Record: records[i], Category: category(records[i])}
		if e.Record.Type == ledger.TypeRevision {
			if e.Revision != nil {
				e.What = "revision " + e.Revision.Commit
			}
		} else {
			e.What = e.Object.String()
		}
		if !f.matches(e) {
			continue
		}
		v.Matched++
		if len(v.Entries) < maxEntries {
			v.Entries = append(v.Entries, e)
		}
	}
	return v
}

// category sorts a record as `driftless audit` does.
func category(rec ledger.Record) string {
	switch rec.Type {
	case ledger.TypeRevert:
		return CategoryRevert
	case ledger.TypeBreakGlassEnd:
		return CategoryEnded
	case ledger.TypeRevision:
		return CategoryRevision
	}
	switch {
	case rec.Decision == "denied" || rec.Decision == "warned" || rec.Decision == "recorded":
		return CategoryDenied
	case rec.BreakGlass != nil:
		return CategoryBreakGlass
	}
	return CategorySafe
}

func (f LedgerFilter) matches(e LedgerEntry) bool {
	if f.What != "" && e.Category != f.What {
		return false
	}
	if f.Namespace != "" && e.Object.Namespace != f.Namespace {
		return false
	}
	if f.User != "" {
		u := strings.ToLower(f.User)
		if !strings.Contains(strings.ToLower(e.User), u) && !strings.Contains(strings.ToLower(e.By), u) &&
			(e.Revision == nil || !strings.Contains(strings.ToLower(e.Revision.Author), u)) {
			return false
		}
	}
	return true
}
