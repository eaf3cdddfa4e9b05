# METADATA
# title: Images come from allowed registries
# description: >-
#   Every container and init container image comes from a registry or
#   repository prefix in parameter allowed_registries (for example ["ghcr.io",
#   "registry.example.com/team"]). An image without a registry is a
#   docker.io/library image. Without the parameter the rule is inactive.
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.allowed_registries

import data.driftless.lib.kubernetes as k8s

registries := [trim_suffix(r, "/") | some r in k8s.param("allowed_registries", []); is_string(r)]

# prefixes end at a path segment: "ghcr.io/acme/" does not match "ghcr.io/acme-evil".
prefixes := {concat("", [r, "/"]) | some r in registries}

deny contains {"msg": msg, "container": c.name, "image": image, "allowed_registries": registries} if {
	count(registries) > 0
	some c in k8s.containers
	image := c.spec.image
	ref := k8s.images[image]
	not strings.any_prefix_match(concat("", [ref.repository, "/"]), prefixes)
	msg := sprintf("%s: %s uses image %q from a registry that is not allowed; use one of %s", [k8s.object, k8s.describe(c), image, concat(", ", registries)])
}
