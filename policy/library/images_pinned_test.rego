package driftless.library.images_pinned_test

import data.driftless.lib.fixtures
import data.driftless.library.images_pinned

deny(obj) := result if {
	result := images_pinned.deny with input as obj with data.driftless.parameters as {}
}

test_tagged_and_digest_images_pass if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
		count(deny(fixtures.workload(kind, fixtures.with_container({"image": "nginx@sha256:0123456789abcdef"})))) == 0
		count(deny(fixtures.workload(kind, fixtures.with_container({"image": "localhost:5000/app:v1"})))) == 0
	}
}

test_latest_tag_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_container({"image": "nginx:latest"})))
		count(result) == 1
		some v in result
		v.container == "app"
		v.image == "nginx:latest"
		contains(v.msg, "mutable tag \"latest\"")
	}
}

test_missing_tag_denied if {
	every image in ["nginx", "ghcr.io/acme/app", "localhost:5000/app"] {
		result := deny(fixtures.workload("Deployment", fixtures.with_container({"image": image})))
		count(result) == 1
		some v in result
		contains(v.msg, "without a tag or digest")
	}
}

test_init_container_checked if {
	result := deny(fixtures.workload("StatefulSet", fixtures.with_init_container({"image": "busybox"})))
	count(result) == 1
	some v in result
	v.container == "init"
	startswith(v.msg, "StatefulSet/app: initContainer \"init\"")
}

test_digest_wins_over_latest if {
	count(deny(fixtures.workload("Pod", fixtures.with_container({"image": "nginx:latest@sha256:0123"})))) == 0
}

test_mutable_tags_parameter if {
	obj := fixtures.workload("Job", fixtures.with_container({"image": "ghcr.io/acme/app:main"}))
	count(deny(obj)) == 0
	count(images_pinned.deny) == 1 with input as obj with data.driftless.parameters as {"mutable_tags": ["latest", "main"]}
}

test_other_kinds_ignored if {
	count(deny({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "nginx"}})) == 0
}
