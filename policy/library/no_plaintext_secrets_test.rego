package driftless.library.no_plaintext_secrets_test

import data.driftless.library.no_plaintext_secrets

deny(obj) := result if {
	result := no_plaintext_secrets.deny with input as obj
}

secret(fields) := object.union({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}}, fields)

test_secret_with_data_denied if {
	result := deny(secret({"data": {"password": "aHVudGVyMg=="}}))
	count(result) == 1
	some v in result
	contains(v.msg, "Secret/db")
	contains(v.msg, "SealedSecret")
}

test_secret_with_string_data_denied if {
	count(deny(secret({"stringData": {"password": "hunter2"}}))) == 1
}

test_secret_without_data_passes if {
	count(deny(secret({"type": "kubernetes.io/service-account-token"}))) == 0
	count(deny(secret({"data": {}}))) == 0
}

test_sealed_and_external_secrets_pass if {
	count(deny({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "db"}, "spec": {"encryptedData": {"password": "AgB..."}}})) == 0
	count(deny({"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret", "metadata": {"name": "db"}, "spec": {"data": [{"secretKey": "password"}]}})) == 0
}
