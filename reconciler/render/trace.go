package render

import (
	"path"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// originAnnotation is set by kustomize on every object it builds when the kustomization asks
// for buildMetadata: [originAnnotations].
const originAnnotation = "config.kubernetes.io/origin"

// sourceRef is one local entry of a kustomization's resources or components: a file, or a
// directory (a kustomization of its own).
type sourceRef struct {
	path string
	dir  bool
}

// declared is an object as a resource file declares it, before kustomize changes it.
type declared struct {
	file, apiVersion, kind, namespace, name string
	// line is the 1-based line where the object starts in file.
	line int
}

// documents returns the objects file (relative to the root) declares, cached. A file that
// does not parse declares none here: kustomize reports it when building.
func (c *refChecker) documents(file string) []declared {
	if docs, ok := c.declared[file]; ok {
		return docs
	}
	var out []declared
	if data, err := c.read(file); err == nil {
		if docs, err := decodeYAML(file, data); err == nil {
			for _, d := range docs {
				kind, _ := d.value["kind"].(string)
				if kind == "" {
					continue
				}
				apiVersion, _ := d.value["apiVersion"].(string)
				md, _ := d.value["metadata"].(map[string]any)
				name, _ := md["name"].(string)
				namespace, _ := md["namespace"].(string)
				out = append(out, declared{file: file, apiVersion: apiVersion, kind: kind, namespace: namespace, name: name, line: d.line})
			}
		}
	}
	c.declared[file] = out
	return out
}

// resourceFiles lists the resource files the kustomization in dir builds from, depth-first:
// its own, then those of the kustomizations its resources and components name, each once.
// It reads what checkDir recorded; remote and outside references never got that far.
func (c *refChecker) resourceFiles(dir string) []string {
	var files []string
	seen := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		if seen[dir] {
			return // a cycle or a base named twice; kustomize reports cycles when building
		}
		seen[dir] = true
		for _, ref := range c.sources[dir] {
			switch {
			case ref.dir:
				walk(ref.path)
			case !seen[ref.path]:
				seen[ref.path] = true
				files = append(files, ref.path)
			}
		}
	}
	walk(dir)
	return files
}

// locate fills in o.Origin.Source and SourceLine for an object built by the kustomization in
// o.Origin.File: the file kustomize's origin annotation names, when the kustomization asks
// for it, or else the resource file (of the kustomization, its bases and components)
// declaring an object of the same kind and name or, when kustomize added a name prefix or
// suffix ("prod-", "-v2"), the only such object. Objects that cannot be traced, such as
// generated ConfigMaps, are attributed to the kustomization file, without a line.
func (c *refChecker) locate(o *Object) {
	dir := o.Origin.File
	kind, name := o.Object.GetKind(), o.Object.GetName()
	o.Origin.Source, o.Origin.SourceLine = dir, 0
	if file, ok := findKustomization(c.root, dir); ok {
		o.Origin.Source = file
	}
	if src, ok := c.originFile(dir, o.Object.GetAnnotations()[originAnnotation]); ok {
		o.Origin.Source = src
		if d, ok := matchDocument(c.documents(src), kind, name); ok {
			o.Origin.SourceLine = d.line
		}
		return
	}
	var (
		exact   *declared
		renamed []declared
	)
	for _, src := range c.resourceFiles(dir) {
		for _, d := range c.documents(src) {
			switch {
			case d.kind != kind:
			case d.name == name:
				if exact == nil {
					exact = &d
				}
			case renamedFrom(name, d.name):
				renamed = append(renamed, d)
			}
		}
	}
	switch {
	case exact != nil:
		o.Origin.Source, o.Origin.SourceLine = exact.file, exact.line
	case len(renamed) == 1:
		o.Origin.Source, o.Origin.SourceLine = renamed[0].file, renamed[0].line
	}
}

// originFile returns the root-relative source file an origin annotation of an object built
// in dir names, if it is a local file inside the root.
func (c *refChecker) originFile(dir, annotation string) (string, bool) {
	if annotation == "" {
		return "", false
	}
	var origin struct {
		Path string `yaml:"path"`
		Repo string `yaml:"repo"`
	}
	if err := yaml.Unmarshal([]byte(annotation), &origin); err != nil || origin.Path == "" || origin.Repo != "" {
		return "", false
	}
	src := path.Join(dir, origin.Path)
	if !filepath.IsLocal(filepath.FromSlash(src)) {
		return "", false
	}
	info, err := c.root.Stat(src)
	if err != nil || !info.Mode().IsRegular() {
		return "", false
	}
	return src, true
}

// renamedFrom reports whether name is declared with a kustomize name prefix or suffix:
// "<prefix>-<declared>" or "<declared>-<suffix>" or both.
func renamedFrom(name, declared string) bool {
	if declared == "" {
		return false
	}
	before, after, ok := strings.Cut(name, declared)
	return ok && (before == "" || strings.HasSuffix(before, "-")) && (after == "" || strings.HasPrefix(after, "-"))
}

// matchDocument finds the document declaring kind and name, or the only one of that kind.
func matchDocument(docs []declared, kind, name string) (declared, bool) {
	var sameKind []declared
	for _, d := range docs {
		if d.kind != kind {
			continue
		}
		if d.name == name {
			return d, true
		}
		sameKind = append(sameKind, d)
	}
	if len(sameKind) == 1 {
		return sameKind[0], true
	}
	return declared{}, false
}
