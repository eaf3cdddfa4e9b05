package v1alpha1

// Labels and keys of the installed configuration: config/default's configMapGenerator puts the
// DriftlessConfig into a ConfigMap named driftless-config-<hash> (the hash changes with the
// content), so commands that read the installed configuration find it by label, not by name.
const (
	// LabelComponent names the part of the installation an object is.
	LabelComponent = Group + "/component"
	// ComponentConfig is LabelComponent's value on the ConfigMap that holds the installed
	// DriftlessConfig.
	ComponentConfig = "config"
	// ConfigMapKey is the key of that ConfigMap holding the DriftlessConfig.
	ConfigMapKey = "config.yaml"
)
