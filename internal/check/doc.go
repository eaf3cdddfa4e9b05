// Package check runs `driftless check`: it loads a policy set (from a DriftlessConfig, flags
// or both), renders each path the way the reconciler does, evaluates every object with the
// engine the reconciler and the guard use, and returns a policy/report.Report whose objects
// name the file and line that declare them (reconciler/render traces kustomized objects).
//
// It decides which root confines a path's rendering (the enclosing Git repository, a given
// root, or else the path itself) and how files are named in reports.
//
// The package only reads files. It must not talk to a cluster or a Git server, write
// anything, or decide exit codes and output: the command does that with the Report.
package check
