package main

# Every object carries the team label given as parameter team.
deny contains msg if {
	team := data.driftless.parameters.team
	object.get(input.metadata, ["labels", "team"], "") != team
	msg := sprintf("%s %s: label team must be %q", [input.kind, input.metadata.name, team])
}

# Objects in the environment given as --environment need an on-call contact.
deny contains msg if {
	data.driftless.context.environment == "production"
	not input.metadata.annotations["example.com/on-call"]
	msg := sprintf("%s %s: production objects name an on-call contact", [input.kind, input.metadata.name])
}
