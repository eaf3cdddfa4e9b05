package render

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeYAML(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []map[string]any
		lines   []int
		wantErr string
	}{
		{name: "empty", in: ""},
		{name: "only separators and comments", in: "---\n# c\n---\n...\n"},
		{
			name:  "scalars",
			in:    "i: 42\nneg: -7\nf: 1.5\nb: true\non: on\nn: null\nts: 2024-01-01T10:00:00Z\nq: \"42\"\nhex: 0x1F\nbig: 18446744073709551616\nbin: !!binary aGk=\n",
			want:  []map[string]any{{"i": int64(42), "neg": int64(-7), "f": 1.5, "b": true, "on": "on", "n": nil, "ts": "2024-01-01T10:00:00Z", "q": "42", "hex": int64(31), "big": 18446744073709551616.0, "bin": "aGk="}},
			lines: []int{1},
		},
		{
			name:  "non-string keys become strings",
			in:    "data:\n  8080: http\n  true: yes\n  ~: nothing\n",
			want:  []map[string]any{{"data": map[string]any{"8080": "http", "true": "yes", "null": "nothing"}}},
			lines: []int{1},
		},
		{
			name:  "anchors, aliases and merge keys",
			in:    "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\nlist: [*b]\n",
			want:  []map[string]any{{"base": map[string]any{"x": int64(1), "y": int64(2)}, "merged": map[string]any{"x": int64(1), "y": int64(3)}, "list": []any{map[string]any{"x": int64(1), "y": int64(2)}}}},
			lines: []int{1},
		},
		{
			name:  "documents and lines",
			in:    "# head\na: 1\n---\n\n---\nb: 2\n",
			want:  []map[string]any{{"a": int64(1)}, {"b": int64(2)}},
			lines: []int{2, 6},
		},
		{name: "syntax error line", in: "a: 1\n---\nb: 2\nc\nd: 3\n", wantErr: "f.yaml:4: could not find expected ':'"},
		{name: "tab indentation", in: "a:\n\tb: 1\n", wantErr: "f.yaml:2: found character that cannot start any token"},
		{name: "duplicate key", in: "a: 1\nb: 2\na: 3\n", wantErr: `f.yaml:3: mapping key "a" already defined at line 1`},
		{name: "scalar document", in: "hello\n", wantErr: "f.yaml:1: document is a scalar"},
		{name: "sequence key", in: "? [a, b]\n: c\n", wantErr: "f.yaml:1: mapping key is a sequence"},
		{name: "NaN", in: "a: .nan\n", wantErr: "f.yaml:1: .nan is not a valid number"},
		{name: "bad merge", in: "a:\n  <<: 3\n", wantErr: "f.yaml:2: merge key"},
		{name: "unknown alias", in: "a: *nope\n", wantErr: "f.yaml: unknown anchor 'nope' referenced"},
		{
			name:    "alias bomb",
			in:      "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
			wantErr: "values",
		},
		{
			name:    "merge bomb",
			in:      "a: &a {x: 1, y: 2, z: 3, w: 4}\nb: &b {<<: [*a,*a,*a,*a,*a,*a,*a,*a]}\nc: &c {<<: [*b,*b,*b,*b,*b,*b,*b,*b]}\nd: &d {<<: [*c,*c,*c,*c,*c,*c,*c,*c]}\ne: &e {<<: [*d,*d,*d,*d,*d,*d,*d,*d]}\nf: &f {<<: [*e,*e,*e,*e,*e,*e,*e,*e]}\ng: &g {<<: [*f,*f,*f,*f,*f,*f,*f,*f]}\nh: {<<: [*g,*g,*g,*g,*g,*g,*g,*g]}\n",
			wantErr: "values",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := decodeYAML("f.yaml", []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("decodeYAML = %v, want error containing %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "f.yaml:") {
					t.Fatalf("error %q does not start with the file name", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeYAML: %v", err)
			}
			if len(docs) != len(tc.want) {
				t.Fatalf("decoded %d documents, want %d", len(docs), len(tc.want))
			}
			for i, d := range docs {
				if !reflect.DeepEqual(d.value, tc.want[i]) {
					t.Errorf("document %d = %#v, want %#v", i, d.value, tc.want[i])
				}
				if d.line != tc.lines[i] {
					t.Errorf("document %d line = %d, want %d", i, d.line, tc.lines[i])
				}
			}
		})
	}
}

func TestIsRemote(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{ref: "https://example.com/x.yaml", want: true},
		{ref: "HTTP://example.com/x.yaml", want: true},
		{ref: "ssh://git@example.com/repo.git", want: true},
		{ref: "file:///srv/repo", want: true},
		{ref: "git::https://example.com/repo.git", want: true},
		{ref: "github.com/org/repo//base?ref=v1", want: true},
		{ref: "GitHub.com:org/repo", want: true},
		{ref: "git@github.com:org/repo.git", want: true},
		{ref: "my-user@host:repo", want: true},
		{ref: "../base", want: false},
		{ref: "deployment.yaml", want: false},
		{ref: "github.company.internal/base", want: false},
		{ref: "nginx@sha256:abc", want: true},
		{ref: "1user@host:repo", want: false},
		{ref: "dir/with@sign", want: false},
		{ref: "@foo", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			if got := isRemote(tc.ref); got != tc.want {
				t.Fatalf("isRemote(%q) = %v, want %v", tc.ref, got, tc.want)
			}
		})
	}
}

func TestConfinedFS(t *testing.T) {
	root := t.TempDir()
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "in.yaml"), []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "out.yaml"), []byte("b: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "out.yaml"), filepath.Join(root, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	fsys := newConfinedFS(root)

	reads := []struct {
		name   string
		path   string
		wantOK bool
	}{
		{name: "inside", path: filepath.Join(root, "in.yaml"), wantOK: true},
		{name: "outside", path: filepath.Join(outside, "out.yaml")},
		{name: "dot-dot", path: filepath.Join(root, "..", filepath.Base(outside), "out.yaml")},
		{name: "symlink out", path: filepath.Join(root, "link.yaml")},
	}
	for _, tc := range reads {
		t.Run("read "+tc.name, func(t *testing.T) {
			_, err := fsys.ReadFile(tc.path)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("ReadFile: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrOutsideRoot) {
				t.Fatalf("ReadFile = %v, want ErrOutsideRoot", err)
			}
			if fsys.Exists(tc.path) || fsys.IsDir(filepath.Dir(tc.path)) && !strings.HasPrefix(filepath.Dir(tc.path), root) {
				t.Fatal("Exists or IsDir reports a path outside the root")
			}
		})
	}

	writes := []struct {
		name string
		fn   func() error
	}{
		{name: "WriteFile", fn: func() error { return fsys.WriteFile(filepath.Join(root, "new.yaml"), nil) }},
		{name: "Create", fn: func() error { _, err := fsys.Create(filepath.Join(root, "new.yaml")); return err }},
		{name: "Mkdir", fn: func() error { return fsys.Mkdir(filepath.Join(root, "d")) }},
		{name: "MkdirAll", fn: func() error { return fsys.MkdirAll(filepath.Join(root, "d/e")) }},
		{name: "RemoveAll", fn: func() error { return fsys.RemoveAll(filepath.Join(root, "in.yaml")) }},
	}
	for _, tc := range writes {
		t.Run("write "+tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, errReadOnly) {
				t.Fatalf("%s = %v, want read-only error", tc.name, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "in.yaml")); err != nil {
		t.Fatalf("in.yaml changed: %v", err)
	}

	matches, err := fsys.Glob(filepath.Join(root, "*.yaml"))
	if err != nil {
		t.Fatalf("Glob: %v", err)
	}
	if want := []string{filepath.Join(root, "in.yaml")}; !reflect.DeepEqual(matches, want) {
		t.Fatalf("Glob = %v, want %v", matches, want)
	}
}

// FuzzRenderYAML checks that the YAML decoder never panics, that its
// errors name the file, and that what it accepts is a valid object tree.
func FuzzRenderYAML(f *testing.F) {
	seeds := []string{
		"",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n",
		"a: &x [1, 2]\nb: *x\nc:\n  <<: {d: 1}\n",
		"---\n---\n- 1\n",
		"a: 1\n\tb: 2\n",
		"? [a]\n: b\n",
		"x: .inf\n",
		"k: !!binary aGk=\nts: 2001-12-14t21:59:43.10-05:00\n",
		"{a: [b, {c: d}], 1: 2, ~: 3}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := decodeYAML("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, d := range docs {
			if d.line < 1 {
				t.Fatalf("document line %d < 1", d.line)
			}
			checkJSONCompatible(t, d.value)
			if obj, err := toObject(d.value); err == nil {
				_ = obj.DeepCopy()
			}
		}
	})
}

func checkJSONCompatible(t *testing.T, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil, string, bool, int64:
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("decoded %v, not representable in JSON", x)
		}
	case []any:
		for _, e := range x {
			checkJSONCompatible(t, e)
		}
	case map[string]any:
		for _, e := range x {
			checkJSONCompatible(t, e)
		}
	default:
		t.Fatalf("decoded value of type %T, not JSON-compatible", v)
	}
}
