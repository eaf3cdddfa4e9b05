# METADATA
# title: Containers set resource requests and limits
# description: >-
#   Every container and init container sets the resources listed in parameter
#   required_resources, default ["requests.cpu", "requests.memory",
#   "limits.cpu", "limits.memory"].
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.container_resources

import data.driftless.lib.kubernetes as k8s

# required lists each required resource with its path in a container.
required := {{"name": name, "path": ["resources", group, resource]} |
	some name in k8s.param("required_resources", ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"])
	is_string(name)
	[group, resource] := split(name, ".")
}

deny contains {"msg": msg, "container": c.name, "resource": r.name} if {
	some c in k8s.containers
	spec := c.spec
	some r in required
	object.get(spec, r.path, null) in {null, ""}
	msg := sprintf("%s: %s sets no %s; set resources.%s", [k8s.object, k8s.describe(c), r.name, r.name])
}
