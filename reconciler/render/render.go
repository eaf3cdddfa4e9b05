package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// ErrOutsideRoot is returned, wrapped, when a path, symlink or
// kustomization reference leads outside the repository root.
var ErrOutsideRoot = errors.New("outside the repository root")

// ErrRemoteReference is returned, wrapped, when a kustomization refers to
// a remote base or file (a git URL, an http(s) URL or a github.com path).
var ErrRemoteReference = errors.New("remote references are not allowed; vendor the content into the repository")

// Origin says where a rendered object came from.
type Origin struct {
	// File is the slash-separated path, relative to the repository root,
	// of the YAML file the object was read from or, when Kustomized, of
	// the kustomization directory that produced it.
	File string
	// Document is the 0-based index of the object among the non-empty
	// documents of File; for a kustomization, its index in the build
	// output.
	Document int
	// Line is the 1-based line where the object starts in File; 0 for a
	// kustomization.
	Line int
	// Kustomized is true when File is a kustomization directory.
	Kustomized bool
	// Source is the slash-separated, root-relative file that declares the
	// object, for reports that point a person at it, and SourceLine the
	// 1-based line where the object starts there, 0 when unknown. For
	// plain YAML they are File and Line. For a kustomized object they are
	// the file kustomize's origin annotation names (buildMetadata:
	// [originAnnotations]), or else the resource file of the kustomization,
	// its bases or components declaring an object of the same kind and name
	// or, when kustomize added a name prefix or suffix, the only such
	// object; otherwise, as for generated objects, the kustomization file
	// without a line. Only [RenderWithOrigins] traces kustomized objects.
	Source     string
	SourceLine int
}

// String formats the origin as "file:line" or, for a kustomization,
// "dir (kustomization)".
func (o Origin) String() string {
	if o.Kustomized {
		return o.File + " (kustomization)"
	}
	return fmt.Sprintf("%s:%d", o.File, o.Line)
}

// Object is a rendered object and its origin.
type Object struct {
	// Object is the Kubernetes object. It has apiVersion, kind and
	// metadata.name.
	Object *unstructured.Unstructured
	// Origin says where it came from.
	Origin Origin
}

// ErrLimitExceeded is returned, wrapped in a [*LimitError], when a render is over one of its
// [Limits]. It is the configuration's one error for every limit of a source.
var ErrLimitExceeded = v1alpha1.ErrLimitExceeded

// Limits bound a render. Zero leaves a bound off.
type Limits struct {
	// MaxObjects bounds the number of rendered objects.
	MaxObjects int64
	// MaxBytes bounds the rendered objects' size: the YAML files read for
	// plain YAML, the objects as JSON for a kustomization.
	MaxBytes int64
}

// LimitError says which limit a render is over.
type LimitError = v1alpha1.LimitError

// FormatBytes formats n bytes for messages, such as "300 MiB" or "512 B".
func FormatBytes(n int64) string { return v1alpha1.FormatBytes(n) }

// budget counts a render against its limits.
type budget struct {
	limits  Limits
	objects int64
	bytes   int64
}

// add counts n objects of size bytes, and fails once a limit is passed.
func (b *budget) add(n, size int64, what string) error {
	b.objects += n
	b.bytes += size
	if l := b.limits.MaxObjects; l > 0 && b.objects > l {
		return &LimitError{Limit: "limits.maxObjects", Msg: fmt.Sprintf("%s: more than %d objects, over the source's limits.maxObjects of %d", what, l, l)}
	}
	if l := b.limits.MaxBytes; l > 0 && b.bytes > l {
		return &LimitError{Limit: "limits.maxRenderedSize", Msg: fmt.Sprintf("%s: more than %s rendered, over the source's limits.maxRenderedSize of %s", what, FormatBytes(l), FormatBytes(l))}
	}
	return nil
}

// Render renders path, a slash-separated path relative to the repository
// root (""  or "." for the root itself), into Kubernetes objects. See the
// package documentation for the rules. Zero objects is not an error.
func Render(ctx context.Context, root, path string) ([]*unstructured.Unstructured, error) {
	return RenderLimited(ctx, root, path, Limits{})
}

// RenderLimited is [Render] within limits: it stops, with a [*LimitError],
// as soon as the render is over one of them.
func RenderLimited(ctx context.Context, root, path string, limits Limits) ([]*unstructured.Unstructured, error) {
	rd, err := RenderWithInputs(ctx, root, path, limits)
	return rd.Objects, err
}

// RenderWithInputs is [RenderLimited], also returning the paths the render read: the files,
// the directories it listed and the paths it only looked for. Rendering again where none of
// them changed, within the same limits, gives the same objects, so a caller that can tell
// whether they changed (by their Git hashes) can skip the render, or bring it up to date
// with [Rendered.Update] when only some files changed.
func RenderWithInputs(ctx context.Context, root, path string, limits Limits) (Rendered, error) {
	rec := newRecorder()
	objs, err := renderWithOrigins(ctx, root, path, limits, false, rec)
	if err != nil {
		return Rendered{}, err
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Object
	}
	return Rendered{Objects: out, Inputs: rec.inputs(), flat: rec.flat}, nil
}

// RenderWithOrigins is [RenderLimited], also returning where each object came
// from and which file declares it ([Origin]). Objects from plain YAML come
// in file order (files sorted by path, then document order); objects from a
// kustomization come in the order kustomize emits them (depth-first
// resource order).
func RenderWithOrigins(ctx context.Context, root, path string, limits Limits) ([]Object, error) {
	return renderWithOrigins(ctx, root, path, limits, true, nil)
}

// renderWithOrigins renders path within limits; trace also traces kustomized objects to the
// resource files that declare them. rec, when not nil, notes every path the render reads.
func renderWithOrigins(ctx context.Context, root, path string, limits Limits, trace bool, rec *recorder) ([]Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rootAbs, err := resolveRoot(root)
	if err != nil {
		return nil, err
	}
	rel, err := cleanRelPath(path)
	if err != nil {
		return nil, err
	}
	or, err := os.OpenRoot(rootAbs)
	if err != nil {
		return nil, fmt.Errorf("open repository root %s: %w", root, err)
	}
	defer or.Close()
	r := repoRoot{Root: or, rec: rec}

	info, err := r.Stat(rel)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", displayPath(rel), relativize(linkError(err), rootAbs))
	}
	b := &budget{limits: limits}
	if !info.IsDir() {
		return renderFiles(ctx, r, []string{rel}, b)
	}
	if _, ok := findKustomization(r, rel); ok {
		return renderKustomization(ctx, rootAbs, r, rel, b, trace, rec)
	}
	files, err := yamlFiles(r, rel)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", displayPath(rel), relativize(err, rootAbs))
	}
	return renderFiles(ctx, r, files, b)
}

// resolveRoot returns root as an absolute path with symlinks resolved.
func resolveRoot(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve repository root %s: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolve repository root %s: %w", root, err)
	}
	return resolved, nil
}

// cleanRelPath checks that p is a local path and returns it cleaned, in
// slash form, "." for the root.
func cleanRelPath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	p = filepath.ToSlash(p)
	c := path.Clean(p)
	if path.IsAbs(c) || !filepath.IsLocal(filepath.FromSlash(c)) && c != "." {
		return "", fmt.Errorf("render path %q: %w", p, ErrOutsideRoot)
	}
	return c, nil
}

// displayPath is how a repository-relative path appears in messages.
func displayPath(rel string) string {
	if rel == "." {
		return "repository root"
	}
	return rel
}

// kustomizationNames returns the file names that make a directory a
// kustomization, in the order kustomize looks for them.
func kustomizationNames() [3]string {
	return [3]string{"kustomization.yaml", "kustomization.yml", "Kustomization"}
}

// findKustomization returns the name of the kustomization file in dir.
func findKustomization(r repoRoot, dir string) (string, bool) {
	for _, n := range kustomizationNames() {
		p := path.Join(dir, n)
		if info, err := r.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// isKustomizationFile reports whether name is a kustomization file name.
func isKustomizationFile(name string) bool {
	for _, n := range kustomizationNames() {
		if name == n {
			return true
		}
	}
	return false
}

// yamlFiles lists the *.yaml and *.yml files under dir, sorted by path,
// skipping hidden directories and files (such as .git), kustomization
// files and symlinks to directories.
func yamlFiles(r repoRoot, dir string) ([]string, error) {
	var files []string
	err := r.walkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || isKustomizationFile(name) {
			return nil
		}
		ext := strings.ToLower(path.Ext(name))
		if ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// Follow the link only inside the root; skip directories.
			info, err := r.Stat(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, linkError(err))
			}
			if info.IsDir() {
				return nil
			}
		}
		files = append(files, p)
		return nil
	})
	return files, err
}

// linkError turns os.Root's escape error into ErrOutsideRoot. The os
// package exports no sentinel for it, so the message is matched; the
// symlink tests fail if it ever changes.
func linkError(err error) error {
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("symlink leads %w", ErrOutsideRoot)
	}
	return err
}

// renderFiles decodes the given files, in order, within the budget: a file's
// size is counted before it is read.
func renderFiles(ctx context.Context, r repoRoot, files []string, b *budget) ([]Object, error) {
	var out []Object
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := r.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, linkError(err))
		}
		if err := b.add(0, info.Size(), "reading "+f); err != nil {
			return nil, err
		}
		data, err := r.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, linkError(err))
		}
		docs, err := decodeYAML(f, data)
		if err != nil {
			return nil, err
		}
		if err := b.add(int64(len(docs)), 0, f); err != nil {
			return nil, err
		}
		for i, d := range docs {
			obj, err := toObject(d.value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", f, d.line, err)
			}
			out = append(out, Object{Object: obj, Origin: Origin{File: f, Document: i, Line: d.line, Source: f, SourceLine: d.line}})
		}
	}
	return out, nil
}

// toObject checks that m is a Kubernetes object and wraps it.
func toObject(m map[string]any) (*unstructured.Unstructured, error) {
	if m["kind"] == "List" {
		return nil, errors.New("kind List is not supported; write one document per object")
	}
	var missing []string
	for _, field := range []string{"apiVersion", "kind"} {
		if s, ok := m[field].(string); !ok || s == "" {
			missing = append(missing, field)
		}
	}
	meta, _ := m["metadata"].(map[string]any)
	if s, ok := meta["name"].(string); !ok || s == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		desc := "object"
		if k, ok := m["kind"].(string); ok && k != "" {
			desc = k
		}
		return nil, fmt.Errorf("%s is missing %s", desc, strings.Join(missing, ", "))
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// relErr hides the absolute repository root in an error's message, keeping
// the error chain.
type relErr struct {
	msg string
	err error
}

func (e *relErr) Error() string { return e.msg }
func (e *relErr) Unwrap() error { return e.err }

// relativize rewrites absolute paths under root in err's message as
// repository-relative paths.
func relativize(err error, root string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	rel := strings.ReplaceAll(msg, root+string(filepath.Separator), "")
	rel = strings.ReplaceAll(rel, root, ".")
	if rel == msg {
		return err
	}
	return &relErr{msg: rel, err: err}
}
