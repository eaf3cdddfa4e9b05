// Package e2e holds Driftless's end-to-end suites: the real binary's run loop against a real
// kube-apiserver and etcd, driven by the real kubectl acting as distinct users.
package e2e
