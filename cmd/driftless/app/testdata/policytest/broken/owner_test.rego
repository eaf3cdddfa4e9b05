package main

test_owner_missing if {
	count(deny) == == 1 with input as {"kind": "ConfigMap", "metadata": {"name": "c"}}
}
