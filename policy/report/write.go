package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Format is an output format of a report.
type Format string

// The formats of `driftless check --output`.
const (
	// FormatText is one line per violation and a summary line.
	FormatText Format = "text"
	// FormatJSON is the CheckReport document.
	FormatJSON Format = "json"
	// FormatJUnit is JUnit XML: one testsuite per target, one testcase per object.
	FormatJUnit Format = "junit"
	// FormatSARIF is SARIF 2.1.0, for GitHub code scanning.
	FormatSARIF Format = "sarif"
)

// ParseFormat checks an --output value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON, FormatJUnit, FormatSARIF:
		return f, nil
	}
	return "", fmt.Errorf("--output %q: want text, json, junit or sarif", s)
}

// Write writes r to w in format f. version is the driftless version SARIF names its tool
// with.
func Write(w io.Writer, f Format, r *Report, version string) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, r)
	case FormatJUnit:
		return writeJUnit(w, r)
	case FormatSARIF:
		return writeSARIF(w, r, version)
	default:
		return writeText(w, r)
	}
}

// writeText writes one line per violation,
//
//	file[:line]: deny images_pinned: Deployment production/web: message
//
// and a summary line, "1 denial, 0 warnings in 3 objects".
func writeText(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, t := range r.Targets {
		for _, o := range t.Objects {
			for _, v := range o.Violations {
				fmt.Fprintf(&b, "%s: %s %s: %s: %s\n", o.Location(), v.Severity, v.RuleID, o.Ref(), oneLine(v.Message))
			}
		}
	}
	b.WriteString(r.Summary.String())
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine keeps a message on its line in text output.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// writeJSON writes r as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
