package v1alpha1

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxBreakGlassDuration is the upper bound for guard.breakGlass.maxDuration: a break-glass is
// an incident measure, not a standing exception.
const MaxBreakGlassDuration = 7 * 24 * time.Hour

// MinInterval is the shortest sync interval a source may have.
const MinInterval = time.Second

// Validate checks a defaulted configuration and returns every problem with its field path.
func Validate(c *DriftlessConfig) field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	if c.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	errs = append(errs, validateServiceAccount(c.Reconciler.ServiceAccount, field.NewPath("reconciler", "serviceAccount"))...)
	errs = append(errs, validatePolicySets(c.PolicySets, field.NewPath("policySets"))...)
	errs = append(errs, validateSources(c.Sources, policySetNames(c.PolicySets), field.NewPath("sources"))...)
	errs = append(errs, validateGuard(&c.Guard, c.Reconciler.ServiceAccount.Namespace, field.NewPath("guard"))...)
	if c.Guard.PolicySet != "" && !policySetNames(c.PolicySets).Has(c.Guard.PolicySet) {
		errs = append(errs, field.NotFound(field.NewPath("guard", "policySet"), c.Guard.PolicySet))
	}
	errs = append(errs, validateLedger(&c.Ledger, field.NewPath("ledger"))...)
	return errs
}

// Bounds of the ledger's settings.
const (
	// MinLedgerMaxSize is the smallest ledger.maxSize: a few of the ledger's ConfigMaps.
	MinLedgerMaxSize = 1 << 20
	// MaxLedgerMaxSize is the largest ledger.maxSize: the ledger must not crowd etcd.
	MaxLedgerMaxSize = 1 << 30
	// MinLedgerFlushInterval and MaxLedgerFlushInterval bound ledger.flushInterval.
	MinLedgerFlushInterval = 100 * time.Millisecond
	MaxLedgerFlushInterval = 10 * time.Minute
	// MaxLedgerQueue bounds ledger.bufferSize and ledger.sink.queueSize.
	MaxLedgerQueue = 1000000
)

func validateLedger(l *Ledger, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if d := l.Retention.Duration; d < time.Hour {
		errs = append(errs, field.Invalid(p.Child("retention"), d.String(), "must be at least 1h"))
	}
	if v := l.MaxSize.Value(); v < MinLedgerMaxSize || v > MaxLedgerMaxSize {
		errs = append(errs, field.Invalid(p.Child("maxSize"), l.MaxSize.String(), "must be at least 1Mi and at most 1Gi"))
	}
	if d := l.FlushInterval.Duration; d < MinLedgerFlushInterval || d > MaxLedgerFlushInterval {
		errs = append(errs, field.Invalid(p.Child("flushInterval"), d.String(), fmt.Sprintf("must be at least %s and at most %s", MinLedgerFlushInterval, MaxLedgerFlushInterval)))
	}
	if l.BufferSize <= 0 || l.BufferSize > MaxLedgerQueue {
		errs = append(errs, field.Invalid(p.Child("bufferSize"), l.BufferSize, fmt.Sprintf("must be more than 0 and at most %d", MaxLedgerQueue)))
	}
	s := l.Sink
	if s == nil {
		return errs
	}
	sp := p.Child("sink")
	if u, err := url.Parse(s.URL); s.URL == "" {
		errs = append(errs, field.Required(sp.Child("url"), ""))
	} else if err != nil || u.Host == "" {
		errs = append(errs, field.Invalid(sp.Child("url"), RedactURL(s.URL), "not a valid URL"))
	} else if u.Scheme != "https" {
		errs = append(errs, field.NotSupported(sp.Child("url"), u.Scheme, []string{"https"}))
	} else if u.User != nil {
		errs = append(errs, field.Invalid(sp.Child("url"), RedactURL(s.URL), "must not carry credentials; records are signed with keyFile"))
	}
	if strings.TrimSpace(s.KeyFile) == "" {
		errs = append(errs, field.Required(sp.Child("keyFile"), "records are signed with the key in this file"))
	}
	if d := s.Timeout.Duration; d <= 0 || d > 5*time.Minute {
		errs = append(errs, field.Invalid(sp.Child("timeout"), d.String(), "must be more than 0 and at most 5m"))
	}
	if s.QueueSize <= 0 || s.QueueSize > MaxLedgerQueue {
		errs = append(errs, field.Invalid(sp.Child("queueSize"), s.QueueSize, fmt.Sprintf("must be more than 0 and at most %d", MaxLedgerQueue)))
	}
	if d := s.MaxBackoff.Duration; d < 100*time.Millisecond || d > time.Hour {
		errs = append(errs, field.Invalid(sp.Child("maxBackoff"), d.String(), "must be at least 100ms and at most 1h"))
	}
	return errs
}

func validateServiceAccount(sa ServiceAccountRef, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateDNSLabel(sa.Namespace, p.Child("namespace"))...)
	for _, msg := range validation.IsDNS1123Subdomain(sa.Name) {
		errs = append(errs, field.Invalid(p.Child("name"), sa.Name, msg))
	}
	return errs
}

func validateDNSLabel(v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func validatePolicySets(policySets []PolicySet, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, ps := range policySets {
		np := p.Index(i).Child("name")
		errs = append(errs, validateDNSLabel(ps.Name, np)...)
		if seen.Has(ps.Name) {
			errs = append(errs, field.Duplicate(np, ps.Name))
		}
		seen.Insert(ps.Name)
		for j, pkg := range ps.Packages {
			if pkg == "" || strings.HasPrefix(pkg, "driftless") || strings.ContainsAny(pkg, " /") {
				errs = append(errs, field.Invalid(p.Index(i).Child("packages").Index(j), pkg, "must be a Rego package name outside driftless.*"))
			}
		}
		for j, path := range ps.Paths {
			if strings.TrimSpace(path) == "" {
				errs = append(errs, field.Required(p.Index(i).Child("paths").Index(j), "path must not be empty"))
			}
		}
	}
	return errs
}

func policySetNames(policySets []PolicySet) sets.Set[string] {
	names := sets.New[string]()
	for _, ps := range policySets {
		names.Insert(ps.Name)
	}
	return names
}

func validateSources(sources []Source, policySets sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i := range sources {
		s := &sources[i]
		sp := p.Index(i)
		errs = append(errs, validateDNSLabel(s.Name, sp.Child("name"))...)
		if seen.Has(s.Name) {
			errs = append(errs, field.Duplicate(sp.Child("name"), s.Name))
		}
		seen.Insert(s.Name)
		errs = append(errs, validateGitURL(s.URL, sp.Child("url"))...)
		errs = append(errs, validateRef(s.Ref, sp.Child("ref"))...)
		if path.IsAbs(s.Path) || strings.HasPrefix(path.Clean(s.Path), "..") {
			errs = append(errs, field.Invalid(sp.Child("path"), s.Path, "must be a relative path inside the repository"))
		}
		if s.Interval.Duration < MinInterval {
			errs = append(errs, field.Invalid(sp.Child("interval"), s.Interval.Duration.String(), fmt.Sprintf("must be at least %s", MinInterval)))
		}
		if s.Timeout.Duration <= 0 {
			errs = append(errs, field.Invalid(sp.Child("timeout"), s.Timeout.Duration.String(), "must be more than 0"))
		}
		if s.TargetNamespace != "" {
			errs = append(errs, validateDNSLabel(s.TargetNamespace, sp.Child("targetNamespace"))...)
		}
		if s.PolicySet != "" && !policySets.Has(s.PolicySet) {
			errs = append(errs, field.NotFound(sp.Child("policySet"), s.PolicySet))
		}
		if s.Auth != nil {
			errs = append(errs, validateAuth(s.Auth, sp.Child("auth"))...)
		}
		if s.Verify != nil && len(s.Verify.KeyringFiles) == 0 {
			errs = append(errs, field.Required(sp.Child("verify", "keyringFiles"), "verification needs at least one keyring"))
		}
		errs = append(errs, validateLimits(&s.Limits, sp.Child("limits"))...)
	}
	return errs
}

// MaxLimitSize is the largest size limit a source may set: beyond it the limits would not
// protect the reconciler's memory or disk.
const MaxLimitSize = 64 << 30

func validateLimits(l *Limits, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, q := range []struct {
		name string
		q    resource.Quantity
	}{
		{"maxRepositorySize", l.MaxRepositorySize},
		{"maxFileSize", l.MaxFileSize},
		{"maxRenderedSize", l.MaxRenderedSize},
	} {
		if v := q.q.Value(); v <= 0 || v > MaxLimitSize {
			errs = append(errs, field.Invalid(p.Child(q.name), q.q.String(), "must be more than 0 and at most 64Gi"))
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{{"maxFiles", l.MaxFiles}, {"maxObjects", l.MaxObjects}} {
		if n.v <= 0 {
			errs = append(errs, field.Invalid(p.Child(n.name), n.v, "must be more than 0"))
		}
	}
	if l.MaxFileSize.Cmp(l.MaxRepositorySize) > 0 {
		errs = append(errs, field.Invalid(p.Child("maxFileSize"), l.MaxFileSize.String(), "must not be more than maxRepositorySize"))
	}
	return errs
}

func validateAuth(a *GitAuth, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	https := a.Username != "" || a.PasswordFile != "" || a.BearerTokenFile != ""
	ssh := a.SSHPrivateKeyFile != "" || a.SSHKnownHostsFile != ""
	switch {
	case https && ssh:
		errs = append(errs, field.Invalid(p, "https and ssh", "use either HTTPS credentials or an SSH key, not both"))
	case a.PasswordFile != "" && a.BearerTokenFile != "":
		errs = append(errs, field.Invalid(p.Child("bearerTokenFile"), a.BearerTokenFile, "use either passwordFile or bearerTokenFile"))
	case (a.Username == "") != (a.PasswordFile == ""):
		errs = append(errs, field.Required(p.Child("passwordFile"), "username and passwordFile go together"))
	case ssh && (a.SSHPrivateKeyFile == "" || a.SSHKnownHostsFile == ""):
		errs = append(errs, field.Required(p.Child("sshKnownHostsFile"), "an SSH key needs a known_hosts file that pins the server"))
	}
	return errs
}

func validateGitURL(raw string, p *field.Path) field.ErrorList {
	if raw == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if strings.HasPrefix(raw, "/") {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Never echo a URL that may carry credentials.
		return field.ErrorList{field.Invalid(p, RedactURL(raw), "not a valid URL")}
	}
	switch u.Scheme {
	case "https", "http", "ssh", "file":
	default:
		return field.ErrorList{field.NotSupported(p, u.Scheme, []string{"https", "http", "ssh", "file"})}
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return field.ErrorList{field.Invalid(p, RedactURL(raw), "must not carry a password; use the source's auth files")}
		}
	}
	return nil
}

func validateRef(r GitRef, p *field.Path) field.ErrorList {
	set := 0
	for _, v := range []string{r.Branch, r.Tag, r.Commit} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return field.ErrorList{field.Invalid(p, r, "exactly one of branch, tag or commit must be set")}
	}
	if r.Commit != "" && !isHexSHA(r.Commit) {
		return field.ErrorList{field.Invalid(p.Child("commit"), r.Commit, "must be a full 40-character hexadecimal commit SHA")}
	}
	return nil
}

func isHexSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func validateGuard(g *Guard, ownNamespace string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch g.Mode {
	case ModeEnforce, ModeWarn, ModeDryRun:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), g.Mode, []string{string(ModeEnforce), string(ModeWarn), string(ModeDryRun)}))
	}
	protected := sets.New[string]()
	for i, ns := range g.ProtectedNamespaces {
		np := p.Child("protectedNamespaces").Index(i)
		errs = append(errs, validateDNSLabel(ns, np)...)
		if protected.Has(ns) {
			errs = append(errs, field.Duplicate(np, ns))
		}
		if ns == ownNamespace {
			errs = append(errs, field.Invalid(np, ns, "the reconciler's own namespace must stay exempt, or the guard could lock itself out"))
		}
		protected.Insert(ns)
	}
	for i, ns := range g.ExemptNamespaces {
		np := p.Child("exemptNamespaces").Index(i)
		errs = append(errs, validateDNSLabel(ns, np)...)
		if protected.Has(ns) {
			errs = append(errs, field.Invalid(np, ns, "namespace is also listed in guard.protectedNamespaces"))
		}
	}
	errs = append(errs, validateIdentities(g.ControllerIdentities, p.Child("controllerIdentities"))...)
	for i, gr := range g.IgnoredResources {
		rp := p.Child("ignoredResources").Index(i)
		if gr.Resource == "" || strings.ContainsAny(gr.Resource, "/*") {
			errs = append(errs, field.Invalid(rp.Child("resource"), gr.Resource, "must be a plural resource name without subresource or wildcard"))
		}
		if strings.Contains(gr.Group, "*") {
			errs = append(errs, field.Invalid(rp.Child("group"), gr.Group, "wildcards are not allowed"))
		}
	}
	bp := p.Child("breakGlass")
	for i, grp := range g.BreakGlass.Groups {
		if strings.TrimSpace(grp) == "" {
			errs = append(errs, field.Required(bp.Child("groups").Index(i), "group name must not be empty"))
		}
		if strings.HasPrefix(grp, "system:") {
			errs = append(errs, field.Invalid(bp.Child("groups").Index(i), grp, "system groups are too broad for break-glass"))
		}
	}
	if d := g.BreakGlass.MaxDuration.Duration; d <= 0 || d > MaxBreakGlassDuration {
		errs = append(errs, field.Invalid(bp.Child("maxDuration"), d.String(), fmt.Sprintf("must be more than 0 and at most %s", MaxBreakGlassDuration)))
	}
	if d := g.BreakGlass.Retention.Duration; d < 0 {
		errs = append(errs, field.Invalid(bp.Child("retention"), d.String(), "must not be negative"))
	}
	for _, o := range g.SafeOperations.all() {
		gp := p.Child("safeOperations", o.name, "groups")
		seen := sets.New[string]()
		for i, grp := range o.op.Groups {
			switch {
			case strings.TrimSpace(grp) == "":
				errs = append(errs, field.Required(gp.Index(i), "group name must not be empty"))
			case seen.Has(grp):
				errs = append(errs, field.Duplicate(gp.Index(i), grp))
			}
			seen.Insert(grp)
		}
	}
	return errs
}

func validateIdentities(ids Identities, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, u := range ids.Usernames {
		if strings.TrimSpace(u) == "" {
			errs = append(errs, field.Required(p.Child("usernames").Index(i), "username must not be empty"))
		}
	}
	for i, g := range ids.Groups {
		gp := p.Child("groups").Index(i)
		switch {
		case strings.TrimSpace(g) == "":
			errs = append(errs, field.Required(gp, "group must not be empty"))
		case g == "system:authenticated" || g == "system:masters" || g == "system:serviceaccounts":
			errs = append(errs, field.Invalid(gp, g, "would exempt far more than one controller"))
		}
	}
	return errs
}

// RedactURL returns raw with any user information replaced, so it is safe to log or print.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		if u.User != nil {
			u.User = url.User("redacted")
		}
		return u.String()
	}
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	prefix := ""
	if i := strings.Index(raw, "://"); i >= 0 && i < at {
		prefix = raw[:i+3]
	}
	return prefix + "redacted@" + raw[at+1:]
}
