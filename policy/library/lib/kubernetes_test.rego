package driftless.lib.kubernetes_test

import data.driftless.lib.fixtures
import data.driftless.lib.kubernetes as k8s

test_pod_spec_of_every_workload_kind if {
	every kind in fixtures.workload_kinds {
		spec := k8s.pod_spec with input as fixtures.workload(kind, fixtures.pod_spec)
		spec == fixtures.pod_spec
	}
}

test_no_pod_spec_for_other_kinds if {
	not k8s.pod_spec with input as {"kind": "ConfigMap", "spec": {"template": {"spec": {}}}}
}

test_containers_include_init_containers if {
	cs := k8s.containers with input as fixtures.workload("Deployment", fixtures.pod_spec)
	{[c.type, c.name] | some c in cs} == {["container", "app"], ["initContainer", "init"]}
}

test_object_names_kind_and_name if {
	k8s.object == "Deployment/app" with input as fixtures.workload("Deployment", fixtures.pod_spec)
	k8s.object == "<unknown kind>/<unnamed>" with input as {"kind": 7}
}

test_image_tag if {
	k8s.image_tag("nginx:1.25") == "1.25"
	k8s.image_tag("localhost:5000/app:v1") == "v1"
	k8s.image_tag("ghcr.io/acme/app:1.0@sha256:abc") == "1.0"
	not k8s.image_tag("localhost:5000/app")
	not k8s.image_tag("nginx")
}

test_image_digest if {
	k8s.image_digest("nginx@sha256:abc") == "sha256:abc"
	not k8s.image_digest("nginx:1.25")
}

test_image_repository if {
	k8s.image_repository("nginx") == "docker.io/library/nginx"
	k8s.image_repository("nginx:1.25") == "docker.io/library/nginx"
	k8s.image_repository("bitnami/redis:7") == "docker.io/bitnami/redis"
	k8s.image_repository("ghcr.io/acme/app@sha256:abc") == "ghcr.io/acme/app"
	k8s.image_repository("localhost:5000/app:v1") == "localhost:5000/app"
	k8s.image_repository("localhost/app") == "localhost/app"
}

test_param_default_and_override if {
	k8s.param("min_replicas", 2) == 2 with data.driftless.parameters as {}
	k8s.param("min_replicas", 2) == 3 with data.driftless.parameters as {"min_replicas": 3}
}
