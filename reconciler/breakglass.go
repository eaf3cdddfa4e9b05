package reconciler

import (
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// breakGlass is the break-glass of one live object, as the contract reads it.
type breakGlass = v1alpha1.BreakGlassClaim

// readBreakGlass reads u's break-glass annotations at now with the contract the guard and the
// command line share.
func readBreakGlass(u *unstructured.Unstructured, now time.Time, maxDuration time.Duration) breakGlass {
	return v1alpha1.ReadBreakGlass(u.GetAnnotations(), now, maxDuration)
}

// BreakGlassObject is an object left alone under an active break-glass.
type BreakGlassObject struct {
	// Object names the object.
	Object string `json:"object"`
	// By is who started the break-glass, from the driftless.dev/break-glass-by annotation;
	// empty when the annotation is not set.
	By string `json:"by,omitempty"`
	// Group is the break-glass group they acted as, from driftless.dev/break-glass-group.
	Group string `json:"group,omitempty"`
	// Managers names the field managers that set the break-glass and changed the object,
	// such as "driftless-break-glass, kubectl-edit".
	Managers string `json:"managers,omitempty"`
	// Reason is the break-glass reason, such as a ticket id.
	Reason string `json:"reason"`
	// Since is when the break-glass began.
	Since time.Time `json:"since,omitzero"`
	// Until is when the break-glass expires and the object is reverted to Git.
	Until time.Time `json:"until"`
	// Patch is the change made under the break-glass, rebased on the current Git, as a patch
	// to paste into the overlay; fields in Conflicts are left out.
	Patch string `json:"patch,omitempty"`
	// Conflicts are the fields both the break-glass and Git changed since it began.
	Conflicts []BreakGlassConflict `json:"conflicts,omitempty"`
}

// sortedBreakGlass returns the entries of m sorted by expiry, then object.
func sortedBreakGlass(m map[objKey]BreakGlassObject) []BreakGlassObject {
	out := make([]BreakGlassObject, 0, len(m))
	for _, b := range m {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Until.Equal(out[j].Until) {
			return out[i].Until.Before(out[j].Until)
		}
		return out[i].Object < out[j].Object
	})
	return out
}
