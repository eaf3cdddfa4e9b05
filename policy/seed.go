package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Documents computed once per Load.
//
// Many rules depend only on the parameters, never on the object: the
// library's registries, mutable_tags or required resources, and constant
// sets such as the workload kinds. OPA computes them again in every
// evaluation. Load finds them (complete rules whose definitions, and every
// rule and function they use, read neither input nor data.driftless.context,
// and contain no `with`), evaluates them once against the loaded parameters
// and hands each evaluation a virtual-document cache that already holds
// their values (seeds). OPA looks a document up in that cache before it
// evaluates its rules, and `with` opens a new, empty cache frame in which
// the seeds are not visible, so a policy that replaces data with `with` is
// computed as before. A new Load computes new seeds from its own
// parameters.

// seedNode is one level of the tree of seeded documents, keyed by the
// string path segments below data.
type seedNode struct {
	value    *ast.Term
	children map[string]*seedNode
}

// get returns the seeded value at ref, or nil.
func (n *seedNode) get(ref ast.Ref) *ast.Term {
	if n == nil || len(ref) == 0 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok || n.children == nil {
			return nil
		}
		if n = n.children[string(s)]; n == nil {
			return nil
		}
	}
	return n.value
}

// put seeds value at ref, a ground ref of strings below data.
func (n *seedNode) put(ref ast.Ref, value *ast.Term) {
	for _, t := range ref[1:] {
		s := string(t.Value.(ast.String))
		if n.children == nil {
			n.children = map[string]*seedNode{}
		}
		next := n.children[s]
		if next == nil {
			next = &seedNode{}
			n.children[s] = next
		}
		n = next
	}
	n.value = value
}

// seededCache is the virtual-document cache of one evaluation: the seeds,
// visible only in the outermost frame, over the documents the evaluation
// computes. It keeps what OPA's own cache keeps, with the same lookups, but
// flat: OPA's is a trie with a hash map per ref segment, which allocates
// several maps and nodes for every document it caches.
type seededCache struct {
	seeds  *seedNode
	frames []cacheFrame
}

var _ topdown.VirtualCache = (*seededCache)(nil)

func newSeededCache(seeds *seedNode) *seededCache {
	return &seededCache{seeds: seeds, frames: make([]cacheFrame, 1, 2)}
}

// cacheFrame holds the documents cached in one frame, found by the hash of
// their ref; entries with the same hash are chained through next.
type cacheFrame struct {
	byHash  map[int]int32 // ref hash -> 1 + index in entries of the last entry with it
	entries []cacheEntry
	// refs backs the refs of entries: OPA reuses the slice it passes to Put.
	refs []*ast.Term
}

type cacheEntry struct {
	ref   ast.Ref
	value *ast.Term
	// undefined records a Put of nil; like OPA's cache, it stays set.
	undefined bool
	next      int32 // 1 + index of the previous entry with the same hash, or 0
}

// refHash hashes ref's terms in order.
func refHash(ref ast.Ref) int {
	h := 0
	for _, t := range ref {
		h = h*31 + t.Value.Hash()
	}
	return h
}

// find returns the entry for ref in f, or nil.
func (f *cacheFrame) find(ref ast.Ref, hash int) *cacheEntry {
	for i := f.byHash[hash]; i != 0; i = f.entries[i-1].next {
		if e := &f.entries[i-1]; e.ref.Equal(ref) {
			return e
		}
	}
	return nil
}

// maxReusedEntries bounds the caches kept for another evaluation: one that
// grew past it (a policy caching many function results) is left to the
// garbage collector rather than pinned.
const maxReusedEntries = 1024

// reset empties c for another evaluation, keeping its storage, and reports
// whether it can be reused: not when an evaluation that failed left a
// frame open, or when c grew past maxReusedEntries.
func (c *seededCache) reset() bool {
	if len(c.frames) != 1 || len(c.frames[0].entries) > maxReusedEntries {
		return false
	}
	f := &c.frames[0]
	clear(f.entries)
	f.entries = f.entries[:0]
	clear(f.refs)
	f.refs = f.refs[:0]
	clear(f.byHash)
	return true
}

// Push opens a frame (`with`) in which nothing cached so far, and no seed,
// is visible.
func (c *seededCache) Push() {
	c.frames = append(c.frames, cacheFrame{})
}

// Pop closes the frame Push opened and forgets what was cached in it.
func (c *seededCache) Pop() {
	c.frames[len(c.frames)-1] = cacheFrame{}
	c.frames = c.frames[:len(c.frames)-1]
}

// Get returns the seed at ref in the outermost frame, or what the
// evaluation cached in the current frame: the value, or nil and true when
// ref was recorded as undefined, or nil and false when nothing is cached.
func (c *seededCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if len(c.frames) == 1 {
		if v := c.seeds.get(ref); v != nil {
			return v, false
		}
	}
	f := &c.frames[len(c.frames)-1]
	if len(f.entries) == 0 {
		return nil, false
	}
	e := f.find(ref, refHash(ref))
	switch {
	case e == nil:
		return nil, false
	case e.undefined:
		return nil, true
	default:
		return e.value, false
	}
}

// Put records a value the evaluation computed in the current frame, or
// that ref is undefined when value is nil.
func (c *seededCache) Put(ref ast.Ref, value *ast.Term) {
	f := &c.frames[len(c.frames)-1]
	hash := refHash(ref)
	e := f.find(ref, hash)
	if e == nil {
		if f.byHash == nil {
			// Sized for an evaluation of the whole library, which caches
			// about 30 documents and function results with refs of about
			// four terms each.
			f.byHash = make(map[int]int32, 32)
			f.entries = make([]cacheEntry, 0, 32)
			f.refs = make([]*ast.Term, 0, 128)
		}
		start := len(f.refs)
		f.refs = append(f.refs, ref...)
		f.entries = append(f.entries, cacheEntry{ref: f.refs[start:len(f.refs):len(f.refs)], next: f.byHash[hash]})
		f.byHash[hash] = int32(len(f.entries))
		e = &f.entries[len(f.entries)-1]
	}
	if value != nil {
		e.value = value
	} else {
		e.undefined = true
	}
}

// Keys lists the refs cached with a value in the current frame.
func (c *seededCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.frames[len(c.frames)-1].entries {
		if e.value != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}

// computeSeeds finds the complete rules of compiler that depend on neither
// the object nor the context, evaluates them against store and returns
// their values. Rules that come out undefined or fail are left to each
// evaluation, which reports their errors as before.
func computeSeeds(ctx context.Context, compiler *ast.Compiler, store storage.Store) (*seedNode, error) {
	refs := seedableRefs(compiler)
	if len(refs) == 0 {
		return nil, nil
	}
	root := &seedNode{}
	values, err := evalSeeds(ctx, compiler, store, refs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("evaluate documents that depend only on parameters: %w", ctx.Err())
		}
		// One of them fails: evaluate them one by one and keep the others.
		for _, ref := range refs {
			if v, err := evalSeeds(ctx, compiler, store, []ast.Ref{ref}); err == nil {
				values = append(values, v[0])
			} else {
				values = append(values, nil)
			}
		}
	}
	for i, ref := range refs {
		if values[i] != nil {
			root.put(ref, values[i])
		}
	}
	return root, nil
}

// evalSeeds evaluates refs in one query and returns their values as Rego
// terms (a set stays a set), nil for an undefined one.
func evalSeeds(ctx context.Context, compiler *ast.Compiler, store storage.Store, refs []ast.Ref) ([]*ast.Term, error) {
	var b strings.Builder
	b.WriteString("s := [")
	for i, ref := range refs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[x | x := %s]", ref)
	}
	b.WriteString("]")
	query, err := ast.ParseBodyWithOpts(b.String(), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("parse seed query: %w", err)
	}
	pq, err := prepareQuery(ctx, compiler, store, query)
	if err != nil {
		return nil, fmt.Errorf("prepare seed query: %w", err)
	}
	rs, err := pq.Eval(ctx, rego.EvalGenerateJSON(keepTerm))
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("seed query: %d results, want 1", len(rs))
	}
	t, ok := rs[0].Bindings["s"].(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("seed query: result of type %T", rs[0].Bindings["s"])
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok || arr.Len() != len(refs) {
		return nil, fmt.Errorf("seed query: unexpected result %v", t)
	}
	out := make([]*ast.Term, len(refs))
	for i := range refs {
		if defined, ok := arr.Elem(i).Value.(*ast.Array); ok && defined.Len() == 1 {
			out[i] = defined.Elem(0)
		}
	}
	return out, nil
}

// seedableRefs lists the refs of complete rules that, with every rule and
// function they use, read neither input nor data.driftless.context, call no
// non-deterministic built-in and use no `with`.
func seedableRefs(compiler *ast.Compiler) []ast.Ref {
	dependent := map[*ast.Rule]bool{}
	onPath := map[*ast.Rule]bool{}
	var depends func(r *ast.Rule) bool
	depends = func(r *ast.Rule) bool {
		if d, ok := dependent[r]; ok {
			return d
		}
		if onPath[r] {
			return true // the compiler refuses recursion; stay on the safe side
		}
		onPath[r] = true
		d := readsEvaluation(r)
		for dep := range compiler.Graph.Dependencies(r) {
			if d {
				break
			}
			dr, ok := dep.(*ast.Rule)
			d = !ok || depends(dr)
		}
		for e := r.Else; e != nil && !d; e = e.Else {
			d = depends(e)
		}
		delete(onPath, r)
		dependent[r] = d
		return d
	}

	seen := map[string]bool{}
	var refs []ast.Ref
	for _, m := range compiler.Modules {
		for _, r := range m.Rules {
			ref := r.Ref()
			key := ref.String()
			if len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.SingleValue || seen[key] || !belowData(ref) {
				continue
			}
			seen[key] = true
			seedable := true
			for _, def := range compiler.GetRules(ref) {
				if depends(def) {
					seedable = false
					break
				}
			}
			if seedable {
				refs = append(refs, ref)
			}
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Compare(refs[j]) < 0 })
	return refs
}

// belowData reports whether ref is data followed by strings only.
func belowData(ref ast.Ref) bool {
	if len(ref) < 2 || !ref[0].Equal(ast.DefaultRootDocument) {
		return false
	}
	for _, t := range ref[1:] {
		if _, ok := t.Value.(ast.String); !ok {
			return false
		}
	}
	return true
}

// contextRef is data.driftless.context, filled per evaluation.
var contextRef = ast.MustParseRef("data.driftless.context")

// readsEvaluation reports whether a rule's own head or body reads input or
// data.driftless.context, calls the context built-in or a
// non-deterministic one, or uses `with`.
func readsEvaluation(r *ast.Rule) bool {
	found := false
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		if len(e.With) > 0 {
			found = true
		} else if e.IsCall() {
			name := e.Operator().String()
			bi, ok := ast.BuiltinMap[name]
			found = name == contextBuiltinName || ok && bi.Nondeterministic
		}
		return found
	})
	if found {
		return true
	}
	ast.WalkRefs(r, func(ref ast.Ref) bool {
		found = found || ref.HasPrefix(ast.InputRootRef) || ref.HasPrefix(contextRef)
		return found
	})
	return found
}
