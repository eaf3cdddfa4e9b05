# METADATA
# title: No host network
# description: The pod does not use the node's network namespace (hostNetwork).
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.no_host_network

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg} if {
	k8s.pod_spec.hostNetwork == true
	msg := sprintf("%s: the pod uses the host network; remove hostNetwork", [k8s.object])
}
