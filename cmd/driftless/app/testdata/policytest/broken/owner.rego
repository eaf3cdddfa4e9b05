package main

deny contains msg if {
	input.kind == "ConfigMap"
	not input.metadata.labels.owner
	msg := "no owner"
}
