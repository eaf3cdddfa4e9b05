package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// OptionsFromConfig maps a configured policy set onto the Options an Engine
// loads and the EvalContext its evaluations start from, so that `driftless
// check`, the reconciler and the admission webhook load one policy set the
// same way. The returned EvalContext carries the set's Environment; callers
// add Source, Operation and User where they know them.
//
// Paths are taken as they are: v1alpha1.Load has already resolved relative
// paths against the configuration file's directory. Each parameter is decoded
// from JSON (numbers keep their precision); an invalid one is an error naming
// policySets[<name>].parameters.<key>. Unknown rule names and broken policy
// files are reported by Engine.Load, not here.
func OptionsFromConfig(ps v1alpha1.PolicySet) (Options, EvalContext, error) {
	opts := Options{
		DisableLibrary: ps.Library.Disabled,
		DisabledRules:  slices.Clone(ps.Library.DisabledRules),
		Paths:          slices.Clone(ps.Paths),
		Namespaces:     slices.Clone(ps.Packages),
	}
	params, err := decodeParameters(ps.Name, ps.Parameters)
	if err != nil {
		return Options{}, EvalContext{}, err
	}
	opts.Parameters = params
	return opts, EvalContext{Environment: ps.Environment}, nil
}

// decodeParameters decodes every raw parameter, reporting all invalid ones
// in key order.
func decodeParameters(set string, raw map[string]json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, len(raw))
	var errs []error
	for _, k := range keys {
		v, err := DecodeParameter(raw[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("policySets[%s].parameters.%s: %w", set, k, err))
			continue
		}
		out[k] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// DecodeParameter decodes one parameter value from JSON into the form
// Options.Parameters holds: objects, arrays, strings, booleans, null and
// json.Number, so that large integers keep their precision. Empty input,
// invalid JSON and trailing data are errors.
func DecodeParameter(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New("empty value, want JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the value")
	}
	return v, nil
}
