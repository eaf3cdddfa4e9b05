package reconciler

import (
	"encoding/json"
	"reflect"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

func TestThreeWay(t *testing.T) {
	tests := []struct {
		name string
		// base is Git when the break-glass began, mine the object at its end, theirs Git now.
		base, mine, theirs string
		// patch is the merge patch; conflicts the conflicting fields.
		patch     string
		conflicts []BreakGlassConflict
		// merged is theirs with the patch applied.
		merged string
	}{{
		name:   "disjoint changes keep both",
		base:   `{"data":{"POOL_SIZE":"50","REQUEST_TIMEOUT":"5s"}}`,
		mine:   `{"data":{"POOL_SIZE":"200","REQUEST_TIMEOUT":"5s","BURST":"on"}}`,
		theirs: `{"data":{"POOL_SIZE":"50","REQUEST_TIMEOUT":"7s"}}`,
		patch:  `{"data":{"BURST":"on","POOL_SIZE":"200"}}`,
		merged: `{"data":{"BURST":"on","POOL_SIZE":"200","REQUEST_TIMEOUT":"7s"}}`,
	}, {
		name:   "the same change on both sides is no conflict and not in the patch",
		base:   `{"data":{"POOL_SIZE":"50"}}`,
		mine:   `{"data":{"POOL_SIZE":"200"}}`,
		theirs: `{"data":{"POOL_SIZE":"200"}}`,
		patch:  `null`,
		merged: `{"data":{"POOL_SIZE":"200"}}`,
	}, {
		name:      "a conflicting change names both values and stays out of the patch",
		base:      `{"data":{"POOL_SIZE":"50","REQUEST_TIMEOUT":"5s"}}`,
		mine:      `{"data":{"POOL_SIZE":"200","REQUEST_TIMEOUT":"9s"}}`,
		theirs:    `{"data":{"POOL_SIZE":"50","REQUEST_TIMEOUT":"7s"}}`,
		patch:     `{"data":{"POOL_SIZE":"200"}}`,
		conflicts: []BreakGlassConflict{{Field: "data.REQUEST_TIMEOUT", Yours: `"9s"`, Git: `"7s"`}},
		merged:    `{"data":{"POOL_SIZE":"200","REQUEST_TIMEOUT":"7s"}}`,
	}, {
		name:   "a key alice removed is null in the patch",
		base:   `{"data":{"DEBUG":"true","POOL_SIZE":"50"}}`,
		mine:   `{"data":{"POOL_SIZE":"50"}}`,
		theirs: `{"data":{"DEBUG":"true","POOL_SIZE":"60"}}`,
		patch:  `{"data":{"DEBUG":null}}`,
		merged: `{"data":{"POOL_SIZE":"60"}}`,
	}, {
		name:      "a key alice removed and Git changed is a conflict",
		base:      `{"data":{"DEBUG":"true"}}`,
		mine:      `{"data":{}}`,
		theirs:    `{"data":{"DEBUG":"false"}}`,
		patch:     `null`,
		conflicts: []BreakGlassConflict{{Field: "data.DEBUG", Yours: removedValue, Git: `"false"`}},
		merged:    `{"data":{"DEBUG":"false"}}`,
	}, {
		name:   "a key both removed is nothing",
		base:   `{"data":{"DEBUG":"true","A":"1"}}`,
		mine:   `{"data":{"A":"1"}}`,
		theirs: `{"data":{"A":"1"}}`,
		patch:  `null`,
		merged: `{"data":{"A":"1"}}`,
	}, {
		name:   "nested maps merge key by key",
		base:   `{"metadata":{"labels":{"app":"web"},"annotations":{"example.com/owner":"payments"}},"spec":{"replicas":2,"template":{"spec":{"dnsPolicy":"ClusterFirst"}}}}`,
		mine:   `{"metadata":{"labels":{"app":"web","incident":"INC-1"},"annotations":{"example.com/owner":"payments"}},"spec":{"replicas":6,"template":{"spec":{"dnsPolicy":"ClusterFirst"}}}}`,
		theirs: `{"metadata":{"labels":{"app":"web","tier":"front"},"annotations":{"example.com/owner":"sre"}},"spec":{"replicas":2,"template":{"spec":{"dnsPolicy":"Default"}}}}`,
		patch:  `{"metadata":{"labels":{"incident":"INC-1"}},"spec":{"replicas":6}}`,
		merged: `{"metadata":{"labels":{"app":"web","incident":"INC-1","tier":"front"},"annotations":{"example.com/owner":"sre"}},"spec":{"replicas":6,"template":{"spec":{"dnsPolicy":"Default"}}}}`,
	}, {
		name:      "a conflict in a nested map with a key that needs quoting",
		base:      `{"metadata":{"annotations":{"example.com/owner":"payments"}}}`,
		mine:      `{"metadata":{"annotations":{"example.com/owner":"oncall"}}}`,
		theirs:    `{"metadata":{"annotations":{"example.com/owner":"sre"}}}`,
		patch:     `null`,
		conflicts: []BreakGlassConflict{{Field: `metadata.annotations["example.com/owner"]`, Yours: `"oncall"`, Git: `"sre"`}},
		merged:    `{"metadata":{"annotations":{"example.com/owner":"sre"}}}`,
	}, {
		name:   "a map both added merges",
		base:   `{}`,
		mine:   `{"data":{"A":"1","B":"2"}}`,
		theirs: `{"data":{"B":"2","C":"3"}}`,
		patch:  `{"data":{"A":"1"}}`,
		merged: `{"data":{"A":"1","B":"2","C":"3"}}`,
	}, {
		name:   "lists are atomic: alice's list wins when Git left it alone",
		base:   `{"spec":{"args":["--a"],"image":"web:1"}}`,
		mine:   `{"spec":{"args":["--a","--debug"],"image":"web:1"}}`,
		theirs: `{"spec":{"args":["--a"],"image":"web:2"}}`,
		patch:  `{"spec":{"args":["--a","--debug"]}}`,
		merged: `{"spec":{"args":["--a","--debug"],"image":"web:2"}}`,
	}, {
		name:      "lists are atomic: both changing one is a conflict",
		base:      `{"spec":{"args":["--a"]}}`,
		mine:      `{"spec":{"args":["--a","--debug"]}}`,
		theirs:    `{"spec":{"args":["--a","--trace"]}}`,
		patch:     `null`,
		conflicts: []BreakGlassConflict{{Field: "spec.args", Yours: `["--a","--debug"]`, Git: `["--a","--trace"]`}},
		merged:    `{"spec":{"args":["--a","--trace"]}}`,
	}, {
		name:      "Git removed the map alice changed inside",
		base:      `{"data":{"A":"1"},"kind":"ConfigMap"}`,
		mine:      `{"data":{"A":"2"},"kind":"ConfigMap"}`,
		theirs:    `{"kind":"ConfigMap"}`,
		patch:     `null`,
		conflicts: []BreakGlassConflict{{Field: "data", Yours: `{"A":"2"}`, Git: removedValue}},
		merged:    `{"kind":"ConfigMap"}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decode := func(s string) map[string]any {
				var m map[string]any
				if err := json.Unmarshal([]byte(s), &m); err != nil {
					t.Fatalf("decode %s: %v", s, err)
				}
				return m
			}
			patch, conflicts := threeWay(decode(tc.base), decode(tc.mine), decode(tc.theirs))
			got, err := json.Marshal(patch)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, string(got), tc.patch) {
				t.Errorf("patch = %s, want %s", got, tc.patch)
			}
			if !reflect.DeepEqual(conflicts, tc.conflicts) {
				t.Errorf("conflicts = %+v, want %+v", conflicts, tc.conflicts)
			}
			merged := []byte(tc.theirs)
			if patch != nil {
				if merged, err = jsonpatch.MergePatch([]byte(tc.theirs), got); err != nil {
					t.Fatalf("apply the patch to theirs: %v", err)
				}
			}
			if !jsonEqual(t, string(merged), tc.merged) {
				t.Errorf("theirs with the patch = %s, want %s", merged, tc.merged)
			}
		})
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
