package driftless.library.no_privileged_test

import data.driftless.lib.fixtures
import data.driftless.library.no_privileged

deny(obj) := result if {
	result := no_privileged.deny with input as obj
}

test_unprivileged_pass if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
		count(deny(fixtures.workload(kind, fixtures.with_container({"securityContext": {"privileged": false, "runAsNonRoot": true}})))) == 0
	}
}

test_privileged_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_container({"securityContext": {"privileged": true}})))
		count(result) == 1
		some v in result
		v.container == "app"
	}
}

test_privileged_init_container_denied if {
	result := deny(fixtures.workload("Pod", fixtures.with_init_container({"securityContext": {"privileged": true}})))
	count(result) == 1
	some v in result
	v.container == "init"
	contains(v.msg, "initContainer \"init\" runs privileged")
}
