package driftless.library.no_host_pid_test

import data.driftless.lib.fixtures
import data.driftless.library.no_host_pid

deny(obj) := result if {
	result := no_host_pid.deny with input as obj
}

test_own_pid_namespace_passes if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
		count(deny(fixtures.workload(kind, fixtures.with_pod({"hostPID": false})))) == 0
	}
}

test_host_pid_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_pod({"hostPID": true})))
		count(result) == 1
		some v in result
		contains(v.msg, "host PID namespace")
	}
}
