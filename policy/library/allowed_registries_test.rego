package driftless.library.allowed_registries_test

import data.driftless.lib.fixtures
import data.driftless.library.allowed_registries

params := {"allowed_registries": ["ghcr.io/acme", "registry.example.com/"]}

deny(obj) := result if {
	result := allowed_registries.deny with input as obj with data.driftless.parameters as params
}

test_inactive_without_parameter if {
	obj := fixtures.workload("Deployment", fixtures.with_container({"image": "evil.example.net/app:1"}))
	count(allowed_registries.deny) == 0 with input as obj with data.driftless.parameters as {}
	count(allowed_registries.deny) == 0 with input as obj with data.driftless.parameters as {"allowed_registries": []}
}

test_allowed_images_pass if {
	every kind in fixtures.workload_kinds {
		every image in ["ghcr.io/acme/app:1", "ghcr.io/acme/team/app@sha256:01", "registry.example.com/x:2"] {
			count(deny(fixtures.workload(kind, fixtures.with_container({"image": image})))) == 0
		}
	}
}

test_other_registries_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_container({"image": "docker.io/library/nginx:1.25"})))
		count(result) == 1
		some v in result
		v.image == "docker.io/library/nginx:1.25"
		contains(v.msg, "not allowed")
	}
}

test_prefix_must_end_at_a_path_segment if {
	count(deny(fixtures.workload("Pod", fixtures.with_container({"image": "ghcr.io/acme-evil/app:1"})))) == 1
}

test_short_names_are_docker_hub if {
	obj := fixtures.workload("Pod", fixtures.with_container({"image": "nginx:1.25"}))
	count(deny(obj)) == 1
	count(allowed_registries.deny) == 0 with input as obj with data.driftless.parameters as {"allowed_registries": ["docker.io/library", "ghcr.io/acme"]}
}

test_init_container_checked if {
	result := deny(fixtures.workload("CronJob", fixtures.with_init_container({"image": "quay.io/x/init:1"})))
	count(result) == 1
	some v in result
	v.container == "init"
}
