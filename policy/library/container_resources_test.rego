package driftless.library.container_resources_test

import data.driftless.lib.fixtures
import data.driftless.library.container_resources

deny(obj) := result if {
	result := container_resources.deny with input as obj with data.driftless.parameters as {}
}

test_complete_resources_pass if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
	}
}

test_missing_resources_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(fixtures.workload(kind, fixtures.with_container({"resources": {}})))
		{v.resource | some v in result} == {"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
	}
}

test_missing_limit_named if {
	spec := fixtures.with_container({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}})
	result := deny(fixtures.workload("DaemonSet", spec))
	count(result) == 1
	some v in result
	v.resource == "limits.cpu"
	v.container == "app"
}

test_init_container_checked if {
	result := deny(fixtures.workload("Job", fixtures.with_init_container({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}})))
	{[v.container, v.resource] | some v in result} == {["init", "limits.cpu"], ["init", "limits.memory"]}
}

test_required_resources_parameter if {
	spec := fixtures.with_container({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}})
	obj := fixtures.workload("Deployment", spec)
	count(container_resources.deny) == 0 with input as obj with data.driftless.parameters as {"required_resources": ["requests.cpu", "requests.memory"]}
}
