// Package installation finds what an installed Driftless runs with, and which objects are
// under an active break-glass, for the commands that read it from the cluster (`driftless
// doctor`, `driftless break-glass`). It reads only; it never changes the cluster.
package installation
