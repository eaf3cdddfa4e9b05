# METADATA
# title: No hostPath volumes
# description: The pod mounts no hostPath volume.
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.no_host_path

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg, "volume": name} if {
	some volume in k8s.pod_spec.volumes
	volume.hostPath != null
	name := volume_name(volume)
	msg := sprintf("%s: volume %q mounts a hostPath; use a persistentVolumeClaim, configMap, secret or emptyDir volume", [k8s.object, name])
}

volume_name(v) := name if {
	name := v.name
	is_string(name)
}
else := "<unnamed>"
