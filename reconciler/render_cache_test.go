package reconciler

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/test/gitserver"
)

// TestRenderCacheFollowsWhatTheKustomizationReads: the render of a commit is reused for a
// later commit only when nothing the kustomization reads changed. A change to a file of a
// nested base, to a generator's input, to a component, or to the render's options renders
// again; a change to paths the kustomization does not read does not.
func TestRenderCacheFollowsWhatTheKustomizationReads(t *testing.T) {
	cm := func(name, value string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: \"" + value + "\"\n"
	}
	repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), "cache.git"))
	commit := func(files map[string]string) {
		t.Helper()
		repo.Commit(t, "main", gitserver.Change{Files: files})
	}
	commit(map[string]string{
		"apps/overlay/kustomization.yaml":     "resources:\n  - ../../bases/web\ncomponents:\n  - ../../components/extra\nconfigMapGenerator:\n  - name: settings\n    files:\n      - settings.properties\n",
		"apps/overlay/settings.properties":    "level=1\n",
		"apps/overlay/unused.yaml":            cm("unused", "1"),
		"bases/web/kustomization.yaml":        "resources:\n  - ../inner\n  - web.yaml\n",
		"bases/web/web.yaml":                  cm("web", "1"),
		"bases/inner/kustomization.yaml":      "resources:\n  - inner.yaml\n",
		"bases/inner/inner.yaml":              cm("inner", "1"),
		"bases/other/other.yaml":              cm("other", "1"),
		"components/extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n  - extra.yaml\n",
		"components/extra/extra.yaml":         cm("extra", "1"),
		"docs/README.md":                      "docs\n",
		"flat/kustomization.yaml":             "resources:\n  - a.yaml\n  - b.yaml\n",
		"flat/a.yaml":                         cm("a", "1"),
		"flat/b.yaml":                         cm("b", "1"),
	})

	git := source.NewGit(source.Spec{URL: repo.FileURL(), Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()}, source.NewGitFetcher(), nil)
	p := &planner{env: &env{src: v1alpha1.Source{Path: "apps/overlay"}}}
	var last []*unstructured.Unstructured
	// render fetches the branch's head, renders it and reports whether the last render was
	// reused, and the rendered value of the named ConfigMap (the "level" key of the
	// generated one).
	render := func(name string) (bool, string) {
		t.Helper()
		art, err := git.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		objs, res, err := p.render(t.Context(), art)
		if err != nil {
			t.Fatalf("render (%s): %v", res, err)
		}
		reused := len(last) > 0 && &objs[0] == &last[0]
		last = objs
		for _, o := range objs {
			if o.GetName() == name || len(o.GetName()) > len(name) && o.GetName()[:len(name)+1] == name+"-" {
				data, _, _ := unstructured.NestedStringMap(o.Object, "data")
				if v, ok := data["value"]; ok {
					return reused, v
				}
				return reused, data["settings.properties"]
			}
		}
		t.Fatalf("render has no %s", name)
		return false, ""
	}
	if reused, v := render("inner"); reused || v != "1" {
		t.Fatalf("first render: reused %t, inner = %q; want a render with inner 1", reused, v)
	}
	if reused, _ := render("inner"); !reused {
		t.Errorf("the same commit was rendered again")
	}

	for _, c := range []struct {
		what   string
		files  map[string]string
		name   string
		want   string
		reused bool
	}{
		{"a file outside the source's path", map[string]string{"docs/README.md": "changed\n"}, "inner", "1", true},
		{"a base nobody refers to", map[string]string{"bases/other/other.yaml": cm("other", "2")}, "inner", "1", true},
		{"a file of the overlay's directory that it does not list", map[string]string{"apps/overlay/unused.yaml": cm("unused", "2")}, "inner", "1", true},
		{"a resource of a nested base", map[string]string{"bases/inner/inner.yaml": cm("inner", "2")}, "inner", "2", false},
		{"a resource of the base", map[string]string{"bases/web/web.yaml": cm("web", "2")}, "web", "2", false},
		{"a generator input", map[string]string{"apps/overlay/settings.properties": "level=2\n"}, "settings", "level=2\n", false},
		{"a component's resource", map[string]string{"components/extra/extra.yaml": cm("extra", "2")}, "extra", "2", false},
		{"the nested base's kustomization", map[string]string{"bases/inner/kustomization.yaml": "resources:\n  - inner.yaml\ncommonLabels:\n  tier: inner\n"}, "inner", "2", false},
		{"a new resource file of a base that its kustomization does not list", map[string]string{"bases/inner/new.yaml": cm("new", "1")}, "inner", "2", true},
	} {
		commit(c.files)
		reused, v := render(c.name)
		if reused != c.reused || v != c.want {
			t.Errorf("after a commit changing %s: reused %t, %s = %q; want reused %t, %q", c.what, reused, c.name, v, c.reused, c.want)
		}
	}

	// The same content with other options renders again.
	p.src.Limits.MaxObjects = 100
	if reused, _ := render("inner"); reused {
		t.Errorf("a change of limits.maxObjects reused the render")
	}
	p.src.Limits.MaxRenderedSize = resource.MustParse("1Mi")
	if reused, _ := render("inner"); reused {
		t.Errorf("a change of limits.maxRenderedSize reused the render")
	}
	p.src.Path = "bases/web"
	if reused, _ := render("inner"); reused {
		t.Errorf("a change of path reused the render")
	}
	if reused, _ := render("inner"); !reused {
		t.Errorf("the same options and content were rendered again")
	}

	// A kustomization that lists only files is brought up to date file by file.
	p.src.Path = "flat"
	if _, v := render("a"); v != "1" {
		t.Fatalf("flat: a = %q, want 1", v)
	}
	commit(map[string]string{"flat/a.yaml": cm("a", "2")})
	if reused, v := render("a"); reused || v != "2" {
		t.Errorf("after a commit changing a file of a flat kustomization: reused %t, a = %q; want a new render with a 2", reused, v)
	}
	if _, v := render("b"); v != "1" {
		t.Errorf("after a commit changing a file of a flat kustomization: b = %q, want 1", v)
	}
}
