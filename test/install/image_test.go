package install

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/driftless-dev/driftless/internal/image"
	"github.com/driftless-dev/driftless/internal/release"
)

// The binary the image tests put into images: built once per package run, as make image builds
// it. buildDir is removed by TestMain.
var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	buildDir   string
)

const (
	testVersion = "v0.0.0-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	caBundle    = "/etc/ssl/certs/ca-certificates.crt"
)

// testEpoch stands for a commit time.
var testEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func imageBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		if buildDir, binaryErr = os.MkdirTemp("", "driftless-image-"); binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(buildDir, "driftless")
		binaryErr = image.BuildBinary(t.Context(), image.BinaryOptions{
			ModuleRoot: root, Out: binaryPath, Arch: runtime.GOARCH, Version: testVersion, Commit: testCommit,
		})
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func imageOptions(t *testing.T) image.Options {
	t.Helper()
	if _, err := os.Stat(caBundle); err != nil {
		t.Fatalf("the image ships the build machine's CA bundle (Debian's ca-certificates): %v", err)
	}
	return image.Options{Binary: imageBinary(t), CABundle: caBundle, Arch: runtime.GOARCH, Epoch: testEpoch, Version: testVersion, Revision: testCommit}
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// copyWithMtime copies src to a new file in dir with the given modification time.
func copyWithMtime(t *testing.T, src, dir string, mtime time.Time) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dst, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestImageIsReproducible builds the image twice from copies of the same inputs with different
// file times, modes and paths and gets the same digest; another commit time gives another one.
func TestImageIsReproducible(t *testing.T) {
	opts := imageOptions(t)
	first, err := image.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	again := opts
	again.Binary = copyWithMtime(t, opts.Binary, t.TempDir(), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	again.CABundle = copyWithMtime(t, opts.CABundle, t.TempDir(), time.Date(2002, 2, 2, 0, 0, 0, 0, time.UTC))
	second, err := image.Build(again)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, first), digest(t, second); a != b {
		t.Fatalf("the same inputs built %s and %s", a, b)
	}
	t.Logf("image digest %s", digest(t, first))

	later := opts
	later.Epoch = testEpoch.Add(time.Second)
	third, err := image.Build(later)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, third) == digest(t, first) {
		t.Errorf("a different commit time built the same digest %s", digest(t, first))
	}
}

// TestImageContents writes the image as an OCI layout, reads it back, unpacks its layers and
// checks every file's owner, mode and time, the config's user, entrypoint and command, and runs
// the unpacked driftless binary.
func TestImageContents(t *testing.T) {
	img, err := image.Build(imageOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "image")
	if err := image.WriteLayout(dir, img, testVersion); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := p.Image(digest(t, img))
	if err != nil {
		t.Fatalf("the OCI layout does not hold image %s: %v", digest(t, img), err)
	}
	if mt, err := loaded.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %q (%v), want %q", mt, err, types.OCIManifestSchema1)
	}

	cfg, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", cfg.Config.User)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Equal(testEpoch) {
		t.Errorf("image %s/%s created %s, want linux/%s created %s", cfg.OS, cfg.Architecture, cfg.Created, runtime.GOARCH, testEpoch)
	}
	// The Deployment's args replace the default command and keep the entrypoint.
	deploy := convert[appsv1.Deployment](t, find(t, renderDefault(t), "Deployment", "driftless"))
	args := deploy.Spec.Template.Spec.Containers[0].Args
	if got, want := append(slices.Clone(cfg.Config.Entrypoint), args...), []string{"/driftless", "run", "--config", "/etc/driftless/config.yaml", "--cert-dir", "/etc/driftless/certs"}; !slices.Equal(got, want) {
		t.Errorf("the Deployment runs %q, want %q", got, want)
	}
	if !slices.Equal(cfg.Config.Cmd, args) {
		t.Errorf("image command %q, the Deployment's args %q", cfg.Config.Cmd, args)
	}
	if sc := deploy.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != image.UID || *sc.RunAsGroup != image.GID {
		t.Errorf("the Deployment runs as %+v, the image as %d:%d", sc, image.UID, image.GID)
	}

	type file struct {
		mode     int64
		uid, gid int
	}
	want := map[string]file{
		"driftless":                         {0o755, 0, 0},
		"etc":                               {0o755, 0, 0},
		"etc/group":                         {0o644, 0, 0},
		"etc/passwd":                        {0o644, 0, 0},
		"etc/ssl":                           {0o755, 0, 0},
		"etc/ssl/certs":                     {0o755, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
		"home":                              {0o755, 0, 0},
		"home/nonroot":                      {0o700, 65532, 65532},
		"root":                              {0o700, 0, 0},
		"tmp":                               {0o1777, 0, 0},
		"var":                               {0o755, 0, 0},
		"var/cache":                         {0o755, 0, 0},
		"var/cache/driftless":               {0o755, 65532, 65532},
	}
	rootfs := t.TempDir()
	// mutate.Extract flattens the layers into one tar stream and names directories without
	// their trailing slash.
	rc := mutate.Extract(loaded)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		w, ok := want[h.Name]
		if !ok {
			t.Errorf("unexpected file %s in the image", h.Name)
			continue
		}
		if h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.gid || !h.ModTime.Equal(testEpoch) {
			t.Errorf("%s: mode %o owner %d:%d time %s, want mode %o owner %d:%d time %s", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime, w.mode, w.uid, w.gid, testEpoch)
		}
		target := filepath.Join(rootfs, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, os.FileMode(h.Mode).Perm()); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(names) || len(names) != len(want) {
		t.Errorf("image files %v: want the %d files sorted", names, len(want))
	}

	passwd, err := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	if ca, err := os.ReadFile(filepath.Join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt")); err != nil || !strings.Contains(string(ca), "BEGIN CERTIFICATE") {
		t.Errorf("the CA bundle holds no certificate: %v", err)
	}

	// The unpacked binary runs and reports what it was built as.
	out, err := exec.CommandContext(t.Context(), filepath.Join(rootfs, "driftless"), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("the image's driftless version: %v\n%s", err, out)
	}
	var info struct {
		Version, Commit, GoVersion, OPAVersion string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("driftless version -o json: %v\n%s", err, out)
	}
	if info.Version != testVersion || info.Commit != testCommit || info.GoVersion != runtime.Version() || info.OPAVersion == "" {
		t.Errorf("the image's driftless version is %+v, want version %s commit %s, Go %s and an OPA version", info, testVersion, testCommit, runtime.Version())
	}
}

// TestReleaseManifest renders the release manifest with the built image's digest, checks that
// every image is referenced by digest, and has the API server accept every object in a
// server-side dry run, alongside the cert-manager CRDs TestMain installed.
func TestReleaseManifest(t *testing.T) {
	ctx := t.Context()
	img, err := image.Build(imageOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	d := digest(t, img)
	const repo = "registry.example.com/platform/driftless"
	objs, err := release.Render(ctx, release.Options{Root: root, Path: "config/default", Repository: repo, Digest: d.String()})
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, o := range objs {
		images = append(images, release.Images(o)...)
	}
	if want := []string{repo + "@" + d.String()}; !slices.Equal(images, want) {
		t.Errorf("the release's images are %q, want %q", images, want)
	}

	// The manifest written to a file, and its checksum.
	dir := t.TempDir()
	data, err := release.Marshal(objs, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "install.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := release.WriteSums(dir, []string{"install.yaml"}); err != nil {
		t.Fatal(err)
	}
	check := exec.CommandContext(ctx, "sha256sum", "-c", "SHA256SUMS")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "install.yaml: OK" {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}

	// The whole file in one server-side dry run, as kubectl apply -f install.yaml sends it. The
	// namespace must exist for the namespaced objects to be dry-run.
	if r := cp.Admin.KubectlWith(ctx, toYAML(t, objs[0]), nil, "apply", "--server-side", "-f", "-"); r.Err != nil {
		t.Fatalf("apply %s: %v\n%s", id(objs[0]), r.Err, r.Combined())
	}
	r := cp.Admin.Kubectl(ctx, "apply", "--server-side", "--dry-run=server", "--field-manager=install-test", "-f", filepath.Join(dir, "install.yaml"))
	if r.Err != nil {
		t.Fatalf("kubectl apply --server-side --dry-run=server -f install.yaml: %v\n%s", r.Err, r.Combined())
	}
	if lines := strings.Split(strings.TrimSpace(r.Stdout), "\n"); len(lines) != len(objs) {
		t.Errorf("kubectl applied %d objects, want %d:\n%s", len(lines), len(objs), r.Stdout)
	}
	if strings.Contains(r.Stderr, "Warning") {
		t.Errorf("the API server warns:\n%s", r.Stderr)
	}

	// A digest that is not one is refused before anything is rendered.
	if _, err := release.Render(ctx, release.Options{Root: root, Path: "config/default", Digest: "latest"}); err == nil {
		t.Error("release.Render accepted the digest \"latest\"")
	}
}
