# METADATA
# description: >-
#   Test fixtures for the built-in library's unit tests: workloads of every
#   kind built around a pod spec that passes every built-in rule.
package driftless.lib.fixtures

workload_kinds := ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"]

long_running_kinds := ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"]

api_versions := {
	"Pod": "v1",
	"ReplicationController": "v1",
	"Deployment": "apps/v1",
	"StatefulSet": "apps/v1",
	"DaemonSet": "apps/v1",
	"ReplicaSet": "apps/v1",
	"Job": "batch/v1",
	"CronJob": "batch/v1",
}

labels := {"app.kubernetes.io/name": "app"}

metadata := {"name": "app", "namespace": "shop", "labels": labels}

# container passes every built-in rule.
container := {
	"name": "app",
	"image": "ghcr.io/acme/app:1.4.2",
	"resources": {
		"requests": {"cpu": "100m", "memory": "128Mi"},
		"limits": {"cpu": "500m", "memory": "256Mi"},
	},
	"securityContext": {"runAsNonRoot": true, "runAsUser": 10001},
	"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
}

# init_container passes every built-in rule.
init_container := object.union(object.remove(container, ["readinessProbe", "name"]), {"name": "init"})

# pod_spec passes every built-in rule.
pod_spec := {"initContainers": [init_container], "containers": [container]}

# patch replaces the top-level fields of obj that patch sets (unlike
# object.union, which merges nested objects).
patch(obj, fields) := object.union(object.remove(obj, object.keys(fields)), fields)

# with_container is pod_spec with fields of its container replaced.
with_container(fields) := patch(pod_spec, {"containers": [patch(container, fields)]})

# with_init_container is pod_spec with fields of its init container replaced.
with_init_container(fields) := patch(pod_spec, {"initContainers": [patch(init_container, fields)]})

# with_pod is pod_spec with pod-level fields replaced.
with_pod(fields) := patch(pod_spec, fields)

# workload wraps a pod spec into an object of the given kind.
workload(kind, spec) := {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec} if kind == "Pod"

workload(kind, spec) := {
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": metadata,
	"spec": {
		"schedule": "*/5 * * * *",
		"jobTemplate": {"spec": {"template": {"metadata": {"labels": labels}, "spec": spec}}},
	},
} if kind == "CronJob"

workload(kind, spec) := {
	"apiVersion": api_versions[kind],
	"kind": kind,
	"metadata": metadata,
	"spec": {
		"replicas": 2,
		"selector": {"matchLabels": labels},
		"template": {"metadata": {"labels": labels}, "spec": spec},
	},
} if {
	not kind in {"Pod", "CronJob"}
}
