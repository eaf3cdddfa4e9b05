# METADATA
# title: Images are pinned
# description: >-
#   Every container and init container image names a digest or a tag, and the
#   tag is not mutable. Parameter mutable_tags (default ["latest"]) lists the
#   tags that count as mutable.
# custom:
#   kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob]
package driftless.library.images_pinned

import data.driftless.lib.kubernetes as k8s

mutable_tags := {t | some t in k8s.param("mutable_tags", ["latest"])}

deny contains {"msg": msg, "container": c.name, "image": image} if {
	some c in k8s.containers
	image := c.spec.image
	ref := k8s.images[image]
	ref.digest == ""
	ref.tag == ""
	msg := sprintf("%s: %s uses image %q without a tag or digest; pin a digest (@sha256:...) or an immutable tag", [k8s.object, k8s.describe(c), image])
}

deny contains {"msg": msg, "container": c.name, "image": image} if {
	some c in k8s.containers
	image := c.spec.image
	ref := k8s.images[image]
	ref.digest == ""
	ref.tag in mutable_tags
	msg := sprintf("%s: %s uses image %q with the mutable tag %q; pin a digest (@sha256:...) or an immutable tag", [k8s.object, k8s.describe(c), image, ref.tag])
}
