// Package image builds the Driftless container image without a container engine or a base
// image: one layer holding the static driftless binary, a CA bundle, /etc/passwd and /etc/group
// with the non-root user 65532, and a world-writable /tmp, assembled with go-containerregistry
// and written as an OCI image layout (and optionally a docker-archive tarball).
//
// The image is reproducible: every file has a fixed owner, mode and timestamp (the commit time,
// SOURCE_DATE_EPOCH), the tar entries are sorted and the layer is compressed with fixed
// settings, so the same binary and CA bundle give the same digest on every build.
//
// The package is build tooling: the driftless binary must not import it, and it must not
// contact a registry or read anything but the files it is given.
package image
