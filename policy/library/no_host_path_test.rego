package driftless.library.no_host_path_test

import data.driftless.lib.fixtures
import data.driftless.library.no_host_path

deny(obj) := result if {
	result := no_host_path.deny with input as obj
}

test_other_volumes_pass if {
	spec := fixtures.with_pod({"volumes": [{"name": "cache", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}]})
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, spec))) == 0
	}
}

test_host_path_denied_in_every_kind if {
	spec := fixtures.with_pod({"volumes": [{"name": "cache", "emptyDir": {}}, {"name": "root", "hostPath": {"path": "/"}}]})
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, spec))
		count(result) == 1
		some v in result
		v.volume == "root"
	}
}
