package driftless.library.required_labels_test

import data.driftless.lib.fixtures
import data.driftless.library.required_labels

deny(obj) := result if {
	result := required_labels.deny with input as obj with data.driftless.parameters as {}
}

unlabelled(kind) := json.remove(fixtures.workload(kind, fixtures.pod_spec), ["metadata/labels"])

test_labelled_workloads_pass if {
	every kind in fixtures.workload_kinds {
		count(deny(fixtures.workload(kind, fixtures.pod_spec))) == 0
	}
}

test_missing_label_denied_in_every_kind if {
	every kind in fixtures.workload_kinds {
		result := deny(unlabelled(kind))
		count(result) == 1
		some v in result
		v.label == "app.kubernetes.io/name"
	}
}

test_empty_label_denied if {
	obj := object.union(fixtures.workload("Deployment", fixtures.pod_spec), {"metadata": {"labels": {"app.kubernetes.io/name": ""}}})
	count(deny(obj)) == 1
}

test_required_labels_parameter if {
	params := {"required_labels": ["app.kubernetes.io/name", "team"]}
	result := required_labels.deny with input as fixtures.workload("Pod", fixtures.pod_spec) with data.driftless.parameters as params
	{v.label | some v in result} == {"team"}
}

test_non_workloads_ignored if {
	count(deny({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})) == 0
}
