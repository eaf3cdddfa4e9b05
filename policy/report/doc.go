// Package report is the outcome of `driftless check`: the CheckReport document (apiVersion
// driftless.dev/v1alpha1), built from policy results, and its formats: text, JSON, JUnit XML
// and SARIF 2.1.0.
//
// The JSON document is public and stable within its apiVersion: fields are only ever added,
// never renamed or removed.
//
// The package only describes and writes results. It must not render manifests, load
// configuration or policies, or know where the objects came from beyond the file, line and
// kustomization its caller names; internal/check runs a check and fills a Report.
package report
