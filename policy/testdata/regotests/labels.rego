package team.labels

import data.driftless.lib.kubernetes as k8s

deny contains msg if {
	k8s.is_workload
	not input.metadata.labels.team
	msg := sprintf("%s: label team is missing", [k8s.object])
}
