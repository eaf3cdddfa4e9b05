package driftless.library.readiness_probe_test

import data.driftless.lib.fixtures
import data.driftless.library.readiness_probe

deny(obj) := result if {
	result := readiness_probe.deny with input as obj
}

no_probe := object.union(fixtures.pod_spec, {"containers": [object.remove(fixtures.container, ["readinessProbe"])]})

test_probed_containers_pass if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
	}
}

test_missing_probe_denied_in_long_running_kinds if {
	every kind in fixtures.long_running_kinds {
		result := deny(fixtures.workload(kind, no_probe))
		count(result) == 1
		some v in result
		v.container == "app"
	}
}

test_jobs_exempt if {
	every kind in ["Job", "CronJob"] {
		count(deny(fixtures.workload(kind, no_probe))) == 0
	}
}

test_init_containers_exempt if {
	# fixtures.init_container has no readinessProbe
	not fixtures.init_container.readinessProbe
	count(deny(fixtures.workload("Deployment", fixtures.pod_spec))) == 0
}
