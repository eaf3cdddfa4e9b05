#!/usr/bin/env bash
# Builds the control-plane binaries that the tests and `driftless dev` run: kube-apiserver and
# kubectl from k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, all through the Go
# module proxy. The binaries land in a per-user cache keyed by version, so a second run is a
# no-op. Prints the directory to hand to envtest as KUBEBUILDER_ASSETS on its last line.
#
#   hack/control-plane.sh            build what is missing, print the directory
#   hack/control-plane.sh --print    print the directory only (exit 1 if incomplete)
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
cache_root="${DRIFTLESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftless}"
dest="$cache_root/control-plane/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}"

log() { printf 'control-plane: %s\n' "$*" >&2; }

complete() {
  [ -x "$dest/kube-apiserver" ] && [ -x "$dest/kubectl" ] && [ -x "$dest/etcd" ]
}

if [ "${1:-}" = "--print" ]; then
  complete || { log "binaries missing in $dest: run hack/control-plane.sh"; exit 1; }
  echo "$dest"
  exit 0
fi

if complete; then
  log "cached in $dest"
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Builds run with the module cache shared with the rest of the machine; nothing below touches
# the project's own go.mod.
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBE_VERSION#v1.}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

if [ ! -x "$dest/kube-apiserver" ] || [ ! -x "$dest/kubectl" ]; then
  log "building kube-apiserver and kubectl $KUBE_VERSION (a few minutes on first run)"
  mkdir -p "$work/kube"
  cd "$work/kube"
  go mod init driftless.local/control-plane-kube >/dev/null 2>&1
  log "downloading k8s.io/kubernetes@$KUBE_VERSION"
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || { log "could not read the go.mod of k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
  # Every module that kubernetes maps to ./staging is published under its own name at v0.x.
  mapfile -t staged < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$gomod")
  [ "${#staged[@]}" -gt 0 ] || { log "no staging replacements found in $gomod"; exit 1; }
  log "pinning ${#staged[@]} staging modules to $staging_version"
  args=(-require="k8s.io/kubernetes@$KUBE_VERSION")
  for m in "${staged[@]}"; do args+=(-replace="$m=$m@$staging_version"); done
  go mod edit "${args[@]}"
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving dependencies"
  go mod tidy -e >/dev/null 2>&1 || true
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  log "compiling kube-apiserver and kubectl"
  go build -trimpath -ldflags "-s -w $ldflags" -o "$work/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  mv "$work/bin/kube-apiserver" "$work/bin/kubectl" "$dest/"
fi

if [ ! -x "$dest/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  mkdir -p "$work/etcd"
  cd "$work/etcd"
  go mod init driftless.local/control-plane-etcd >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod tidy -e >/dev/null 2>&1 || true
  go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3
  mv "$work/bin/etcd" "$dest/"
fi

complete || { log "build finished but binaries are missing in $dest"; exit 1; }
log "ready: $("$dest/kube-apiserver" --version) / kubectl $("$dest/kubectl" version --client -o yaml | sed -n 's/^  gitVersion: //p' | head -1) / etcd $("$dest/etcd" --version | head -1)"
echo "$dest"
