package render

import (
	"context"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"
)

// flatChunk is how many resource files one kustomize run of [buildFlat] builds. Kustomize
// checks every object it adds against all it holds, so one run over n objects costs n²;
// runs of a few dozen files keep that small and the per-run setup shared.
const flatChunk = 64

// chunkedBuilds is whether flat kustomizations are built by [buildFlat]; tests turn it off
// to compare with kustomize's own build.
var chunkedBuilds = true

// soleKustomization returns the kustomization file in dir when there is exactly one, ""
// otherwise (kustomize refuses a directory with more than one). It notes every name it
// looks for, as kustomize's own build does.
func soleKustomization(r repoRoot, dir string) string {
	found := ""
	for _, n := range kustomizationNames() {
		p := path.Join(dir, n)
		if info, err := r.Stat(p); err == nil {
			if found != "" || !info.Mode().IsRegular() {
				return ""
			}
			found = p
		}
	}
	return found
}

// run builds the kustomization in dir of fsys with the options every render uses: files
// only from under the kustomization root, no plugins, no label of its own. Kustomize keeps
// process-wide state (see krustyMu), so runs take turns.
func run(fsys filesys.FileSystem, dir string) ([]*resource.Resource, error) {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.AddManagedbyLabel = false
	if declaresSortOptions(fsys, dir) {
		// The kustomization's sortOptions order its output whatever the options say; with
		// the default ("none") kustomize also warns on stderr that both are set.
		opts.Reorder = krusty.ReorderOptionUnspecified
	}
	krustyMu.Lock()
	defer krustyMu.Unlock()
	m, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		return nil, err
	}
	return m.Resources(), nil
}

// declaresSortOptions reports whether the kustomization in dir of fsys sets sortOptions. One
// that cannot be read or decoded does not: kustomize's build then reports it.
func declaresSortOptions(fsys filesys.FileSystem, dir string) bool {
	for _, n := range kustomizationNames() {
		data, err := fsys.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		var k types.Kustomization
		return yaml.Unmarshal(data, &k) == nil && k.SortOptions != nil
	}
	return false
}

// buildFlat builds a flat kustomization (see [flatResources]) in dir whose resource files
// are files, giving what kustomize gives for it, without kustomize's cost per object that
// grows with the number of objects: kustomize builds each resource file of such a
// kustomization on its own, checks that no two objects share an id, and keeps them in the
// order of the files. buildFlat runs kustomize on the files in chunks, in memory, and
// checks ids across the chunks itself.
//
// It returns false, and the caller builds with kustomize in full (which reports any error
// in its own words), whenever the result could differ: a file outside dir or listed
// twice, a file named like a kustomization, a chunk kustomize refuses, or two objects with
// the same id.
func buildFlat(ctx context.Context, r repoRoot, dir string, files []string) ([]*resource.Resource, bool, error) {
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if !strings.HasPrefix(f, prefix) || seen[f] || isKustomizationFile(path.Base(f)) {
			return nil, false, nil
		}
		seen[f] = true
	}
	var out []*resource.Resource
	for chunk := range slices.Chunk(files, flatChunk) {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		built, err := buildInMemory(chunk, func(f string) (string, []byte, error) {
			data, err := r.ReadFile(f)
			return "files/" + strings.TrimPrefix(f, prefix), data, err
		})
		if err != nil {
			return nil, false, nil
		}
		out = append(out, built...)
	}
	if !unique(out) {
		return nil, false, nil
	}
	return out, true, nil
}

// buildInMemory builds, in memory, a kustomization that lists the resource files of files in
// their order; file returns the name a file is listed by (relative, not named like a
// kustomization) and its content.
func buildInMemory(files []string, file func(string) (string, []byte, error)) ([]*resource.Resource, error) {
	fsys := filesys.MakeFsInMemory()
	k := types.Kustomization{Resources: make([]string, 0, len(files))}
	for _, f := range files {
		name, data, err := file(f)
		if err != nil {
			return nil, err
		}
		if err := fsys.WriteFile("/build/"+name, data); err != nil {
			return nil, err
		}
		k.Resources = append(k.Resources, name)
	}
	kdata, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := fsys.WriteFile("/build/kustomization.yaml", kdata); err != nil {
		return nil, err
	}
	return run(fsys, "/build")
}

// unique reports whether no two objects have the same id as kustomize compares them:
// group, version, kind, name and effective namespace (unset and "default" are the same).
func unique(objects []*resource.Resource) bool {
	ids := make(map[resid.ResId]bool, len(objects))
	for _, res := range objects {
		id := res.CurId()
		id = resid.NewResIdWithNamespace(id.Gvk, id.Name, id.EffectiveNamespace())
		if ids[id] {
			return false
		}
		ids[id] = true
	}
	return true
}
