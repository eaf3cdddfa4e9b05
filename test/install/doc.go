// Package install tests the installation in config/ against a real kube-apiserver and etcd with
// the real kubectl: config/default renders with kustomize and every object is accepted by the
// API server, the self-protection policy keeps everyone but Driftless's own identities away
// from the installation, and a running guard picks up a rotated serving certificate while the
// API server keeps calling it.
//
// The cert-manager CustomResourceDefinitions come from the cert-manager Go module the project
// depends on; no cert-manager controller runs, so Certificates are never issued here.
package install
