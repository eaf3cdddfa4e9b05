# METADATA
# title: Production Deployments run replicas
# description: >-
#   A Deployment in production runs at least parameter min_replicas (default 2)
#   replicas; an unset spec.replicas counts as 1. Production means
#   data.driftless.context.environment is "production" or metadata.namespace
#   is listed in parameter production_namespaces.
# custom:
#   kinds: [Deployment]
package driftless.library.production_replicas

import data.driftless.lib.kubernetes as k8s

min_replicas := k8s.param("min_replicas", 2)

production if data.driftless.context.environment == "production"

production if {
	namespace := input.metadata.namespace
	is_string(namespace)
	namespace in k8s.param("production_namespaces", [])
}

replicas := n if {
	n := input.spec.replicas
	is_number(n)
}
else := 1

deny contains {"msg": msg, "replicas": replicas, "min_replicas": min_replicas} if {
	input.kind == "Deployment"
	production
	replicas < min_replicas
	msg := sprintf("%s: runs %d replica(s) in production; set spec.replicas to at least %d", [k8s.object, replicas, min_replicas])
}
