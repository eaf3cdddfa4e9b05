package v1alpha1

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxConfigSize bounds the size of a configuration file.
const MaxConfigSize = 1 << 20

// Load reads, strictly decodes, defaults and validates the configuration file at path.
func Load(path string) (*DriftlessConfig, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadFile reads the configuration file at path, refusing one larger than MaxConfigSize,
// also when it grows while being read. Load is ReadFile and Parse; a caller that needs the
// bytes too (to notice a change) calls both.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > MaxConfigSize {
		return nil, fmt.Errorf("read config %s: %d bytes is more than the limit of %d", path, info.Size(), MaxConfigSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("read config %s: more than the limit of %d bytes", path, MaxConfigSize)
	}
	return data, nil
}

// Parse decodes data, the content of the configuration file at path, as [Decode] does, and
// resolves its relative policy paths against the file's directory. Errors name path.
func Parse(path string, data []byte) (*DriftlessConfig, error) {
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	ResolvePaths(c, filepath.Dir(path))
	return c, nil
}

// ResolvePaths makes the relative policy paths and ledger sink files of c absolute against
// dir, the directory of the configuration file.
func ResolvePaths(c *DriftlessConfig, dir string) {
	if s := c.Ledger.Sink; s != nil {
		for _, f := range []*string{&s.KeyFile, &s.CAFile} {
			if *f != "" && !filepath.IsAbs(*f) {
				*f = filepath.Join(dir, *f)
			}
		}
	}
	for i := range c.PolicySets {
		for j, p := range c.PolicySets[i].Paths {
			if !filepath.IsAbs(p) {
				c.PolicySets[i].Paths[j] = filepath.Join(dir, p)
			}
		}
	}
}

// Decode strictly decodes a YAML or JSON configuration, applies defaults and validates it.
// Unknown and duplicated keys are errors that name the field.
func Decode(data []byte) (*DriftlessConfig, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c := &DriftlessConfig{}
	strict, err := kjson.UnmarshalStrict(js, c, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("decode: %w", errors.Join(strict...))
	}
	if c.APIVersion == "" || c.Kind == "" {
		return nil, fmt.Errorf("decode: apiVersion and kind are required (apiVersion: %s, kind: %s)", APIVersion, Kind)
	}
	SetDefaults(c)
	if errs := Validate(c); len(errs) > 0 {
		return nil, fmt.Errorf("invalid: %w", errs.ToAggregate())
	}
	return c, nil
}
