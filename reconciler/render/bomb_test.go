package render_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// aliasBomb is a ConfigMap of about 400 bytes whose data expands, alias by alias, to 10⁹
// values ("billion laughs").
func aliasBomb(indent string) string {
	var b strings.Builder
	b.WriteString(indent + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 8; i++ {
		p := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "%sa%d: &a%d [%s]\n", indent, i, i, strings.Repeat(p+", ", 9)+p)
	}
	return b.String()
}

// TestKustomizeRefusesAliasBombs: a YAML file kustomize would read whose aliases expand
// beyond a plain render's limit is refused before kustomize expands it (which took all
// memory): as a resource, as a patch file, as an inline patch and in the kustomization.
func TestKustomizeRefusesAliasBombs(t *testing.T) {
	root := t.TempDir()
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
	bomb := cm + "data:\n  key: value\nbomb:\n" + aliasBomb("  ")
	writeFile(t, filepath.Join(root, "resource", "bomb.yaml"), bomb)
	writeFile(t, filepath.Join(root, "resource", "kustomization.yaml"), "resources: [bomb.yaml]\n")
	writeFile(t, filepath.Join(root, "patchfile", "cm.yaml"), cm)
	writeFile(t, filepath.Join(root, "patchfile", "patch.yaml"), bomb)
	writeFile(t, filepath.Join(root, "patchfile", "kustomization.yaml"), "resources: [cm.yaml]\npatches:\n  - path: patch.yaml\n")
	writeFile(t, filepath.Join(root, "inline", "cm.yaml"), cm)
	writeFile(t, filepath.Join(root, "inline", "kustomization.yaml"), "resources: [cm.yaml]\npatches:\n  - patch: |-\n"+indent(bomb, "      ")+"\n")
	writeFile(t, filepath.Join(root, "itself", "cm.yaml"), cm)
	writeFile(t, filepath.Join(root, "itself", "kustomization.yaml"), "resources: [cm.yaml]\nlabels:\n  - pairs: {a: b}\nx-bomb:\n"+aliasBomb("  "))
	for dir, want := range map[string]string{
		"resource":  "resource/bomb.yaml:",
		"patchfile": "patchfile/patch.yaml:",
		"inline":    "inline/kustomization.yaml (an inline patch):",
		"itself":    "itself/kustomization.yaml:",
	} {
		t.Run(dir, func(t *testing.T) {
			_, err := render.Render(t.Context(), root, dir)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "document expands to more than 1048576 values") {
				t.Fatalf("render %s: %v; want it refused at %s for its expansion", dir, err, want)
			}
		})
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix)
}
