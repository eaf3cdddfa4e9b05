package webhook

import (
	"fmt"
	"strings"
	"time"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// exampleBreakGlassReason is the reason shown in the break-glass command of a denial.
const exampleBreakGlassReason = "INC-123: what and why"

// denialMessage explains a denial: who tried what, why it is refused, what owns the object
// and the two ways forward. It is what kubectl prints.
func (r *rules) denialMessage(f *facts, d decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "driftless: %s may not %s", f.user, f.what())
	if f.namespace != "" && f.resource.GroupResource() != namespacesResource {
		fmt.Fprintf(&b, " in namespace %s", f.namespace)
	}
	fmt.Fprintf(&b, ": %s.\n", d.problem)

	source := f.sourceName()
	s, known := r.sources[source]
	switch {
	case known:
		fmt.Fprintf(&b, "Owner: source %q, repository %s, path %s.\n", source, v1alpha1.RedactURL(s.URL), s.Path)
	case source != "":
		fmt.Fprintf(&b, "Owner: source %q (not in this guard's configuration).\n", source)
	default:
		b.WriteString("Owner: no Driftless source applies this object yet; add it to the config repository.\n")
	}

	b.WriteString("Ways forward:\n")
	if known {
		fmt.Fprintf(&b, "  1. Change it in Git under %s and merge; Driftless applies it.\n", s.Path)
	} else {
		b.WriteString("  1. Change it in Git and merge; Driftless applies it.\n")
	}
	if len(r.breakGlassGroups) == 0 {
		b.WriteString("  2. In an incident: break-glass is not enabled in this cluster (guard.breakGlass.groups is empty).")
		return b.String()
	}
	fmt.Fprintf(&b, "  2. In an incident, a member of %s may break glass for at most %s:\n", quoteList(r.breakGlassGroups), shortDuration(r.maxBreakGlass))
	ns := ""
	if f.namespace != "" && f.resource.GroupResource() != namespacesResource {
		ns = " -n " + f.namespace
	}
	fmt.Fprintf(&b, "     driftless break-glass%s %s/%s --reason %q --for 1h\n", ns, f.resource.Resource, f.name, exampleBreakGlassReason)
	fmt.Fprintf(&b, "     (it sets %s=<reason> and %s=<RFC 3339 expiry>; Git's version returns when it expires)", v1alpha1.AnnotationBreakGlass, v1alpha1.AnnotationBreakGlassUntil)
	return b.String()
}

// shortDuration prints d without zero minutes and seconds: 2h, 90m, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("group %q", s)
	}
	return strings.Join(q, " or ")
}

// warnings splits a message into admission warnings: one per line, as the API server sends
// each warning as a single header value.
func warnings(msg string) []string {
	lines := strings.Split(msg, "\n")
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
