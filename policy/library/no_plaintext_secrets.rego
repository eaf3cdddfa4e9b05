# METADATA
# title: No plaintext Secrets in Git
# description: >-
#   No v1 Secret carrying data or stringData is kept in Git, where anyone who
#   can read the repository can read it. Commit a SealedSecret
#   (bitnami.com/v1alpha1) or an ExternalSecret (external-secrets.io) instead.
#   A Secret without data, such as a service account token placeholder, is
#   allowed.
# custom:
#   kinds: [Secret]
package driftless.library.no_plaintext_secrets

import data.driftless.lib.kubernetes as k8s

deny contains {"msg": msg} if {
	input.apiVersion == "v1"
	input.kind == "Secret"
	carries_data
	msg := sprintf("%s: a plain Secret in Git exposes its values to every reader of the repository; commit a SealedSecret or an ExternalSecret instead", [k8s.object])
}

carries_data if count(input.data) > 0

carries_data if count(input.stringData) > 0
