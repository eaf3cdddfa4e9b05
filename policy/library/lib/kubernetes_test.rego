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
	count(k8s.containers) == 0 with input as {"kind": "ConfigMap", "spec": {"template": {"spec": {"containers": [{}]}}}}
}

test_containers_include_init_containers if {
	cs := k8s.containers with input as fixtures.workload("Deployment", fixtures.pod_spec)
	[[c.type, c.name] | some c in cs] == [["initContainer", "init"], ["container", "app"]]
}

test_object_names_kind_and_name if {
	k8s.object == "Deployment/app" with input as fixtures.workload("Deployment", fixtures.pod_spec)
	k8s.object == "<unknown kind>/<unnamed>" with input as {"kind": 7}
}

test_parse_image if {
	k8s.parse_image("nginx") == {"repository": "docker.io/library/nginx", "tag": "", "digest": ""}
	k8s.parse_image("nginx:1.25") == {"repository": "docker.io/library/nginx", "tag": "1.25", "digest": ""}
	k8s.parse_image("bitnami/redis:7") == {"repository": "docker.io/bitnami/redis", "tag": "7", "digest": ""}
	k8s.parse_image("ghcr.io/acme/app@sha256:abc") == {"repository": "ghcr.io/acme/app", "tag": "", "digest": "sha256:abc"}
	k8s.parse_image("ghcr.io/acme/app:1.0@sha256:abc") == {"repository": "ghcr.io/acme/app", "tag": "1.0", "digest": "sha256:abc"}
	k8s.parse_image("localhost:5000/app:v1") == {"repository": "localhost:5000/app", "tag": "v1", "digest": ""}
	k8s.parse_image("localhost:5000/app") == {"repository": "localhost:5000/app", "tag": "", "digest": ""}
	k8s.parse_image("localhost/app") == {"repository": "localhost/app", "tag": "", "digest": ""}
	k8s.parse_image("app:") == {"repository": "docker.io/library/app:", "tag": "", "digest": ""}
}

test_images_maps_every_container_image if {
	imgs := k8s.images with input as fixtures.workload("Job", fixtures.with_container({"image": "nginx:latest"}))
	imgs == {
		"nginx:latest": {"repository": "docker.io/library/nginx", "tag": "latest", "digest": ""},
		"ghcr.io/acme/app:1.4.2": {"repository": "ghcr.io/acme/app", "tag": "1.4.2", "digest": ""},
	}
}

test_param_default_and_override if {
	k8s.param("min_replicas", 2) == 2 with data.driftless.parameters as {}
	k8s.param("min_replicas", 2) == 3 with data.driftless.parameters as {"min_replicas": 3}
}
