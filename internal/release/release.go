// Package release renders the release manifest dist/install.yaml from config/default, with the
// Driftless image pinned by digest, and writes the SHA256SUMS of the release files.
//
// The package is build tooling: the driftless binary must not import it. It renders in-process
// with the reconciler's kustomize (krusty, root-confined, plugins and remote bases off) and never
// shells out to kustomize.
package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// DefaultRepository is the image repository config/manager/deployment.yaml names.
const DefaultRepository = "ghcr.io/driftless-dev/driftless"

// Options says what to render. Root, Path and Digest are required.
type Options struct {
	// Root is the module root; Path the kustomization under it, such as "config/default".
	Root, Path string
	// Repository is the repository the image is pushed to; DefaultRepository when empty.
	Repository string
	// Digest is the image manifest's digest, "sha256:<hex>".
	Digest string
	// Version goes into the manifest's header comment.
	Version string
}

// Render renders the kustomization and replaces every container image of DefaultRepository
// (any tag) with Repository@Digest. It fails when any container image, the Driftless one or
// another, is not then referenced by digest.
func Render(ctx context.Context, opts Options) ([]*unstructured.Unstructured, error) {
	if !strings.HasPrefix(opts.Digest, "sha256:") || len(opts.Digest) != len("sha256:")+64 {
		return nil, fmt.Errorf("image digest %q: want sha256:<64 hex digits>", opts.Digest)
	}
	repo := opts.Repository
	if repo == "" {
		repo = DefaultRepository
	}
	objs, err := render.Render(ctx, opts.Root, opts.Path)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", opts.Path, err)
	}
	pinned := repo + "@" + opts.Digest
	replaced := 0
	for _, o := range objs {
		for _, c := range containers(o.Object) {
			ref, _ := c["image"].(string)
			if repository(ref) == DefaultRepository {
				c["image"] = pinned
				replaced++
			}
		}
	}
	if replaced == 0 {
		return nil, fmt.Errorf("%s has no container image of %s to pin", opts.Path, DefaultRepository)
	}
	for _, o := range objs {
		for _, ref := range Images(o) {
			if !ByDigest(ref) {
				return nil, fmt.Errorf("%s %s/%s: image %q is not pinned by digest", o.GetKind(), o.GetNamespace(), o.GetName(), ref)
			}
		}
	}
	return objs, nil
}

// Marshal writes objs as one multi-document YAML stream, in order, after a header comment.
func Marshal(objs []*unstructured.Unstructured, version string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Driftless %s: kubectl apply --server-side -f install.yaml (see docs/install.md).\n", version)
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("marshal %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Images returns the image of every container, init container and ephemeral container in o,
// wherever its pod template sits (Pod, workload, CronJob).
func Images(o *unstructured.Unstructured) []string {
	var refs []string
	for _, c := range containers(o.Object) {
		ref, _ := c["image"].(string)
		refs = append(refs, ref)
	}
	return refs
}

// ByDigest reports whether ref names its image by digest.
func ByDigest(ref string) bool {
	_, d, ok := strings.Cut(ref, "@")
	return ok && strings.HasPrefix(d, "sha256:") && len(d) == len("sha256:")+64
}

// containers finds the container maps anywhere under v.
func containers(v any) []map[string]any {
	var out []map[string]any
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if list, ok := v[k].([]any); ok && (k == "containers" || k == "initContainers" || k == "ephemeralContainers") {
				for _, c := range list {
					if m, ok := c.(map[string]any); ok {
						out = append(out, m)
					}
				}
				continue
			}
			out = append(out, containers(v[k])...)
		}
	case []any:
		for _, e := range v {
			out = append(out, containers(e)...)
		}
	}
	return out
}

// repository returns ref without its tag and digest.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// WriteSums writes dir/SHA256SUMS over files (names relative to dir), in the format of
// sha256sum, so that `sha256sum -c SHA256SUMS` checks them.
func WriteSums(dir string, files []string) error {
	var b strings.Builder
	for _, f := range slices.Sorted(slices.Values(files)) {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, f)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write SHA256SUMS: %w", err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
