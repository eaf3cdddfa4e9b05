package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
)

// defaultNamespace is evaluated when Options.Namespaces is empty.
const defaultNamespace = "main"

// Engine compiles policies once per Load and evaluates Kubernetes objects
// against the compiled set. The zero value is not usable; call New. An Engine
// is safe for concurrent use: evaluations run in parallel with each other and
// with Load, and each sees one whole compiled set.
type Engine struct {
	// mu serialises Load so compiled sets are installed in call order.
	mu      sync.Mutex
	current atomic.Pointer[compiledSet]
}

// compiledSet is one successful Load: immutable once built.
type compiledSet struct {
	rules   []RuleRef
	modules []string
	// byKind holds the query for objects of a kind that some built-in rule
	// is restricted to; other serves every other kind.
	byKind map[string]*kindQuery
	other  *kindQuery
	// seeds are the documents that depend only on the parameters, computed
	// once by Load (seed.go); nil when there are none.
	seeds *seedNode
	// caches holds emptied evaluation caches (*seededCache) for reuse.
	caches sync.Pool
}

// cache returns an empty evaluation cache over the set's seeds.
func (s *compiledSet) cache() *seededCache {
	if c, ok := s.caches.Get().(*seededCache); ok {
		return c
	}
	return newSeededCache(s.seeds)
}

// release empties c once its evaluation is over and keeps it for another.
func (s *compiledSet) release(c *seededCache) {
	if c.reset() {
		s.caches.Put(c)
	}
}

// kindQuery is the prepared query over the rules that can fire on a kind:
// every rule not restricted to kinds, and the built-in rules whose kinds
// include it. Prepared once per Load, shared by kinds with the same rules.
type kindQuery struct {
	query rego.PreparedEvalQuery
	// rules are the queried rules, in the order of the query's results.
	rules []RuleRef
	// libraryOnly says every queried rule is built in: none reads status,
	// so the input leaves it out.
	libraryOnly bool
}

// queryFor returns the query for an object's kind.
func (s *compiledSet) queryFor(obj map[string]any) *kindQuery {
	if kind, ok := obj["kind"].(string); ok {
		if q, ok := s.byKind[kind]; ok {
			return q
		}
	}
	return s.other
}

// New returns an Engine with no policy loaded: until Load succeeds, Evaluate
// returns ErrNoPolicy.
func New() *Engine {
	return &Engine{}
}

// Load reads, parses and compiles the policies opts names, prepares the
// evaluation query and then installs the result atomically; calling it again
// (after a policy file or the configuration changed) is how to reload.
// Evaluations already running finish on the set they started with. On any
// error the previously loaded set keeps serving; parse and compile problems
// are returned as a *CompileError naming file:line:col.
func (e *Engine) Load(ctx context.Context, opts Options) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	set, err := compile(ctx, opts)
	if err != nil {
		return err
	}
	e.current.Store(set)
	return nil
}

// Rules returns the rules the loaded set evaluates, sorted by package and
// name, or ErrNoPolicy before the first successful Load.
func (e *Engine) Rules() ([]RuleRef, error) {
	set := e.current.Load()
	if set == nil {
		return nil, ErrNoPolicy
	}
	return slices.Clone(set.rules), nil
}

// Modules returns the files the loaded set was compiled from, sorted, or
// ErrNoPolicy before the first successful Load.
func (e *Engine) Modules() ([]string, error) {
	set := e.current.Load()
	if set == nil {
		return nil, ErrNoPolicy
	}
	return slices.Clone(set.modules), nil
}

// Evaluate checks one object against the loaded policies. It returns
// ErrNoPolicy before the first successful Load and an error wrapping
// ctx.Err() when ctx ends during evaluation.
func (e *Engine) Evaluate(ctx context.Context, obj map[string]any, ec EvalContext) (Result, error) {
	set := e.current.Load()
	if set == nil {
		return Result{}, ErrNoPolicy
	}
	return set.evaluate(ctx, obj, ec.term(), nil)
}

// EvaluateAll checks every object of a rendered revision against one compiled
// set, in parallel up to GOMAXPROCS, and returns the results in the order of
// objs. The first error stops the remaining evaluations and is returned with
// the index of its object.
func (e *Engine) EvaluateAll(ctx context.Context, objs []map[string]any, ec EvalContext) ([]Result, error) {
	set := e.current.Load()
	if set == nil {
		return nil, ErrNoPolicy
	}
	if len(objs) == 0 {
		return nil, nil
	}
	ctxTerm := ec.term()
	results := make([]Result, len(objs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One OPA cancellation for every evaluation of the revision, set when
	// ctx ends, instead of a watching goroutine per evaluation.
	stop := topdown.NewCancel()
	defer context.AfterFunc(ctx, stop.Cancel)()

	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	workers := min(runtime.GOMAXPROCS(0), len(objs))
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(objs) {
					return
				}
				res, err := set.evaluate(ctx, objs[i], ctxTerm, stop)
				if err != nil {
					once.Do(func() {
						firstErr = fmt.Errorf("object %d: %w", i, err)
						cancel()
					})
					return
				}
				results[i] = res
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("evaluate revision: %w", err)
	}
	return results, nil
}

// evaluate runs the prepared query of the object's kind for one object.
// stop is set when ctx ends: OPA polls it to abandon the evaluation; when it
// is nil, evaluate makes its own.
func (s *compiledSet) evaluate(ctx context.Context, obj map[string]any, ctxTerm *ast.Term, stop topdown.Cancel) (Result, error) {
	res := Result{Object: objectRef(obj)}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("evaluate %s: %w", res.Object, err)
	}
	q := s.queryFor(obj)
	if len(q.rules) == 0 {
		return res, nil
	}
	if stop == nil {
		own := topdown.NewCancel()
		defer context.AfterFunc(ctx, own.Cancel)()
		stop = own
	}
	input, err := inputValue(obj, q.libraryOnly)
	if err != nil {
		return res, fmt.Errorf("convert %s to rego input: %w", res.Object, err)
	}
	// Emptying the cache when evaluate returns drops its references to this
	// evaluation's documents without changing them: the results, which may
	// share their terms, stay intact.
	cache := s.cache()
	defer s.release(cache)
	opts := []rego.EvalOption{
		rego.EvalParsedInput(input),
		rego.EvalGenerateJSON(keepTerm),
		rego.EvalExternalCancel(stop),
		// Nothing reads OPA's timers and counters: skip recording them.
		rego.EvalMetrics(metrics.NoOp()),
		rego.EvalVirtualCache(cache),
	}
	rs, err := q.query.Eval(withEvalContext(ctx, ctxTerm), opts...)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return res, fmt.Errorf("evaluate %s: %w", res.Object, ctxErr)
		}
		return res, fmt.Errorf("evaluate %s: %w", res.Object, err)
	}
	if len(rs) != 1 {
		return res, fmt.Errorf("evaluate %s: query returned %d results, want 1", res.Object, len(rs))
	}
	t, _ := rs[0].Bindings[resultVar].(*ast.Term)
	var values *ast.Array
	if t != nil {
		values, _ = t.Value.(*ast.Array)
	}
	if values == nil || values.Len() != len(q.rules) {
		return res, fmt.Errorf("evaluate %s: unexpected query result %v", res.Object, rs[0].Bindings[resultVar])
	}
	for i, rule := range q.rules {
		defined, _ := values.Elem(i).Value.(*ast.Array)
		if defined == nil || defined.Len() == 0 || noViolations(defined.Elem(0).Value) {
			continue
		}
		// Only the values of rules that produced something become Go values.
		value, err := ast.JSON(defined.Elem(0).Value)
		if err != nil {
			return res, fmt.Errorf("evaluate %s: rule %s: %w", res.Object, rule, err)
		}
		vs, err := violations(rule, value)
		if err != nil {
			return res, fmt.Errorf("evaluate %s: %w", res.Object, err)
		}
		res.Violations = append(res.Violations, vs...)
	}
	sortViolations(res.Violations)
	return res, nil
}

// noViolations reports whether a rule's value is an empty set or array,
// which violations turns into no Violations (a deny rule that matched
// nothing): such values need no conversion.
func noViolations(v ast.Value) bool {
	switch v := v.(type) {
	case ast.Set:
		return v.Len() == 0
	case *ast.Array:
		return v.Len() == 0
	}
	return false
}

// keepTerm makes an evaluation's results Rego terms rather than Go values,
// so that evaluate converts only the rules that produced something.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// violations turns one rule's value into Violations: a set or array of
// messages or {msg, ...} objects, a single message or object, or a boolean.
func violations(rule RuleRef, value any) ([]Violation, error) {
	switch v := value.(type) {
	case bool:
		if !v {
			return nil, nil
		}
		return []Violation{{Package: rule.Package, Rule: rule.Rule, Severity: rule.Severity, Message: rule.String() + " is true"}}, nil
	case []any:
		out := make([]Violation, 0, len(v))
		for _, item := range v {
			viol, err := violation(rule, item)
			if err != nil {
				return nil, err
			}
			out = append(out, viol)
		}
		return out, nil
	default:
		viol, err := violation(rule, value)
		if err != nil {
			return nil, err
		}
		return []Violation{viol}, nil
	}
}

func violation(rule RuleRef, value any) (Violation, error) {
	out := Violation{Package: rule.Package, Rule: rule.Rule, Severity: rule.Severity}
	switch v := value.(type) {
	case string:
		out.Message = v
		return out, nil
	case map[string]any:
		msg, ok := v["msg"].(string)
		if !ok {
			return out, fmt.Errorf("rule %s: result object has no string msg field", rule)
		}
		out.Message = msg
		for k, d := range v {
			if k == "msg" {
				continue
			}
			if out.Details == nil {
				out.Details = make(map[string]any, len(v)-1)
			}
			out.Details[k] = d
		}
		return out, nil
	default:
		return out, fmt.Errorf("rule %s: result of type %T is neither a message string nor an object with msg", rule, value)
	}
}

func severityRank(s Severity) int {
	if s == SeverityDeny {
		return 0
	}
	return 1
}

func sortViolations(vs []Violation) {
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := vs[i], vs[j]
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra != rb {
			return ra < rb
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
}

// objectRef reads the identifying fields of an object, leaving malformed
// ones empty.
func objectRef(obj map[string]any) ObjectRef {
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return s
	}
	ref := ObjectRef{APIVersion: str(obj, "apiVersion"), Kind: str(obj, "kind")}
	if md, ok := obj["metadata"].(map[string]any); ok {
		ref.Namespace, ref.Name = str(md, "namespace"), str(md, "name")
	}
	return ref
}

// resultVar is the query variable holding one entry per rule.
const resultVar = "r"

// compile builds a compiledSet from opts without touching any Engine.
func compile(ctx context.Context, opts Options) (*compiledSet, error) {
	return compileSet(ctx, opts, true)
}

// compileSet is compile; without optimised every object is given every rule
// and nothing is computed ahead (the reference the kind dispatch and the
// seeds are tested against).
func compileSet(ctx context.Context, opts Options, optimised bool) (*compiledSet, error) {
	namespaces, err := userNamespaces(opts.Namespaces)
	if err != nil {
		return nil, err
	}
	lib, err := Library()
	if err != nil {
		return nil, err
	}
	enabled, libraryNamespaces, err := enabledLibraryRules(opts, lib)
	if err != nil {
		return nil, err
	}
	srcs, err := librarySources(enabled, false)
	if err != nil {
		return nil, err
	}
	srcs = append(srcs, source{name: contextModuleName, content: contextModule, builtin: true})
	userSrcs, err := readPaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	for _, s := range userSrcs {
		if !s.test {
			srcs = append(srcs, s)
		}
	}
	modules, err := parseSources(srcs)
	if err != nil {
		return nil, err
	}
	compiler, err := compileModules(modules, contextBuiltin())
	if err != nil {
		return nil, err
	}

	evaluated := map[string]bool{}
	for _, ns := range namespaces {
		evaluated[ns] = true
	}
	for _, ns := range libraryNamespaces {
		evaluated[ns] = true
	}
	rules := discoverRules(compiler, evaluated)
	sets := setRules(compiler, rules)
	if len(rules) == 0 {
		return nil, fmt.Errorf("no deny, violation or warn rules in packages %s", strings.Join(sortedKeys(evaluated), ", "))
	}
	if len(opts.Paths) > 0 {
		for _, ns := range namespaces {
			if !slices.ContainsFunc(rules, func(r RuleRef) bool { return r.Package == ns }) {
				return nil, fmt.Errorf("namespace %s: no deny, violation or warn rules in %s", ns, strings.Join(opts.Paths, ", "))
			}
		}
	}

	store, err := newStore(opts.Parameters, false)
	if err != nil {
		return nil, err
	}
	set := &compiledSet{rules: rules, modules: sortedKeys(moduleSet(modules)), byKind: map[string]*kindQuery{}}
	kinds := map[string][]string{} // package of a kind-restricted built-in rule -> its kinds
	if optimised {
		kinds = libraryKinds(lib)
		if set.seeds, err = computeSeeds(ctx, compiler, store); err != nil {
			return nil, err
		}
	}
	prepared := map[string]*kindQuery{} // by the indices of its rules
	prepare := func(kind string, anyKind bool) (*kindQuery, error) {
		q := &kindQuery{libraryOnly: true}
		var key strings.Builder
		for i, r := range rules {
			restricted, ok := kinds[r.Package]
			if ok && (anyKind || !slices.Contains(restricted, kind)) {
				continue
			}
			q.rules = append(q.rules, r)
			q.libraryOnly = q.libraryOnly && strings.HasPrefix(r.Package, libraryPackagePrefix)
			fmt.Fprintf(&key, "%d,", i)
		}
		if done, ok := prepared[key.String()]; ok {
			return done, nil
		}
		prepared[key.String()] = q
		if len(q.rules) == 0 {
			return q, nil
		}
		query, err := buildQuery(q.rules, sets)
		if err != nil {
			return nil, err
		}
		q.query, err = prepareQuery(ctx, compiler, store, query)
		if err != nil {
			return nil, fmt.Errorf("prepare policy query: %w", err)
		}
		return q, nil
	}
	if set.other, err = prepare("", true); err != nil {
		return nil, err
	}
	for _, ks := range kinds {
		for _, kind := range ks {
			if set.byKind[kind] == nil {
				if set.byKind[kind], err = prepare(kind, false); err != nil {
					return nil, err
				}
			}
		}
	}
	return set, nil
}

// libraryKinds maps the package of each built-in rule that declares kinds to
// them.
func libraryKinds(lib []LibraryRule) map[string][]string {
	out := map[string][]string{}
	for _, r := range lib {
		if len(r.Kinds) > 0 {
			out[r.Package()] = r.Kinds
		}
	}
	return out
}

// userNamespaces validates Options.Namespaces and applies the default.
func userNamespaces(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{defaultNamespace}, nil
	}
	out := make([]string, 0, len(in))
	for _, ns := range in {
		ref, err := ast.ParseRef("data." + ns)
		if err != nil || ns == "" {
			return nil, fmt.Errorf("namespace %q: not a Rego package name", ns)
		}
		if reservedPackage(ref) {
			return nil, fmt.Errorf("namespace %q: packages under driftless are reserved for the built-in library", ns)
		}
		out = append(out, packageName(ref))
	}
	return out, nil
}

// enabledLibraryRules validates Options.DisabledRules against lib and
// returns which built-in rules are on and their packages.
func enabledLibraryRules(opts Options, lib []LibraryRule) (func(string) bool, []string, error) {
	known := make(map[string]bool, len(lib))
	for _, r := range lib {
		known[r.Name] = true
	}
	disabled := map[string]bool{}
	for _, name := range opts.DisabledRules {
		if !known[name] {
			return nil, nil, fmt.Errorf("disabled rule %q: no such built-in rule (known: %s)", name, strings.Join(sortedKeys(known), ", "))
		}
		disabled[name] = true
	}
	enabled := func(rule string) bool {
		return !opts.DisableLibrary && known[rule] && !disabled[rule]
	}
	var namespaces []string
	for _, r := range lib {
		if enabled(r.Name) {
			namespaces = append(namespaces, r.Package())
		}
	}
	return enabled, namespaces, nil
}

// discoverRules finds the deny, violation and warn rules of the evaluated
// packages, sorted by package and name.
func discoverRules(compiler *ast.Compiler, evaluated map[string]bool) []RuleRef {
	seen := map[RuleRef]bool{}
	var rules []RuleRef
	for _, m := range compiler.Modules {
		pkg := packageName(m.Package.Path)
		if !evaluated[pkg] {
			continue
		}
		for _, r := range m.Rules {
			head := r.Head.Ref()
			if len(head) == 0 {
				continue
			}
			name, ok := head[0].Value.(ast.Var)
			if !ok {
				continue
			}
			sev, ok := ruleSeverity(string(name))
			if !ok {
				continue
			}
			ref := RuleRef{Package: pkg, Rule: string(name), Severity: sev}
			if !seen[ref] {
				seen[ref] = true
				rules = append(rules, ref)
			}
		}
	}
	sort.Slice(rules, func(i, j int) bool {
		if rules[i].Package != rules[j].Package {
			return rules[i].Package < rules[j].Package
		}
		return rules[i].Rule < rules[j].Rule
	})
	return rules
}

// setRules returns which of rules are defined only by `contains` rules of
// one name (deny contains msg if ...): such a rule's value is a set, empty
// when no definition matches, and never undefined.
func setRules(compiler *ast.Compiler, rules []RuleRef) map[RuleRef]bool {
	wanted := map[string]map[string]bool{} // package -> rule names
	for _, r := range rules {
		if wanted[r.Package] == nil {
			wanted[r.Package] = map[string]bool{}
		}
		wanted[r.Package][r.Rule] = true
	}
	isSet := map[[2]string]bool{}
	for _, m := range compiler.Modules {
		pkg := packageName(m.Package.Path)
		for _, r := range m.Rules {
			head := r.Head.Ref()
			if len(head) == 0 {
				continue
			}
			name, ok := head[0].Value.(ast.Var)
			if !ok || !wanted[pkg][string(name)] {
				continue
			}
			key := [2]string{pkg, string(name)}
			set := len(head) == 1 && r.Head.RuleKind() == ast.MultiValue
			if prev, seen := isSet[key]; seen {
				set = set && prev
			}
			isSet[key] = set
		}
	}
	out := map[RuleRef]bool{}
	for _, r := range rules {
		if isSet[[2]string{r.Package, r.Rule}] {
			out[r] = true
		}
	}
	return out
}

// ruleSeverity matches rule names the way conftest does: deny, violation
// and warn, optionally followed by "_word" segments of letters and digits
// (deny_latest_tag, warn_labels).
func ruleSeverity(name string) (Severity, bool) {
	kinds := []struct {
		prefix   string
		severity Severity
	}{
		{"deny", SeverityDeny},
		{"violation", SeverityDeny},
		{"warn", SeverityWarn},
	}
	for _, k := range kinds {
		rest, ok := strings.CutPrefix(name, k.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return k.severity, true
		}
		suffix, ok := strings.CutPrefix(rest, "_")
		if !ok {
			continue
		}
		valid := true
		for _, seg := range strings.Split(suffix, "_") {
			if seg == "" || strings.ContainsFunc(seg, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			}) {
				valid = false
				break
			}
		}
		if valid {
			return k.severity, true
		}
	}
	return "", false
}

// packageName renders a package path without its "data." prefix.
func packageName(path ast.Ref) string {
	return strings.TrimPrefix(path.String(), "data.")
}

// buildQuery returns
//
//	r := [[x | x := data.<pkg>.<rule>], ...]
//
// Each comprehension yields [] when its rule is undefined, so one undefined
// rule never hides the others. A rule in sets is never undefined and is
// queried as [data.<pkg>.<rule>] instead, which yields the same value
// without evaluating a comprehension.
func buildQuery(rules []RuleRef, sets map[RuleRef]bool) (ast.Body, error) {
	var b strings.Builder
	b.WriteString(resultVar + " := [")
	for i, r := range rules {
		if i > 0 {
			b.WriteString(", ")
		}
		pkg, err := ast.ParseRef("data." + r.Package)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r, err)
		}
		if sets[r] {
			fmt.Fprintf(&b, "[%s]", pkg.Append(ast.StringTerm(r.Rule)))
		} else {
			fmt.Fprintf(&b, "[x | x := %s]", pkg.Append(ast.StringTerm(r.Rule)))
		}
	}
	b.WriteString("]")
	body, err := ast.ParseBodyWithOpts(b.String(), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("parse policy query: %w", err)
	}
	return body, nil
}

// newStore holds data.driftless.parameters and, withContext, an empty
// data.driftless.context (RunTests' stand-in for the engine's context module).
func newStore(params map[string]any, withContext bool) (storage.Store, error) {
	if params == nil {
		params = map[string]any{}
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	var roundTripped any
	if err := util.UnmarshalJSON(b, &roundTripped); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	pv, err := ast.InterfaceToValue(roundTripped)
	if err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	driftless := ast.NewObject(ast.Item(ast.StringTerm("parameters"), ast.NewTerm(pv)))
	if withContext {
		driftless.Insert(ast.StringTerm("context"), EvalContext{}.term())
	}
	data := ast.NewObject(ast.Item(ast.StringTerm("driftless"), ast.NewTerm(driftless)))
	return inmem.NewFromASTObject(data), nil
}

func moduleSet(modules map[string]*ast.Module) map[string]bool {
	out := make(map[string]bool, len(modules))
	for name := range modules {
		out[name] = true
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// prepareQuery prepares query against the compiled modules and store, with the sandbox's
// capabilities and the context built-in: the one way every query of a load is prepared.
func prepareQuery(ctx context.Context, compiler *ast.Compiler, store storage.Store, query ast.Body) (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.ParsedQuery(query),
		rego.Compiler(compiler),
		rego.Capabilities(compiler.Capabilities()),
		rego.Store(store),
		rego.SetRegoVersion(ast.RegoV1),
		contextFunction(),
	).PrepareForEval(ctx)
}
