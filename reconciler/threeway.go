package reconciler

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
)

// BreakGlassConflict is a field both a break-glass change and Git changed, to different
// values, since the break-glass began. The patch to commit leaves it out: whoever commits
// decides.
type BreakGlassConflict struct {
	// Field is the field's path, such as data.REQUEST_TIMEOUT or
	// metadata.annotations["example.com/owner"].
	Field string `json:"field"`
	// Yours is the value the break-glass set, as JSON, or "(removed)".
	Yours string `json:"yours"`
	// Git is the value Git has now, as JSON, or "(removed)".
	Git string `json:"git"`
}

// removedValue stands for a field that is absent on one side of a conflict.
const removedValue = "(removed)"

// threeWay returns the change from base to mine, rebased onto theirs, as a JSON merge patch
// (a removed field is nil), and the fields both mine and theirs changed from base to
// different values. Applying the patch to theirs yields every change of mine that theirs did
// not contradict, and keeps every change of theirs. Maps are merged key by key; every other
// value, lists included, is atomic. A field both sides changed to the same value is neither
// in the patch nor a conflict. The conflicts are sorted by field.
func threeWay(base, mine, theirs map[string]any) (map[string]any, []BreakGlassConflict) {
	var conflicts []BreakGlassConflict
	patch := mergeLevel(nil, base, mine, theirs, &conflicts)
	sort.Slice(conflicts, func(i, j int) bool { return conflicts[i].Field < conflicts[j].Field })
	return patch, conflicts
}

// mergeLevel does [threeWay] for the maps at path; it returns nil when mine changed nothing
// that theirs lacks.
func mergeLevel(path []string, base, mine, theirs map[string]any, conflicts *[]BreakGlassConflict) map[string]any {
	keys := map[string]bool{}
	for k := range base {
		keys[k] = true
	}
	for k := range mine {
		keys[k] = true
	}
	var patch map[string]any
	set := func(k string, v any) {
		if patch == nil {
			patch = map[string]any{}
		}
		patch[k] = v
	}
	for k := range keys {
		b, inB := base[k]
		m, inM := mine[k]
		t, inT := theirs[k]
		if sameValue(b, inB, m, inM) {
			continue // mine did not change it
		}
		if sameValue(m, inM, t, inT) {
			continue // theirs has the change already
		}
		at := append(append([]string(nil), path...), k)
		mm, mIsMap := m.(map[string]any)
		tm, tIsMap := t.(map[string]any)
		bm, bIsMap := b.(map[string]any)
		switch {
		case mIsMap && tIsMap && (bIsMap || !inB):
			// Both hold a map: merge inside it. A map mine added counts as added to an
			// empty one.
			if sub := mergeLevel(at, bm, mm, tm, conflicts); sub != nil {
				set(k, sub)
			}
		case sameValue(b, inB, t, inT):
			// Theirs left it as it was: mine's change goes in whole.
			if inM {
				set(k, m)
			} else if inT {
				set(k, nil)
			}
		default:
			*conflicts = append(*conflicts, BreakGlassConflict{Field: fieldPath(at), Yours: showValue(m, inM), Git: showValue(t, inT)})
		}
	}
	return patch
}

// sameValue reports whether two possibly absent values are equal.
func sameValue(a any, inA bool, b any, inB bool) bool {
	return inA == inB && reflect.DeepEqual(a, b)
}

// showValue prints a value of a conflict.
func showValue(v any, present bool) string {
	if !present {
		return removedValue
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

// fieldPath joins the keys of a field path with dots, quoting keys that are not plain
// identifiers: metadata.annotations["example.com/owner"].
func fieldPath(keys []string) string {
	var sb strings.Builder
	for i, k := range keys {
		if plainKey(k) {
			if i > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(k)
			continue
		}
		q, _ := json.Marshal(k)
		sb.WriteString("[" + string(q) + "]")
	}
	return sb.String()
}

// plainKey reports whether k needs no quoting in a field path.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// jsonValue returns v as plain JSON values (maps, slices, strings, float64, bool, nil), so
// that values of different origins compare equal when their JSON is.
func jsonValue(v map[string]any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
