package driftless.library.run_as_non_root_test

import data.driftless.lib.fixtures
import data.driftless.library.run_as_non_root

deny(obj) := result if {
	result := run_as_non_root.deny with input as obj
}

test_non_root_containers_pass if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
	}
}

test_pod_level_setting_is_inherited if {
	spec := {
		"securityContext": {"runAsNonRoot": true},
		"initContainers": [object.remove(fixtures.init_container, ["securityContext"])],
		"containers": [object.remove(fixtures.container, ["securityContext"])],
	}
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, spec))) == 0
	}
}

test_missing_setting_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_container({"securityContext": {}})))
		count(result) == 1
		some v in result
		v.container == "app"
		contains(v.msg, "may run as root")
	}
}

test_container_overrides_pod if {
	spec := object.union(fixtures.with_container({"securityContext": {"runAsNonRoot": false}}), {"securityContext": {"runAsNonRoot": true}})
	count(deny(fixtures.workload("Deployment", spec))) == 1
}

test_uid_zero_denied if {
	result := deny(fixtures.workload("Pod", fixtures.with_container({"securityContext": {"runAsNonRoot": true, "runAsUser": 0}})))
	count(result) == 1
	some v in result
	contains(v.msg, "UID 0")
}

test_uid_zero_on_pod_denied if {
	spec := object.union(fixtures.with_container({"securityContext": {"runAsNonRoot": true}}), {"securityContext": {"runAsUser": 0}})
	count(deny(fixtures.workload("Pod", spec))) == 1
}

test_init_container_checked if {
	result := deny(fixtures.workload("ReplicaSet", fixtures.with_init_container({"securityContext": {}})))
	count(result) == 1
	some v in result
	v.container == "init"
}
