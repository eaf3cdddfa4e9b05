// Package playground is the local Driftless playground behind `make dev` and `make demo`: a
// real kube-apiserver and etcd (test/harness), a Git repository seeded from
// config/samples/config-repo, and `driftless run` in-process (test/inprocess) with the guard
// installed, one kubeconfig per persona. Demo tells the incident story on it and checks every
// step; cmd/driftless-dev is its command line.
//
// It is test code: it imports the test harness, so the shipped binary must never import it.
// The driftless commands the story runs and the guide prints are the real binary's.
package playground
