package render

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
)

// krustyMu serializes kustomize builds. Kustomize keeps the OpenAPI schema
// used for merging in process-wide state that a kustomization can replace
// (its openapi field), so two concurrent builds could see each other's
// schema. This is the package's only global, and it exists for that
// third-party global alone.
var krustyMu sync.Mutex

// renderKustomization builds the kustomization in dir (relative to the
// root) with krusty, after checking that nothing it refers to is remote
// or outside the root. With trace, each object's Origin also names the
// resource file that declares it (see [Origin.Source]).
func renderKustomization(ctx context.Context, rootAbs string, r repoRoot, dir string, bud *budget, trace bool, rec *recorder) ([]Object, error) {
	chk := &refChecker{
		rootAbs: rootAbs, root: r, visited: map[string]bool{},
		namespaceFields: map[string]string{}, declaredNamespaces: map[string]string{},
		sources: map[string][]sourceRef{}, declared: map[string][]declared{}, files: map[string][]byte{},
	}
	if err := chk.checkDir(dir); err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// A flat kustomization is built in chunks; anything else, or a flat one whose chunks
	// could build differently, by kustomize in full.
	kfile := soleKustomization(r, dir)
	files, listsFiles := flatResources(r, dir, kfile)
	flat := listsFiles && chunkedBuilds
	var resources []*resource.Resource
	if flat {
		var err error
		if resources, flat, err = buildFlat(ctx, r, dir, files); err != nil {
			return nil, err
		}
	}
	if !flat {
		fsys := newConfinedFS(rootAbs)
		fsys.rec = rec
		var err error
		if resources, err = run(fsys, filepath.Join(rootAbs, filepath.FromSlash(dir))); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", dir, relativize(err, rootAbs))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if err := bud.add(int64(len(resources)), 0, "kustomize build "+dir); err != nil {
		return nil, err
	}
	out := make([]Object, 0, len(resources))
	sizes := make([]int64, 0, len(resources))
	for i, res := range resources {
		b, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: encode %s: %w", dir, res.CurId(), err)
		}
		sizes = append(sizes, int64(len(b)))
		if err := bud.add(0, int64(len(b)), "kustomize build "+dir); err != nil {
			return nil, err
		}
		var m map[string]any
		if err := utiljson.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("kustomize build %s: decode %s: %w", dir, res.CurId(), err)
		}
		obj, err := toObject(m)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: object %d: %w", dir, i, err)
		}
		out = append(out, Object{Object: obj, Origin: Origin{File: dir, Document: i, Kustomized: true}})
	}
	if err := chk.checkNamespaceRenames(out); err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	if trace {
		for i := range out {
			chk.locate(&out[i])
		}
	}
	if rec != nil && listsFiles {
		rec.flat = newFlat(chk, kfile, files, out, sizes, bud.limits)
	}
	return out, nil
}

// ErrNamespaceRenamed is returned, wrapped, when a kustomization's namespace
// field renames a Namespace object: kustomize sets the name of every
// Namespace it builds to the namespace field, so a Namespace declared in a
// base ("team-data") would come out as the overlay's namespace
// ("production") and the reconciler would take over, and could later
// delete, a Namespace nobody declared.
var ErrNamespaceRenamed = errors.New("the namespace field renames a Namespace object")

// checkNamespaceRenames refuses a build in which a Namespace declared in a
// resource file is missing from the output while a Namespace named after a
// kustomization's namespace field appears in its place.
func (c *refChecker) checkNamespaceRenames(out []Object) error {
	if len(c.namespaceFields) == 0 || len(c.declaredNamespaces) == 0 {
		return nil
	}
	built := map[string]bool{}
	for _, o := range out {
		if o.Object.GetKind() == "Namespace" && o.Object.GetAPIVersion() == "v1" {
			built[o.Object.GetName()] = true
		}
	}
	var missing []string
	for name, file := range c.declaredNamespaces {
		if !built[name] {
			missing = append(missing, fmt.Sprintf("Namespace %s (%s)", name, file))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	var renames []string
	for ns, file := range c.namespaceFields {
		if built[ns] {
			renames = append(renames, fmt.Sprintf("%s sets namespace: %s", file, ns))
		}
	}
	if len(renames) == 0 {
		return nil
	}
	sort.Strings(renames)
	return fmt.Errorf("%w: %s, so %s comes out named after it; declare a Namespace in the kustomization that sets the namespace field, or move it out of the bases it builds",
		ErrNamespaceRenamed, strings.Join(renames, ", "), strings.Join(missing, ", "))
}

// refChecker walks a kustomization and everything it refers to before
// kustomize sees it. Kustomize itself would clone a remote base with the
// git command line and fetch an http(s) resource over the network, and it
// accepts a base anywhere on the local disk; the checker refuses all of
// these with a message naming the kustomization file and the entry.
type refChecker struct {
	rootAbs string
	root    repoRoot
	visited map[string]bool
	// namespaceFields maps the namespace field of each kustomization to its
	// file, and declaredNamespaces the name of each Namespace declared in a
	// resource file to the file.
	namespaceFields    map[string]string
	declaredNamespaces map[string]string
	// sources lists, per kustomization directory, the local files and
	// directories its resources and components name, in order; declared
	// caches the objects each resource file declares. Tracing reads both.
	sources  map[string][]sourceRef
	declared map[string][]declared
	// files holds the files read so far: the limits, the plugin check and tracing each read
	// the same ones.
	files map[string][]byte
}

// read reads file (relative to the root) once per render.
func (c *refChecker) read(file string) ([]byte, error) {
	if data, ok := c.files[file]; ok {
		return data, nil
	}
	data, err := c.root.ReadFile(file)
	if err != nil {
		return nil, err
	}
	c.files[file] = data
	return data, nil
}

// yamlField are the kustomization fields whose files kustomize parses as YAML (generator
// files are data), plugin configurations included.
var yamlField = map[string]bool{
	"resources": true, "components": true, "crds": true, "configurations": true,
	"patchesStrategicMerge": true, "patches.path": true, "replacements.path": true, "openapi.path": true,
	"generators": true, "transformers": true, "validators": true,
}

// checkDir checks the kustomization in dir (relative to the root), then
// the kustomizations it refers to. Every YAML file kustomize would parse is checked against
// the limits of [checkExpansion] first.
func (c *refChecker) checkDir(dir string) error {
	if c.visited[dir] {
		return nil
	}
	c.visited[dir] = true
	file, ok := findKustomization(c.root, dir)
	if !ok {
		// Not a kustomization: kustomize reports that itself.
		return nil
	}
	data, err := c.read(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, linkError(err))
	}
	if err := checkExpansion(file, data); err != nil {
		return err
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	k.FixKustomization()
	if k.Namespace != "" {
		c.namespaceFields[k.Namespace] = file
	}

	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		return fmt.Errorf("%s: helm charts are not supported; render the chart into manifests in the repository", file)
	}
	type entry struct {
		field, value string
		// base is true for entries that may be kustomization directories.
		base bool
		// plugin is true for entries that may be inline plugin configs.
		plugin bool
	}
	var entries []entry
	add := func(field string, base, plugin bool, values ...string) {
		for _, v := range values {
			entries = append(entries, entry{field: field, value: v, base: base, plugin: plugin})
		}
	}
	add("resources", true, false, k.Resources...)
	add("components", true, false, k.Components...)
	add("crds", false, false, k.Crds...)
	add("configurations", false, false, k.Configurations...)
	add("generators", true, true, k.Generators...)
	add("transformers", true, true, k.Transformers...)
	add("validators", true, true, k.Validators...)
	// Inline patches are YAML that kustomize parses, like the files the entries name.
	var inline []string
	for _, p := range k.PatchesStrategicMerge {
		if !strings.Contains(string(p), "\n") {
			add("patchesStrategicMerge", false, false, string(p))
		} else {
			inline = append(inline, string(p))
		}
	}
	for _, p := range append(k.Patches, k.PatchesJson6902...) {
		if p.Path != "" {
			add("patches.path", false, false, p.Path)
		}
		inline = append(inline, p.Patch)
	}
	for _, p := range inline {
		if err := checkExpansion(file+" (an inline patch)", []byte(p)); err != nil {
			return err
		}
	}
	for _, r := range k.Replacements {
		if r.Path != "" {
			add("replacements.path", false, false, r.Path)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		add("configMapGenerator", false, false, generatorFiles(g.GeneratorArgs)...)
	}
	for _, g := range k.SecretGenerator {
		add("secretGenerator", false, false, generatorFiles(g.GeneratorArgs)...)
	}
	if p, ok := k.OpenAPI["path"]; ok {
		add("openapi.path", false, false, p)
	}

	for _, e := range entries {
		if e.plugin && strings.Contains(e.value, "\n") {
			if err := c.checkPluginConfig(file, dir, e.field, []byte(e.value)); err != nil {
				return err
			}
			continue
		}
		target, err := c.local(file, dir, e.field, e.value)
		if err != nil {
			return err
		}
		if target == "" {
			continue
		}
		info, err := c.root.Stat(target)
		if err != nil {
			// Missing: kustomize reports it.
			continue
		}
		if e.field == "resources" || e.field == "components" {
			c.sources[dir] = append(c.sources[dir], sourceRef{path: target, dir: info.IsDir()})
		}
		var data []byte
		if !info.IsDir() && yamlField[e.field] {
			if data, err = c.read(target); err != nil {
				return fmt.Errorf("%s: %s entry %q: %w", file, e.field, e.value, linkError(err))
			}
			if err := checkExpansion(target, data); err != nil {
				return err
			}
		}
		switch {
		case info.IsDir() && e.base:
			if err := c.checkDir(target); err != nil {
				return err
			}
		case !info.IsDir() && e.field == "resources":
			c.noteNamespaces(target)
		case !info.IsDir() && e.plugin:
			if err := c.checkPluginConfig(file, dir, e.field, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// noteNamespaces records the Namespaces the resource file declares. A file
// that does not parse is left to kustomize to report.
func (c *refChecker) noteNamespaces(file string) {
	for _, d := range c.documents(file) {
		if d.kind == "Namespace" && d.apiVersion == "v1" && d.name != "" {
			if _, seen := c.declaredNamespaces[d.name]; !seen {
				c.declaredNamespaces[d.name] = file
			}
		}
	}
}

// generatorFiles lists the files a configMapGenerator or secretGenerator
// reads ("key=path" file sources name their path after the "=").
func generatorFiles(g types.GeneratorArgs) []string {
	var out []string
	for _, f := range g.FileSources {
		if _, p, ok := strings.Cut(f, "="); ok {
			f = p
		}
		out = append(out, f)
	}
	out = append(out, g.EnvSources...)
	if g.EnvSource != "" {
		out = append(out, g.EnvSource)
	}
	return out
}

// local checks one reference in the kustomization file of dir and returns
// its repository-relative target, or "" when it cannot be a local path
// (kustomize then treats it as inline content).
func (c *refChecker) local(file, dir, field, value string) (string, error) {
	if isRemote(value) {
		return "", fmt.Errorf("%s: %s entry %q: %w", file, field, value, ErrRemoteReference)
	}
	var target string
	if filepath.IsAbs(value) {
		rel, err := filepath.Rel(c.rootAbs, filepath.Clean(value))
		if err != nil || !filepath.IsLocal(rel) {
			return "", fmt.Errorf("%s: %s entry %q: %w", file, field, value, ErrOutsideRoot)
		}
		target = filepath.ToSlash(rel)
	} else {
		target = path.Join(dir, filepath.ToSlash(value))
		if target != "." && !filepath.IsLocal(filepath.FromSlash(target)) {
			return "", fmt.Errorf("%s: %s entry %q: %w", file, field, value, ErrOutsideRoot)
		}
	}
	// Follow symlinks only within the root.
	if _, err := c.root.Lstat(target); err == nil {
		if _, err := c.root.Stat(target); err != nil && strings.Contains(err.Error(), "path escapes from parent") {
			return "", fmt.Errorf("%s: %s entry %q: symlink leads %w", file, field, value, ErrOutsideRoot)
		}
	}
	return target, nil
}

// isPluginPathKey reports whether k is a field of a builtin plugin config
// that names files.
func isPluginPathKey(k string) bool {
	switch k {
	case "path", "paths", "files", "envs", "env", "valuesFile", "additionalValuesFiles", "chartHome":
		return true
	}
	return false
}

// checkPluginConfig checks an inline or file generator, transformer or
// validator config: no Helm, and no file references that are remote or
// outside the root. Unparsable configs are left to kustomize to report.
func (c *refChecker) checkPluginConfig(file, dir, field string, data []byte) error {
	docs, err := decodeYAML(file, data)
	if err != nil {
		return nil
	}
	for _, d := range docs {
		if d.value["kind"] == "HelmChartInflationGenerator" {
			return fmt.Errorf("%s: %s: helm charts are not supported; render the chart into manifests in the repository", file, field)
		}
		if err := c.walkPluginValue(file, dir, field, "", d.value); err != nil {
			return err
		}
	}
	return nil
}

func (c *refChecker) walkPluginValue(file, dir, field, key string, v any) error {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if err := c.walkPluginValue(file, dir, field, k, val); err != nil {
				return err
			}
		}
	case []any:
		for _, val := range t {
			if err := c.walkPluginValue(file, dir, field, key, val); err != nil {
				return err
			}
		}
	case string:
		if isPluginPathKey(key) {
			p := t
			if _, after, ok := strings.Cut(p, "="); ok && key == "files" {
				p = after
			}
			if _, err := c.local(file, dir, field+"."+key, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// isRemote reports whether kustomize would fetch ref over the network:
// any URL with a scheme, a github.com path, or an scp-like user@host
// address, with or without a go-getter "git::" prefix.
func isRemote(ref string) bool {
	s := strings.TrimSpace(ref)
	if len(s) >= 5 && strings.EqualFold(s[:5], "git::") {
		s = s[5:]
	}
	lower := strings.ToLower(s)
	if strings.Contains(lower, "://") || strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:") {
		return true
	}
	// user@host, as kustomize's ^[a-zA-Z][a-zA-Z0-9-]*@ matches it.
	at := strings.IndexByte(s, '@')
	if at <= 0 {
		return false
	}
	for i, r := range s[:at] {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || (r < '0' || r > '9') && r != '-') {
			return false
		}
	}
	return true
}
