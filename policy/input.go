package policy

import (
	"encoding/json"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue turns an object into the Rego input of one evaluation without
// copying or changing obj. metadata.managedFields is always left out: it is
// the API server's bookkeeping, present at admission and never in rendered
// manifests, so a policy reading it would decide differently in CI, in the
// reconciler and at admission. status is left out when only built-in rules
// are queried (withoutStatus); none of them reads it, user policies may.
//
// The result converts nested objects to Rego values only when a policy reads
// them (OPA's lazy object), so fields no rule touches cost nothing. Values of
// types the lazy conversion cannot take fall back to the eager conversion,
// which reports them as an error.
func inputValue(obj map[string]any, withoutStatus bool) (ast.Value, error) {
	top := obj
	md, hasMD := obj["metadata"].(map[string]any)
	_, hasManaged := md["managedFields"]
	_, hasStatus := obj["status"]
	if hasManaged || (withoutStatus && hasStatus) {
		top = make(map[string]any, len(obj))
		for k, v := range obj {
			if k == "status" && withoutStatus {
				continue
			}
			top[k] = v
		}
		if hasMD && hasManaged {
			trimmed := make(map[string]any, len(md))
			for k, v := range md {
				if k != "managedFields" {
					trimmed[k] = v
				}
			}
			top["metadata"] = trimmed
		}
	}
	if !lazyConvertible(top) {
		return ast.InterfaceToValue(top)
	}
	return ast.LazyObject(top), nil
}

// lazyConvertible reports whether every value in v is a JSON type that
// OPA's lazy object converts without failing (it panics otherwise).
func lazyConvertible(v any) bool {
	switch v := v.(type) {
	case nil, bool, string, float64, int, int64, uint64:
		return true
	case json.Number:
		_, err := v.Float64()
		return err == nil
	case []any:
		for _, e := range v {
			if !lazyConvertible(e) {
				return false
			}
		}
		return true
	case []string:
		return true
	case map[string]any:
		for _, e := range v {
			if !lazyConvertible(e) {
				return false
			}
		}
		return true
	default:
		return false
	}
}
