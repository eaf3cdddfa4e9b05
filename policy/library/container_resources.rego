# METADATA
# title: Containers set resource requests and limits
# description: >-
#   Every container and init container sets the resources listed in parameter
#   required_resources, default ["requests.cpu", "requests.memory",
#   "limits.cpu", "limits.memory"].
package driftless.library.container_resources

import data.driftless.lib.kubernetes as k8s

required := k8s.param("required_resources", ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"])

deny contains {"msg": msg, "container": c.name, "resource": resource} if {
	some c in k8s.containers
	some resource in required
	is_string(resource)
	parts := split(resource, ".")
	count(parts) == 2
	not has_resource(c.spec, parts[0], parts[1])
	msg := sprintf("%s: %s sets no %s; set resources.%s", [k8s.object, k8s.describe(c), resource, resource])
}

has_resource(container, group, name) if {
	value := container.resources[group][name]
	value != null
	value != ""
}
