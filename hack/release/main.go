// Command release builds Driftless's release artefacts under dist/ without a container engine:
//
//	go run ./hack/release image      # dist/driftless-linux-<arch>, dist/image (OCI layout), dist/driftless-image.tar
//	go run ./hack/release manifests  # dist/install.yaml pinned by digest, dist/SHA256SUMS
//
// `make image` and `make release` run it with the version, commit and SOURCE_DATE_EPOCH of the
// checked-out commit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/driftless-dev/driftless/internal/image"
	"github.com/driftless-dev/driftless/internal/release"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

// Files under the dist directory.
const (
	layoutDir   = "image"
	archiveFile = "driftless-image.tar"
	installFile = "install.yaml"
)

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: release image|manifests [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dist := fs.String("dist", "dist", "output directory")
	repo := fs.String("repo", release.DefaultRepository, "image repository the image is pushed to")
	version := fs.String("version", "dev", "version (git describe)")
	commit := fs.String("commit", "", "commit the build is from")
	switch args[0] {
	case "image":
		arch := fs.String("arch", runtime.GOARCH, "GOARCH of the image")
		epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "timestamp of every file and of the image, in seconds since 1970 (the commit time)")
		caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to ship as /etc/ssl/certs/ca-certificates.crt")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		secs, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("--epoch %q (SOURCE_DATE_EPOCH): want seconds since 1970: %w", *epoch, err)
		}
		return buildImage(ctx, *dist, *repo, *arch, *caBundle, *version, *commit, time.Unix(secs, 0))
	case "manifests":
		digest := fs.String("digest", "", "image digest; read from the OCI layout in --dist when empty")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return manifests(ctx, *dist, *repo, *digest, *version)
	default:
		return fmt.Errorf("unknown command %q: want image or manifests", args[0])
	}
}

func buildImage(ctx context.Context, dist, repo, arch, caBundle, version, commit string, epoch time.Time) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(dist, "driftless-linux-"+arch)
	if err := image.BuildBinary(ctx, image.BinaryOptions{ModuleRoot: root, Out: bin, Arch: arch, Version: version, Commit: commit}); err != nil {
		return err
	}
	img, err := image.Build(image.Options{
		Binary: bin, CABundle: caBundle, Arch: arch, Epoch: epoch,
		Version: version, Revision: commit, Source: "https://github.com/driftless-dev/driftless",
	})
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	if err := image.WriteLayout(filepath.Join(dist, layoutDir), img, version); err != nil {
		return err
	}
	if err := image.WriteArchive(filepath.Join(dist, archiveFile), img, repo+":"+tag(version)); err != nil {
		return err
	}
	fmt.Printf("image %s@%s\n  OCI layout   %s\n  docker archive %s (%s:%s)\n", repo, digest, filepath.Join(dist, layoutDir), filepath.Join(dist, archiveFile), repo, tag(version))
	return nil
}

// tag makes a version usable as an image tag.
func tag(version string) string {
	return strings.NewReplacer("+", "_", "/", "_").Replace(version)
}

func manifests(ctx context.Context, dist, repo, digest, version string) error {
	if digest == "" {
		h, err := layoutDigest(filepath.Join(dist, layoutDir))
		if err != nil {
			return fmt.Errorf("%w (run make image first, or pass --digest)", err)
		}
		digest = h.String()
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	objs, err := release.Render(ctx, release.Options{Root: root, Path: "config/default", Repository: repo, Digest: digest, Version: version})
	if err != nil {
		return err
	}
	out, err := release.Marshal(objs, version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dist, installFile), out, 0o644); err != nil {
		return err
	}
	files := []string{installFile}
	for _, f := range []string{archiveFile, "driftless-linux-amd64", "driftless-linux-arm64"} {
		if _, err := os.Stat(filepath.Join(dist, f)); err == nil {
			files = append(files, f)
		}
	}
	if err := release.WriteSums(dist, files); err != nil {
		return err
	}
	fmt.Printf("%s: %d objects, image %s@%s\n%s: %s\n", filepath.Join(dist, installFile), len(objs), repo, digest, filepath.Join(dist, "SHA256SUMS"), strings.Join(files, ", "))
	return nil
}

// layoutDigest returns the digest of the one image in the OCI layout at dir.
func layoutDigest(dir string) (v1.Hash, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return v1.Hash{}, fmt.Errorf("OCI layout %s holds %d images, want 1", dir, len(m.Manifests))
	}
	return m.Manifests[0].Digest, nil
}
