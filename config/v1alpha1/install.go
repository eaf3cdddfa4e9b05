package v1alpha1

// Names by which the command line finds an installation in the cluster (see config/default).
const (
	// LabelComponent marks the objects of an installation by their part, such as ComponentConfig.
	LabelComponent = Group + "/component"
	// ComponentConfig is LabelComponent's value on the ConfigMap that holds the installation's
	// DriftlessConfig (config/default generates it with a hashed name).
	ComponentConfig = "config"
	// ConfigMapKey is the key of the DriftlessConfig in that ConfigMap.
	ConfigMapKey = "config.yaml"
)

// ConfigMapName is the name of the ConfigMap holding the DriftlessConfig before
// config/default's generator appends its content hash.
const ConfigMapName = "driftless-config"
