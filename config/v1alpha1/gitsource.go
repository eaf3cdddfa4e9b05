package v1alpha1

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SuspendAnnotations are the annotations a time-boxed suspension of a GitSource consists of.
// The reconciler removes all of them when the suspension expires.
var SuspendAnnotations = []string{AnnotationSuspend, AnnotationSuspendUntil, AnnotationSuspendBy}

// ReadSuspension reads the suspension a GitSource's annotations claim at now, with
// maxDuration the longest allowed (the guard's guard.breakGlass.maxDuration). A suspension is
// an exception like a break-glass and follows its rules, read by the same code: active when
// AnnotationSuspend gives a reason that is not blank and AnnotationSuspendUntil an RFC 3339
// time after now and no more than maxDuration ahead. The claim's By is AnnotationSuspendBy
// and its Problem names the suspend annotations.
func ReadSuspension(annotations map[string]string, now time.Time, maxDuration time.Duration) BreakGlassClaim {
	as := map[string]string{}
	for from, to := range map[string]string{
		AnnotationSuspend:      AnnotationBreakGlass,
		AnnotationSuspendUntil: AnnotationBreakGlassUntil,
		AnnotationSuspendBy:    AnnotationBreakGlassBy,
	} {
		if v, ok := annotations[from]; ok {
			as[to] = v
		}
	}
	c := ReadBreakGlass(as, now, maxDuration)
	c.Problem = strings.NewReplacer(
		AnnotationBreakGlassUntil, AnnotationSuspendUntil,
		AnnotationBreakGlass, AnnotationSuspend,
		"a member of a break-glass group may start a new one", "a member of a break-glass group may suspend it again",
		"break-glass", "suspension",
	).Replace(c.Problem)
	return c
}

// SourceFromGitSource returns the source a GitSource declares, named after it. Credentials
// and keyrings are references to Secrets the caller resolves: the result has no Auth and no
// Verify.
func SourceFromGitSource(gs *GitSource) Source {
	s := gs.Spec
	src := Source{
		Name:            gs.Name,
		URL:             s.URL,
		Ref:             s.Ref,
		Path:            s.Path,
		Interval:        s.Interval,
		Timeout:         s.Timeout,
		Prune:           s.Prune,
		SelfHeal:        s.SelfHeal,
		TargetNamespace: s.TargetNamespace,
		PolicySet:       s.PolicySet,
		Adopt:           s.Adopt,
		Limits:          *s.Limits.DeepCopy(),
	}
	setSourceDefaults(&src)
	return src
}

// GitSourceForSource returns the GitSource that mirrors a source of the configuration file,
// in namespace, labelled LabelFromConfig. Auth and Verify name files, which a GitSource
// cannot: the controller takes them from the configuration's source of the same name.
func GitSourceForSource(src Source, namespace string) *GitSource {
	gs := &GitSource{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: GitSourceKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: src.Name, Namespace: namespace,
			Labels: map[string]string{LabelFromConfig: "true"},
		},
		Spec: GitSourceSpec{
			URL:             src.URL,
			Ref:             src.Ref,
			Path:            src.Path,
			Interval:        src.Interval,
			Timeout:         src.Timeout,
			Prune:           src.Prune,
			SelfHeal:        src.SelfHeal,
			TargetNamespace: src.TargetNamespace,
			PolicySet:       src.PolicySet,
			Adopt:           src.Adopt,
			Limits:          *src.Limits.DeepCopy(),
		},
	}
	if gs.Spec.Path == "." {
		gs.Spec.Path = ""
	}
	return gs
}
