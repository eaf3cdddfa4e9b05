package driftless.library.production_replicas_test

import data.driftless.lib.fixtures
import data.driftless.library.production_replicas

production := {"environment": "production"}

deployment(replicas) := object.union(fixtures.workload("Deployment", fixtures.pod_spec), {"spec": {"replicas": replicas}})

unset := json.remove(fixtures.workload("Deployment", fixtures.pod_spec), ["spec/replicas"])

test_enough_replicas_pass if {
	count(production_replicas.deny) == 0 with input as deployment(2) with data.driftless.context as production with data.driftless.parameters as {}
	count(production_replicas.deny) == 0 with input as deployment(5) with data.driftless.context as production with data.driftless.parameters as {}
}

test_single_replica_denied_in_production if {
	result := production_replicas.deny with input as deployment(1) with data.driftless.context as production with data.driftless.parameters as {}
	count(result) == 1
	some v in result
	v.replicas == 1
	v.min_replicas == 2
}

test_unset_replicas_count_as_one if {
	not unset.spec.replicas
	count(production_replicas.deny) == 1 with input as unset with data.driftless.context as production with data.driftless.parameters as {}
}

test_outside_production_passes if {
	count(production_replicas.deny) == 0 with input as deployment(1) with data.driftless.context as {"environment": "staging"} with data.driftless.parameters as {}
	count(production_replicas.deny) == 0 with input as deployment(1) with data.driftless.context as {} with data.driftless.parameters as {}
}

test_production_namespaces_parameter if {
	params := {"production_namespaces": ["shop"]}
	count(production_replicas.deny) == 1 with input as deployment(1) with data.driftless.context as {} with data.driftless.parameters as params
	count(production_replicas.deny) == 0 with input as deployment(1) with data.driftless.context as {} with data.driftless.parameters as {"production_namespaces": ["other"]}
}

test_min_replicas_parameter if {
	count(production_replicas.deny) == 1 with input as deployment(2) with data.driftless.context as production with data.driftless.parameters as {"min_replicas": 3}
}

test_other_kinds_ignored if {
	every kind in ["StatefulSet", "ReplicaSet"] {
		obj := object.union(fixtures.workload(kind, fixtures.pod_spec), {"spec": {"replicas": 1}})
		count(production_replicas.deny) == 0 with input as obj with data.driftless.context as production with data.driftless.parameters as {}
	}
}
