# METADATA
# title: Workloads carry required labels
# description: >-
#   Every workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
#   ReplicationController, Job, CronJob) carries a non-empty value for each
#   label in parameter required_labels, default ["app.kubernetes.io/name"].
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.required_labels

import data.driftless.lib.kubernetes as k8s

required := k8s.param("required_labels", ["app.kubernetes.io/name"])

deny contains {"msg": msg, "label": label} if {
	k8s.is_workload
	some label in required
	is_string(label)
	object.get(input, ["metadata", "labels", label], "") in {"", null}
	msg := sprintf("%s: label %q is missing; add it to metadata.labels", [k8s.object, label])
}
