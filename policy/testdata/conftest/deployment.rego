# A policy written for conftest, kept exactly as conftest users write it:
# package main, the object as input, deny/warn/violation rules.
package main

import rego.v1

deny contains msg if {
	input.kind == "Deployment"
	not input.spec.template.spec.securityContext.runAsNonRoot
	msg := "Containers must not run as root"
}

deny contains msg if {
	input.kind == "Deployment"
	not input.spec.selector.matchLabels.app
	msg := "Containers must provide app label for pod selectors"
}

deny_latest_tag contains msg if {
	input.kind == "Deployment"
	some container in input.spec.template.spec.containers
	endswith(container.image, ":latest")
	msg := sprintf("container %s uses the latest tag", [container.name])
}

warn contains msg if {
	input.kind == "Service"
	input.spec.type == "NodePort"
	msg := sprintf("Service %s is exposed on every node with type NodePort", [input.metadata.name])
}

violation contains {"msg": msg, "details": {"replicas": replicas}} if {
	input.kind == "Deployment"
	replicas := input.spec.replicas
	replicas > 10
	msg := "too many replicas"
}
