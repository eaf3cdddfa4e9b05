# METADATA
# title: Images come from allowed registries
# description: >-
#   Every container and init container image comes from a registry or
#   repository prefix in parameter allowed_registries (for example ["ghcr.io",
#   "registry.example.com/team"]). An image without a registry is a
#   docker.io/library image. Without the parameter the rule is inactive.
package driftless.library.allowed_registries

import data.driftless.lib.kubernetes as k8s

registries := [trim_suffix(r, "/") | some r in k8s.param("allowed_registries", []); is_string(r)]

deny contains {"msg": msg, "container": c.name, "image": image, "allowed_registries": registries} if {
	count(registries) > 0
	some c in k8s.containers
	image := c.spec.image
	is_string(image)
	repository := k8s.image_repository(image)
	not allowed(repository)
	msg := sprintf("%s: %s uses image %q from a registry that is not allowed; use one of %s", [k8s.object, k8s.describe(c), image, concat(", ", registries)])
}

allowed(repository) if {
	some r in registries
	repository == r
}

allowed(repository) if {
	some r in registries
	startswith(repository, concat("", [r, "/"]))
}
