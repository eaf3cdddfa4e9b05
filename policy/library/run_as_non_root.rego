# METADATA
# title: Containers run as non-root
# description: >-
#   Every container and init container has runAsNonRoot: true, set on the
#   container or inherited from the pod's securityContext, and does not run as
#   UID 0.
package driftless.library.run_as_non_root

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg, "container": c.name} if {
	some c in k8s.containers
	not non_root(c.spec)
	msg := sprintf("%s: %s may run as root; set securityContext.runAsNonRoot: true on the pod or the container", [k8s.object, k8s.describe(c)])
}

deny contains {"msg": msg, "container": c.name} if {
	some c in k8s.containers
	effective(c.spec, "runAsUser") == 0
	msg := sprintf("%s: %s runs as UID 0; set securityContext.runAsUser to a non-zero UID", [k8s.object, k8s.describe(c)])
}

# non_root is true when the container must run as a non-root user.
non_root(container) if effective(container, "runAsNonRoot") == true

# effective is a container's security setting, or the pod's when the
# container does not set it.
effective(container, field) := value if {
	value := container.securityContext[field]
} else := value if {
	value := k8s.pod_spec.securityContext[field]
}
