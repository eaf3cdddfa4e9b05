package reconciler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// breakGlassState is what an object's break-glass annotations say at one moment.
type breakGlassState int

const (
	// breakGlassNone: the object carries no break-glass annotation.
	breakGlassNone breakGlassState = iota
	// breakGlassActive: a reason and an expiry in the future, within the maximum duration.
	breakGlassActive
	// breakGlassExpired: the expiry has passed.
	breakGlassExpired
	// breakGlassInvalid: an annotation is missing, empty, unparseable or too far away.
	breakGlassInvalid
)

// breakGlass is the break-glass of one live object.
type breakGlass struct {
	state  breakGlassState
	reason string
	until  time.Time
	// by is who started it, from the break-glass-by annotation; may be empty.
	by string
	// problem says why an invalid break-glass is not honoured.
	problem string
}

// readBreakGlass reads u's break-glass annotations at now. A break-glass is active when the
// reason is not empty and the expiry is an RFC 3339 time after now and no later than now plus
// maxDuration.
func readBreakGlass(u *unstructured.Unstructured, now time.Time, maxDuration time.Duration) breakGlass {
	ann := u.GetAnnotations()
	reason, hasReason := ann[v1alpha1.AnnotationBreakGlass]
	untilText, hasUntil := ann[v1alpha1.AnnotationBreakGlassUntil]
	if !hasReason && !hasUntil {
		return breakGlass{state: breakGlassNone}
	}
	bg := breakGlass{reason: strings.TrimSpace(reason), by: ann[v1alpha1.AnnotationBreakGlassBy]}
	if !hasUntil {
		bg.state, bg.problem = breakGlassInvalid, v1alpha1.AnnotationBreakGlassUntil+" is missing"
		return bg
	}
	until, err := time.Parse(time.RFC3339, strings.TrimSpace(untilText))
	if err != nil {
		bg.state, bg.problem = breakGlassInvalid, fmt.Sprintf("%s %q is not an RFC 3339 time", v1alpha1.AnnotationBreakGlassUntil, untilText)
		return bg
	}
	bg.until = until
	switch {
	case bg.reason == "":
		bg.state, bg.problem = breakGlassInvalid, v1alpha1.AnnotationBreakGlass+" (the reason) is empty"
	case !until.After(now):
		bg.state = breakGlassExpired
	case until.Sub(now) > maxDuration:
		bg.state, bg.problem = breakGlassInvalid, fmt.Sprintf("%s is more than %s away", v1alpha1.AnnotationBreakGlassUntil, maxDuration)
	default:
		bg.state = breakGlassActive
	}
	return bg
}

// BreakGlassObject is an object left alone under an active break-glass.
type BreakGlassObject struct {
	// Object names the object.
	Object string `json:"object"`
	// By is who started the break-glass, from the driftless.dev/break-glass-by annotation;
	// empty when the annotation is not set.
	By string `json:"by,omitempty"`
	// Managers names the field managers that set the break-glass and changed the object,
	// such as "driftless-break-glass, kubectl-edit".
	Managers string `json:"managers,omitempty"`
	// Reason is the break-glass reason, such as a ticket id.
	Reason string `json:"reason"`
	// Until is when the break-glass expires and the object is reverted to Git.
	Until time.Time `json:"until"`
	// Patch is the object's live difference from Git, as a patch to paste into the overlay.
	Patch string `json:"patch,omitempty"`
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
