package v1alpha1

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// BreakGlassState is what an object's break-glass annotations say at one moment.
type BreakGlassState int

// The states of a break-glass.
const (
	// BreakGlassNone: the object carries neither AnnotationBreakGlass nor
	// AnnotationBreakGlassUntil.
	BreakGlassNone BreakGlassState = iota
	// BreakGlassActive: a reason that is not blank and an expiry after now, no more than the
	// maximum duration ahead.
	BreakGlassActive
	// BreakGlassExpired: the expiry is now or has passed.
	BreakGlassExpired
	// BreakGlassInvalid: the reason or the expiry is missing, blank, not an RFC 3339 time, or
	// the expiry is more than the maximum duration ahead.
	BreakGlassInvalid
)

// String returns the state as status and logs print it.
func (s BreakGlassState) String() string {
	switch s {
	case BreakGlassActive:
		return "active"
	case BreakGlassExpired:
		return "expired"
	case BreakGlassInvalid:
		return "invalid"
	}
	return "none"
}

// BreakGlassClaim is what an object's break-glass annotations claim, read by [ReadBreakGlass].
// The guard, the reconciler and the command line all read break-glass through it, so they
// cannot disagree about whether a break-glass holds.
type BreakGlassClaim struct {
	// State says whether the break-glass holds.
	State BreakGlassState
	// Reason is AnnotationBreakGlass without surrounding white space.
	Reason string
	// Until is the expiry; zero when it is missing or unparseable.
	Until time.Time
	// By is AnnotationBreakGlassBy, who started the break-glass; empty when not recorded.
	By string
	// Group is AnnotationBreakGlassGroup, the break-glass group the requester acted as; empty
	// when not recorded.
	Group string
	// Problem says, in one sentence, why an expired or invalid break-glass does not hold.
	Problem string
}

// Holds reports whether the break-glass is active.
func (c BreakGlassClaim) Holds() bool { return c.State == BreakGlassActive }

// HasBreakGlass reports whether annotations carry AnnotationBreakGlass or
// AnnotationBreakGlassUntil, valid or not.
func HasBreakGlass(annotations map[string]string) bool {
	_, a := annotations[AnnotationBreakGlass]
	_, b := annotations[AnnotationBreakGlassUntil]
	return a || b
}

// BreakGlassAnnotations are the annotations a break-glass consists of. Removing all of them
// ends a break-glass.
var BreakGlassAnnotations = []string{AnnotationBreakGlass, AnnotationBreakGlassUntil, AnnotationBreakGlassBy, AnnotationBreakGlassGroup}

// ReadBreakGlass reads the break-glass that annotations claim at now, with maxDuration the
// longest break-glass allowed (the guard's guard.breakGlass.maxDuration). A break-glass is
// active when the reason is not blank and the expiry is an RFC 3339 time after now and no more
// than maxDuration ahead. White space around either value is ignored.
//
// It does not check who set the annotations: only the guard sees the requester, and it
// refuses a request whose AnnotationBreakGlassBy or AnnotationBreakGlassGroup does not match
// the requester, or whose requester is not in a break-glass group.
func ReadBreakGlass(annotations map[string]string, now time.Time, maxDuration time.Duration) BreakGlassClaim {
	if !HasBreakGlass(annotations) {
		return BreakGlassClaim{State: BreakGlassNone}
	}
	c := BreakGlassClaim{
		State:  BreakGlassInvalid,
		Reason: strings.TrimSpace(annotations[AnnotationBreakGlass]),
		By:     strings.TrimSpace(annotations[AnnotationBreakGlassBy]),
		Group:  strings.TrimSpace(annotations[AnnotationBreakGlassGroup]),
	}
	rawUntil, hasUntil := annotations[AnnotationBreakGlassUntil]
	rawUntil = strings.TrimSpace(rawUntil)
	switch {
	case c.Reason == "":
		c.Problem = fmt.Sprintf("break-glass needs a reason in %s, such as a ticket id", AnnotationBreakGlass)
		return c
	case !hasUntil || rawUntil == "":
		c.Problem = fmt.Sprintf("break-glass needs an expiry in %s (RFC 3339, at most %s ahead)", AnnotationBreakGlassUntil, ShortDuration(maxDuration))
		return c
	}
	until, err := time.Parse(time.RFC3339, rawUntil)
	if err != nil {
		c.Problem = fmt.Sprintf("%s=%q is not an RFC 3339 time such as %s", AnnotationBreakGlassUntil, rawUntil, now.Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339))
		return c
	}
	c.Until = until
	switch {
	case !until.After(now):
		c.State = BreakGlassExpired
		c.Problem = fmt.Sprintf("the break-glass expired at %s (now %s); a member of a break-glass group may start a new one", until.UTC().Format(time.RFC3339), now.UTC().Truncate(time.Second).Format(time.RFC3339))
	case until.Sub(now) > maxDuration:
		c.Problem = fmt.Sprintf("%s=%s is more than the maximum of %s ahead (latest allowed now: %s)", AnnotationBreakGlassUntil, rawUntil, ShortDuration(maxDuration), now.Add(maxDuration).UTC().Truncate(time.Second).Format(time.RFC3339))
	default:
		c.State = BreakGlassActive
	}
	return c
}

// ShortDuration prints d without zero minutes and seconds: 4h rather than 4h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// controllerFieldManagers are the field managers of Kubernetes' own components.
var controllerFieldManagers = []string{"kube-controller-manager", "kube-scheduler", "kubelet", "kube-apiserver", "cloud-controller-manager"}

// IsControllerFieldManager reports whether a field manager's name is a controller's rather
// than a person's tool: one of Kubernetes' own components, or a name ending in "-controller"
// or "-controller-manager", the convention of controllers built with controller-runtime and
// client-go. When a break-glass session ends, the reconciler takes over the fields written
// during it by every other manager, so that its next apply puts Git's values back; a
// controller's fields are left to it. The guard refuses break-glass writes under such names.
func IsControllerFieldManager(manager string) bool {
	return slices.Contains(controllerFieldManagers, manager) ||
		strings.HasSuffix(manager, "-controller") || strings.HasSuffix(manager, "-controller-manager")
}
