# METADATA
# title: No host PID namespace
# description: The pod does not share the node's process namespace (hostPID).
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.no_host_pid

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg} if {
	k8s.pod_spec.hostPID == true
	msg := sprintf("%s: the pod shares the host PID namespace; remove hostPID", [k8s.object])
}
