package main

import rego.v1

configmap(namespace, labels) := {
	"apiVersion": "v1",
	"kind": "ConfigMap",
	"metadata": {"name": "payment-gateway-config", "namespace": namespace, "labels": labels},
	"data": {"POOL_SIZE": "50"},
}

deployment(spec) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "payment-gateway", "namespace": "production"},
	"spec": spec,
}

test_production_configmap_without_owner_denied if {
	deny == {"ConfigMap payment-gateway-config in production has no owner label; add metadata.labels.owner"} with input as configmap("production", {})
}

test_production_configmap_with_owner_allowed if {
	count(deny) == 0 with input as configmap("production", {"owner": "team-payments"})
}

test_staging_configmap_needs_no_owner if {
	count(deny) == 0 with input as configmap("staging", {})
}

test_deployment_without_history_limit_warns if {
	count(warn) == 1 with input as deployment({"replicas": 3})
}

test_deployment_with_history_limit_passes if {
	count(warn) == 0 with input as deployment({"replicas": 3, "revisionHistoryLimit": 5})
}
