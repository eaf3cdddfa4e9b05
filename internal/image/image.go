package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The identity the image runs as: distroless's nonroot user, which the Deployment's
// securityContext names too.
const (
	UID      = 65532
	GID      = 65532
	UserName = "nonroot"
	// User is the image config's User: uid:gid, so that Kubernetes' runAsNonRoot can check it
	// without reading /etc/passwd.
	User = "65532:65532"
)

// Paths inside the image.
const (
	BinaryPath   = "/driftless"
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

// Entrypoint is the image's entrypoint. The Deployment's args (run --config ... --cert-dir ...)
// replace DefaultCmd and keep it.
var Entrypoint = []string{BinaryPath}

// DefaultCmd is the image's default command: driftless run with the paths the Deployment mounts.
func DefaultCmd() []string {
	return []string{"run", "--config", "/etc/driftless/config.yaml", "--cert-dir", "/etc/driftless/certs"}
}

// Options says what goes into the image. Binary, CABundle and Arch are required.
type Options struct {
	// Binary is the path of the static linux driftless binary (CGO_ENABLED=0).
	Binary string
	// CABundle is the path of a PEM bundle of CA certificates, such as the build machine's
	// /etc/ssl/certs/ca-certificates.crt. It becomes /etc/ssl/certs/ca-certificates.crt, where
	// Go's crypto/x509 looks first on Linux.
	CABundle string
	// Arch is the binary's GOARCH: amd64 or arm64.
	Arch string
	// Epoch is the timestamp of every file, of the layer's history and of the image: the
	// commit time (SOURCE_DATE_EPOCH), so that the same commit gives the same digest.
	Epoch time.Time
	// Version and Revision become the image's org.opencontainers.image labels; optional.
	Version, Revision string
	// Source is the repository URL for the org.opencontainers.image.source label; optional.
	Source string
}

// elfMachines maps the architectures the image supports to their ELF machine.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// entry is one file or directory of the root filesystem.
type entry struct {
	name     string // without a leading slash; directories end in "/"
	mode     int64
	uid, gid int
	data     []byte
}

// Build assembles the image: one layer with the root filesystem, the config (entrypoint,
// default command, user 65532:65532, labels) and OCI media types. The binary must be a
// statically linked ELF executable for opts.Arch.
func Build(opts Options) (v1.Image, error) {
	machine, ok := elfMachines[opts.Arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q: want amd64 or arm64", opts.Arch)
	}
	if opts.Binary == "" || opts.CABundle == "" {
		return nil, errors.New("the binary and the CA bundle are required")
	}
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("read the binary: %w", err)
	}
	if err := checkStatic(bin, machine); err != nil {
		return nil, fmt.Errorf("binary %s: %w", opts.Binary, err)
	}
	ca, err := os.ReadFile(opts.CABundle)
	if err != nil {
		return nil, fmt.Errorf("read the CA bundle: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", opts.CABundle)
	}

	layerBytes, err := layerTarGz(rootFS(bin, ca), opts.Epoch)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}

	created := v1.Time{Time: opts.Epoch.UTC()}
	labels := map[string]string{
		"org.opencontainers.image.title":       "driftless",
		"org.opencontainers.image.description": "Driftless: admission guard, policy and GitOps reconciler",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":  opts.Version,
		"org.opencontainers.image.revision": opts.Revision,
		"org.opencontainers.image.source":   opts.Source,
	} {
		if v != "" {
			labels[k] = v
		}
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: opts.Arch,
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			User:       User,
			Entrypoint: Entrypoint,
			Cmd:        DefaultCmd(),
			Env: []string{
				"PATH=/usr/local/bin:/usr/bin:/bin",
				"SSL_CERT_FILE=" + CABundlePath,
			},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "internal/image: driftless binary, CA bundle, passwd, group, /tmp",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append the layer: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img, nil
}

// checkStatic refuses a binary that is not an executable for machine or that needs a dynamic
// loader, which the image does not have.
func checkStatic(bin []byte, machine elf.Machine) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	if f.Machine != machine {
		return fmt.Errorf("built for %s, want %s", f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (build it with CGO_ENABLED=0)")
		}
	}
	return nil
}

// rootFS lists the image's files and directories, sorted by name so that parents come before
// their children.
func rootFS(bin, ca []byte) []entry {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", UserName, UID, GID, UserName, UserName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
	entries := []entry{
		{name: "driftless", mode: 0o755, data: bin},
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: UID, gid: GID},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
		{name: "var/", mode: 0o755},
		{name: "var/cache/", mode: 0o755},
		{name: "var/cache/driftless/", mode: 0o755, uid: UID, gid: GID},
	}
	slices.SortFunc(entries, func(a, b entry) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return entries
}

// layerTarGz writes entries as a gzip-compressed tar with fixed owners, modes and timestamps.
func layerTarGz(entries []entry, epoch time.Time) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	mtime := epoch.UTC().Truncate(time.Second)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			Uname:   ownerName(e.uid),
			Gname:   ownerName(e.gid),
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.name[len(e.name)-1] == '/' {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

func ownerName(id int) string {
	if id == UID {
		return UserName
	}
	return "root"
}

// WriteLayout writes img as an OCI image layout in dir, replacing whatever dir held, with
// refName (such as the version) as its org.opencontainers.image.ref.name.
func WriteLayout(dir string, img v1.Image, refName string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("write image to layout %s: %w", dir, err)
	}
	return nil
}

// WriteArchive writes img as a docker-archive tarball at path, tagged ref, for
// `docker load` and `kind load image-archive`.
func WriteArchive(path string, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
