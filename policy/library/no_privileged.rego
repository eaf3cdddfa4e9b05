# METADATA
# title: No privileged containers
# description: >-
#   No container or init container runs privileged
#   (securityContext.privileged: true).
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.no_privileged

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg, "container": c.name} if {
	some c in k8s.containers
	c.spec.securityContext.privileged == true
	msg := sprintf("%s: %s runs privileged; remove securityContext.privileged", [k8s.object, k8s.describe(c)])
}
