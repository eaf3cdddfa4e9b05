# METADATA
# title: Kubernetes helpers
# description: >-
#   Helpers shared by the built-in rules and available to user policies
#   (import data.driftless.lib.kubernetes): the pod spec of any workload kind,
#   its containers, image reference parsing and parameters with defaults.
package driftless.lib.kubernetes

# pod_template_kinds keep their pod spec in spec.template.spec.
pod_template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

# workload_kinds are every kind that describes pods.
workload_kinds := pod_template_kinds | {"Pod", "CronJob"}

# long_running_kinds are workloads whose pods serve until replaced.
long_running_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Pod"}

# is_workload is true when input describes pods.
is_workload if input.kind in workload_kinds

# pod_spec is the pod spec of a Pod, of a workload's pod template or of a
# CronJob's job template.
pod_spec := input.spec if input.kind == "Pod"

pod_spec := input.spec.template.spec if input.kind in pod_template_kinds

pod_spec := input.spec.jobTemplate.spec.template.spec if input.kind == "CronJob"

# containers lists every init container and container of the pod spec as
# {"type": "initContainer" | "container", "name": name, "spec": container}.
containers := array.concat(
	[{"type": "initContainer", "name": container_name(c), "spec": c} | some c in pod_spec.initContainers],
	[{"type": "container", "name": container_name(c), "spec": c} | some c in pod_spec.containers],
)

# container_name is the container's name, or "<unnamed>".
container_name(c) := name if {
	name := c.name
	is_string(name)
}
else := "<unnamed>"

# kind is the object's kind, or "<unknown kind>".
kind := k if {
	k := input.kind
	is_string(k)
}
else := "<unknown kind>"

# name is metadata.name, or "<unnamed>".
name := n if {
	n := input.metadata.name
	is_string(n)
}
else := "<unnamed>"

# object is how messages name the object: "Kind/name".
object := sprintf("%s/%s", [kind, name])

# describe names a container entry of containers in messages.
describe(c) := sprintf("%s %q", [c.type, c.name])

# param is data.driftless.parameters[key], or fallback when it is unset.
param(key, fallback) := value if {
	value := data.driftless.parameters[key]
} else := fallback

# images maps every container image of the pod spec to parse_image(image).
# It is one complete document, computed once per evaluation, so rules share
# one parse per image (a partial object rule would be evaluated again for
# each image a rule looks up).
images := {image: parse_image(image) |
	some c in containers
	image := c.spec.image
	is_string(image)
}

# parse_image splits an image reference into its fully qualified repository
# ("nginx" is "docker.io/library/nginx"), its tag and its digest; a missing
# tag or digest is "". The tag follows the last ":" that no "/" follows, so a
# registry port is not a tag.
parse_image(image) := {"repository": qualify(m[1]), "tag": m[2], "digest": m[3]} if {
	[m] := regex.find_all_string_submatch_n(`^([^@]*?)(?::([^:/@]+))?(?:@(.*))?$`, image, 1)
}

# qualify adds the registry a container runtime assumes: the first path
# segment names a registry when it has a "." or a ":" or is "localhost".
qualify(name) := name if {
	regex.match(`^([^/]*[.:][^/]*|localhost)/`, name)
} else := concat("/", ["docker.io", name]) if {
	contains(name, "/")
} else := concat("/", ["docker.io/library", name])
