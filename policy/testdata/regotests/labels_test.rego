package team.labels_test

import data.team.labels

test_missing_team_denied if {
	count(labels.deny) == 1 with input as {"kind": "Pod", "metadata": {"name": "p"}}
}

test_team_label_passes if {
	count(labels.deny) == 0 with input as {"kind": "Pod", "metadata": {"name": "p", "labels": {"team": "shop"}}}
}

# Deliberately wrong: the policy denies this Pod.
test_expectation_is_wrong if {
	count(labels.deny) == 0 with input as {"kind": "Pod", "metadata": {"name": "p"}}
}

test_runtime_error if {
	conflict(1) == 1
}

conflict(_) := 1

conflict(_) := 2

todo_test_later if {
	false
}

test_parameters_visible if {
	data.driftless.parameters.team == "shop"
}
