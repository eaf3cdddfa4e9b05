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

# containers holds every init container and container of the pod spec as
# {"type": "initContainer" | "container", "name": name, "spec": container}.
containers contains {"type": "initContainer", "name": container_name(c), "spec": c} if {
	some c in pod_spec.initContainers
}

containers contains {"type": "container", "name": container_name(c), "spec": c} if {
	some c in pod_spec.containers
}

# container_name is the container's name, or "<unnamed>".
container_name(c) := c.name if is_string(c.name)
else := "<unnamed>"

# kind is the object's kind, or "<unknown kind>".
kind := input.kind if is_string(input.kind)
else := "<unknown kind>"

# name is metadata.name, or "<unnamed>".
name := input.metadata.name if is_string(input.metadata.name)
else := "<unnamed>"

# object is how messages name the object: "Kind/name".
object := sprintf("%s/%s", [kind, name])

# describe names a container entry of containers in messages.
describe(c) := sprintf("%s %q", [c.type, c.name])

# param is data.driftless.parameters[key], or fallback when it is unset.
param(key, fallback) := value if {
	value := data.driftless.parameters[key]
} else := fallback

# image_digest is the digest of an image reference ("sha256:..."), if any.
image_digest(image) := parts[1] if {
	parts := split(image, "@")
	count(parts) == 2
}

# image_tag is the tag of an image reference, if any. The tag follows the
# last ":" of the last path segment, so a registry port is not a tag.
image_tag(image) := tag if {
	segments := split(split(image, "@")[0], "/")
	last := segments[count(segments) - 1]
	i := indexof(last, ":")
	i >= 0
	tag := substring(last, i + 1, -1)
}

# image_repository is the fully qualified repository of an image reference,
# without tag or digest: "nginx" is "docker.io/library/nginx".
image_repository(image) := qualify(path) if {
	segments := split(split(image, "@")[0], "/")
	last := segments[count(segments) - 1]
	path := array.concat(array.slice(segments, 0, count(segments) - 1), [split(last, ":")[0]])
}

qualify(path) := concat("/", path) if {
	count(path) > 1
	registry_host(path[0])
}

qualify(path) := concat("/", array.concat(["docker.io"], path)) if {
	count(path) > 1
	not registry_host(path[0])
}

qualify(path) := concat("/", ["docker.io", "library", path[0]]) if count(path) == 1

# registry_host is true when the first path segment names a registry, as the
# container runtime decides: it has a "." or a ":" or is "localhost".
registry_host(s) if contains(s, ".")

registry_host(s) if contains(s, ":")

registry_host("localhost")
