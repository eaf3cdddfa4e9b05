// Package harness is the shared test harness of Driftless: a real kube-apiserver and etcd
// (envtest with binaries from hack/control-plane.sh), users with their own client certificates
// and kubeconfigs for the real kubectl, and serving certificates for webhooks.
//
// Start the control plane once per test package, in TestMain. The harness is for tests and
// the playground (test/playground); product code must not depend on it, and
// cmd/driftless's TestShippedBinaryHoldsNoTestCode checks that the binary does not link it.
package harness
