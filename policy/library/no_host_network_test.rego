package driftless.library.no_host_network_test

import data.driftless.lib.fixtures
import data.driftless.library.no_host_network

deny(obj) := result if {
	result := no_host_network.deny with input as obj
}

test_pod_network_passes if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
		count(deny(fixtures.workload(kind, fixtures.with_pod({"hostNetwork": false})))) == 0
	}
}

test_host_network_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_pod({"hostNetwork": true})))
		count(result) == 1
		some v in result
		contains(v.msg, "host network")
	}
}
