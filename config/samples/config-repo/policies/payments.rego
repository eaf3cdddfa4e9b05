# Policies of the payments team, written for conftest: package main, the
# object as input, deny and warn rules. driftless check runs them unchanged
# next to the built-in library.
package main

import rego.v1

# Every ConfigMap in production names the team that owns it, so whoever
# wants to change it in an incident knows whom to ask.
deny contains msg if {
	input.kind == "ConfigMap"
	input.metadata.namespace == "production"
	not input.metadata.labels.owner
	msg := sprintf("ConfigMap %s in production has no owner label; add metadata.labels.owner", [input.metadata.name])
}

# Deployments keep a bounded rollout history.
warn contains msg if {
	input.kind == "Deployment"
	not input.spec.revisionHistoryLimit
	msg := sprintf("Deployment %s does not set spec.revisionHistoryLimit; keep a bounded rollout history", [input.metadata.name])
}
