package main

import rego.v1

test_deployment_without_security_context_denied if {
	deny["Containers must not run as root"] with input as {"kind": "Deployment", "spec": {"selector": {"matchLabels": {"app": "x"}}}}
}

test_compliant_deployment_allowed if {
	count(deny) == 0 with input as {
		"kind": "Deployment",
		"spec": {
			"selector": {"matchLabels": {"app": "x"}},
			"template": {"spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a", "image": "a:1"}]}},
		},
	}
}

test_node_port_warned if {
	count(warn) == 1 with input as {"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "NodePort"}}
}
