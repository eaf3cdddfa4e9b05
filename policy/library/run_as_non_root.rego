# METADATA
# title: Containers run as non-root
# description: >-
#   Every container and init container has runAsNonRoot: true, set on the
#   container or inherited from the pod's securityContext, and does not run as
#   UID 0.
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.run_as_non_root

import data.driftless.lib.kubernetes as k8s

pod_security := sc if {
	sc := k8s.pod_spec.securityContext
	is_object(sc)
}
else := {}

# security lists each container's effective securityContext, in the order
# of k8s.containers: its own settings over the pod's. One complete document,
# computed once per evaluation for both rules.
security := [object.union(pod_security, object.get(c.spec, "securityContext", {})) | some c in k8s.containers]

deny contains {"msg": msg, "container": c.name} if {
	some i, c in k8s.containers
	object.get(security[i], "runAsNonRoot", false) != true
	msg := sprintf("%s: %s may run as root; set securityContext.runAsNonRoot: true on the pod or the container", [k8s.object, k8s.describe(c)])
}

deny contains {"msg": msg, "container": c.name} if {
	some i, c in k8s.containers
	security[i].runAsUser == 0
	msg := sprintf("%s: %s runs as UID 0; set securityContext.runAsUser to a non-zero UID", [k8s.object, k8s.describe(c)])
}
