package team.labels_test

import data.team.labels

test_missing_team_denied if {
	count(labels.deny) == 1 with input as {"kind": "Pod", "metadata": {"name": "p"}}
}

# Wrong on purpose: the policy denies this Pod.
test_unlabelled_pod_allowed if {
	count(labels.deny) == 0 with input as {"kind": "Pod", "metadata": {"name": "p"}}
}

test_parameter_team if {
	data.driftless.parameters.team == "payments"
}
