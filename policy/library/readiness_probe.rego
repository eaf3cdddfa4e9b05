# METADATA
# title: Containers have readiness probes
# description: >-
#   Every regular container of a long-running workload (Deployment,
#   StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Pod) has a
#   readinessProbe. Jobs, CronJobs and init containers are exempt.
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController]
package driftless.library.readiness_probe

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg, "container": c.name} if {
	input.kind in k8s.long_running_kinds
	some c in k8s.containers
	c.type == "container"
	object.get(c.spec, "readinessProbe", null) == null
	msg := sprintf("%s: %s has no readinessProbe; add one so traffic waits until it is ready", [k8s.object, k8s.describe(c)])
}
