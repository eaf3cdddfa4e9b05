package webhook

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// exampleBreakGlassReason is the reason shown in the break-glass command of a denial.
const exampleBreakGlassReason = "INC-123: what and why"

// messageParts are the parts of denial messages that depend on configuration only, built once
// per configuration so that a denial only joins strings.
type messageParts struct {
	// owners maps a configured source to its "Owner" and first "Ways forward" lines.
	owners map[string]string
	// unmanaged is the same for objects no source applies.
	unmanaged string
	// breakGlassIntro introduces the break-glass way forward, or says it is disabled.
	breakGlassIntro string
	// breakGlassOutro explains what the break-glass command does.
	breakGlassOutro string
}

func newMessageParts(c *v1alpha1.DriftlessConfig) messageParts {
	p := messageParts{owners: make(map[string]string, len(c.Sources))}
	for _, s := range c.Sources {
		p.owners[s.Name] = ownerText(s.Name, s.URL, s.Path)
	}
	p.unmanaged = "Owner: no Driftless source applies this object yet; add it to the config repository.\nWays forward:\n  1. Change it in Git and merge; Driftless applies it.\n"
	bg := c.Guard.BreakGlass
	if len(bg.Groups) == 0 {
		p.breakGlassIntro = "  2. In an incident: break-glass is not enabled in this cluster (guard.breakGlass.groups is empty)."
		return p
	}
	p.breakGlassIntro = fmt.Sprintf("  2. In an incident, a member of %s may break glass for at most %s:\n     driftless break-glass",
		quoteList(bg.Groups), v1alpha1.ShortDuration(bg.MaxDuration.Duration))
	p.breakGlassOutro = fmt.Sprintf(" --reason %q --for 1h\n     (it sets %s=<reason> and %s=<RFC 3339 expiry>; Git's version returns when it expires)",
		exampleBreakGlassReason, v1alpha1.AnnotationBreakGlass, v1alpha1.AnnotationBreakGlassUntil)
	return p
}

// ownerText is the "Owner" and first "Ways forward" lines of an object source applies from
// url at path.
func ownerText(source, url, path string) string {
	return fmt.Sprintf("Owner: source %q, repository %s, path %s.\nWays forward:\n  1. Change it in Git under %s and merge; Driftless applies it.\n",
		source, v1alpha1.RedactURL(url), path, path)
}

// SourceLocator finds the repository and path of a source by its name, such as the GitSource
// of that name. Denials name them for sources not in the guard's configuration.
type SourceLocator interface {
	LocateSource(ctx context.Context, name string) (url, path string, ok bool)
}

// owner returns the "Owner" and first "Ways forward" lines for the object of f: its source's
// repository and path from the configuration or, for a GitSource, from locate.
func (r *rules) owner(ctx context.Context, f *facts, locate SourceLocator) string {
	source := f.sourceName()
	if owner, ok := r.messages.owners[source]; ok {
		return owner
	}
	if source == "" {
		return r.messages.unmanaged
	}
	if locate != nil {
		if url, path, ok := locate.LocateSource(ctx, source); ok {
			return ownerText(source, url, path)
		}
	}
	return fmt.Sprintf("Owner: source %q (no such source found).\nWays forward:\n  1. Change it in Git and merge; Driftless applies it.\n", source)
}

// denialMessage explains a denial: who tried what, why it is refused, what owns the object
// (owner, from [rules.owner]) and the two ways forward. It is what kubectl prints.
func (r *rules) denialMessage(f *facts, d decision, owner string) string {
	var b strings.Builder
	b.Grow(768)
	inNamespace := f.namespace != "" && f.resource.GroupResource() != namespacesResource
	b.WriteString("driftless: ")
	b.WriteString(f.user)
	b.WriteString(" may not ")
	b.WriteString(f.what())
	if inNamespace {
		b.WriteString(" in namespace ")
		b.WriteString(f.namespace)
	}
	b.WriteString(": ")
	b.WriteString(d.problem)
	b.WriteString(".\n")

	b.WriteString(owner)

	if f.operation == admissionv1.Create && f.subResource == "" {
		// Break-glass cannot create: following the advice must work.
		b.WriteString("  2. In an incident: break-glass covers only objects that exist; add a new object in Git.")
		return b.String()
	}
	b.WriteString(r.messages.breakGlassIntro)
	if r.messages.breakGlassOutro == "" {
		return b.String()
	}
	if inNamespace {
		b.WriteString(" -n ")
		b.WriteString(f.namespace)
	}
	b.WriteByte(' ')
	b.WriteString(f.resource.Resource)
	if f.resource.Group != "" {
		b.WriteByte('.')
		b.WriteString(f.resource.Group)
	}
	b.WriteByte('/')
	if name := f.displayName(); name != "" && !strings.HasSuffix(name, "*") {
		b.WriteString(name)
		b.WriteString(r.messages.breakGlassOutro)
		return b.String()
	}
	// A collection delete: break-glass is per object.
	b.WriteString("NAME")
	b.WriteString(r.messages.breakGlassOutro)
	b.WriteString("\n     (once for each object: break-glass covers one object at a time)")
	return b.String()
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
