package render

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/types"
)

// Rendered is the result of [RenderWithInputs]: the objects, the paths they were rendered
// from, and what [Rendered.Update] needs to bring them up to date cheaply.
type Rendered struct {
	// Objects are the rendered objects. They are never changed afterwards; an update
	// returns new ones.
	Objects []*unstructured.Unstructured
	// Inputs are the paths the render read.
	Inputs Inputs
	// flat is set when the render was of a flat kustomization; nil otherwise.
	flat *flatKustomization
}

// flatKustomization describes the render of a kustomization that only lists resource files
// (no bases, components, generators, transformers, patches or any other field). Kustomize
// builds each such file on its own and keeps the objects in the order of the files, so a
// change to files that keeps their objects' ids changes only those objects, in place.
type flatKustomization struct {
	// file is the kustomization file, root-relative.
	file string
	// files maps each resource file to the ids of the objects it declares, in order.
	files map[string][]string
	// index maps an object id to its position in the objects.
	index map[string]int
	// sizes are the objects' sizes as JSON, for the rendered-size limit.
	sizes []int64
	bytes int64
	// limits are those the render ran within.
	limits Limits
}

// objectID identifies an object as kustomize does: group, version, kind, namespace, name.
func objectID(apiVersion, kind, namespace, name string) string {
	return apiVersion + "|" + kind + "|" + namespace + "|" + name
}

// flatResources returns the resource files of the kustomization file kfile (in dir) when it
// lists only local regular files and has no other field; false otherwise.
func flatResources(r repoRoot, dir, kfile string) ([]string, bool) {
	data, err := r.Root.ReadFile(kfile)
	if err != nil {
		return nil, false
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return nil, false
	}
	k.FixKustomization()
	if !reflect.DeepEqual(k, types.Kustomization{TypeMeta: k.TypeMeta, Resources: k.Resources}) || k.Kind == types.ComponentKind {
		return nil, false
	}
	files := make([]string, 0, len(k.Resources))
	for _, res := range k.Resources {
		if isRemote(res) || filepath.IsAbs(res) {
			return nil, false
		}
		f := path.Join(dir, filepath.ToSlash(res))
		if !filepath.IsLocal(filepath.FromSlash(f)) {
			return nil, false
		}
		info, err := r.Root.Lstat(f)
		if err != nil || !info.Mode().IsRegular() {
			return nil, false
		}
		files = append(files, f)
	}
	return files, true
}

// declaredIDs returns the ids of the objects the resource file data declares, in order;
// false when a document is not a plain object with apiVersion, kind and name (kustomize
// then builds something else, such as the items of a List).
func declaredIDs(file string, data []byte) ([]string, bool) {
	docs, err := decodeYAML(file, data)
	if err != nil {
		return nil, false
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		apiVersion, _ := d.value["apiVersion"].(string)
		kind, _ := d.value["kind"].(string)
		md, _ := d.value["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		namespace, ok := md["namespace"].(string)
		if !ok && md["namespace"] != nil || apiVersion == "" || kind == "" || name == "" || strings.HasSuffix(kind, "List") {
			return nil, false
		}
		ids = append(ids, objectID(apiVersion, kind, namespace, name))
	}
	return ids, true
}

// newFlat returns what an update of the render out of the flat kustomization file kfile,
// which lists files (see [flatResources]), needs, or nil when out is not exactly the objects
// its files declare (as the checker read them).
func newFlat(chk *refChecker, kfile string, files []string, out []Object, sizes []int64, limits Limits) *flatKustomization {
	f := &flatKustomization{file: kfile, files: map[string][]string{}, index: map[string]int{}, sizes: sizes, limits: limits}
	for i, o := range out {
		u := o.Object
		id := objectID(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
		if _, dup := f.index[id]; dup {
			return nil
		}
		f.index[id] = i
		f.bytes += sizes[i]
	}
	n := 0
	for _, file := range files {
		if _, dup := f.files[file]; dup {
			return nil
		}
		docs := chk.documents(file)
		ids := make([]string, len(docs))
		for i, d := range docs {
			if d.name == "" || d.apiVersion == "" {
				return nil
			}
			ids[i] = objectID(d.apiVersion, d.kind, d.namespace, d.name)
		}
		for _, id := range ids {
			if _, ok := f.index[id]; !ok {
				return nil
			}
		}
		f.files[file] = ids
		n += len(ids)
	}
	if n != len(out) {
		return nil
	}
	return f
}

// Update returns the render of the same path, with the same limits, in root, where only the
// files named in changed (root-relative) differ from the content rendered. It builds only
// what it must: when the render was of a kustomization that lists only resource files, the
// changed files are among them and declare objects with the same ids as before, only those
// files are built, and their objects replace the old ones in place; kustomize builds each
// such file on its own and keeps the objects in the order of the files, so the result is
// what a full render gives. It returns false when that does not hold, and the caller
// renders in full.
func (rd Rendered) Update(ctx context.Context, root string, changed []string, limits Limits) (Rendered, bool, error) {
	f := rd.flat
	if f == nil || limits != f.limits || len(changed) == 0 {
		return Rendered{}, false, nil
	}
	for _, c := range changed {
		if _, ok := f.files[c]; !ok {
			return Rendered{}, false, nil
		}
	}
	rootAbs, err := resolveRoot(root)
	if err != nil {
		return Rendered{}, false, nil
	}
	or, err := os.OpenRoot(rootAbs)
	if err != nil {
		return Rendered{}, false, nil
	}
	defer or.Close()
	objs := append([]*unstructured.Unstructured(nil), rd.Objects...)
	sizes := append([]int64(nil), f.sizes...)
	total := f.bytes
	for _, file := range changed {
		if err := ctx.Err(); err != nil {
			return Rendered{}, false, err
		}
		info, err := or.Lstat(file)
		if err != nil || !info.Mode().IsRegular() {
			return Rendered{}, false, nil
		}
		data, err := or.ReadFile(file)
		if err != nil {
			return Rendered{}, false, nil
		}
		if ids, ok := declaredIDs(file, data); !ok || !reflect.DeepEqual(ids, f.files[file]) {
			return Rendered{}, false, nil
		}
		built, err := buildOne(file, data)
		if err != nil || len(built) != len(f.files[file]) {
			return Rendered{}, false, nil
		}
		for _, u := range built {
			id := objectID(u.Object.GetAPIVersion(), u.Object.GetKind(), u.Object.GetNamespace(), u.Object.GetName())
			at, ok := f.index[id]
			if !ok {
				return Rendered{}, false, nil
			}
			objs[at] = u.Object
			total += u.size - sizes[at]
			sizes[at] = u.size
		}
	}
	if l := limits.MaxBytes; l > 0 && total > l {
		b := &budget{limits: limits, bytes: total - 1}
		return Rendered{}, true, b.add(0, 1, "kustomize build "+path.Dir(f.file))
	}
	next := *f
	next.sizes, next.bytes = sizes, total
	return Rendered{Objects: objs, Inputs: rd.Inputs, flat: &next}, true, nil
}

// builtObject is an object kustomize built and its size as JSON.
type builtObject struct {
	Object *unstructured.Unstructured
	size   int64
}

// buildOne builds the resource file data alone, as a kustomization listing only it would,
// in memory.
func buildOne(file string, data []byte) ([]builtObject, error) {
	name := path.Base(file)
	if isKustomizationFile(name) {
		name = "resource-" + name
	}
	resources, err := buildInMemory([]string{file}, func(string) (string, []byte, error) { return name, data, nil })
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", file, err)
	}
	var out []builtObject
	for _, res := range resources {
		b, err := res.MarshalJSON()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := utiljson.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		obj, err := toObject(m)
		if err != nil {
			return nil, err
		}
		out = append(out, builtObject{Object: obj, size: int64(len(b))})
	}
	return out, nil
}
