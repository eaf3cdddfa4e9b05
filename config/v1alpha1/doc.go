// Package v1alpha1 is the versioned configuration API of Driftless: the DriftlessConfig kind in
// group driftless.dev, its defaults and its validation.
//
// A configuration is read with [Load] or [Decode], which decode strictly (an unknown or
// duplicated key is an error that names the field), apply [SetDefaults] and run [Validate].
// Callers receive either a complete, valid configuration or an error; never a half-defaulted
// one.
//
// The package describes configuration only. It must not import the webhook, policy or
// reconciler packages, talk to a cluster, or read any file other than the one it is asked to
// load.
//
// It also defines the GitSource kind, the Kubernetes object a source is since sources moved
// out of the configuration file; its CustomResourceDefinition in config/crd is generated from
// the markers in gitsource_types.go by `make manifests`.
//
// +groupName=driftless.dev
package v1alpha1
