package report

import (
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/driftless-dev/driftless/policy"
)

// SARIF 2.1.0, the subset GitHub code scanning reads: one run whose driver lists every
// evaluated rule, and one result per violation located at the object's file (and line, where
// known), relative to the repository root.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifToolURI = "https://github.com/driftless-dev/driftless"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     sarifText          `json:"shortDescription"`
	FullDescription      sarifText          `json:"fullDescription"`
	Help                 sarifText          `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProps     `json:"properties"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags []string `json:"tags"`
}

type sarifResult struct {
	RuleID     string           `json:"ruleId"`
	RuleIndex  int              `json:"ruleIndex"`
	Level      string           `json:"level"`
	Message    sarifText        `json:"message"`
	Locations  []sarifLocation  `json:"locations"`
	Properties sarifResultProps `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation  `json:"physicalLocation"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifResultProps struct {
	Target        string         `json:"target"`
	Kustomization string         `json:"kustomization,omitempty"`
	APIVersion    string         `json:"apiVersion"`
	Kind          string         `json:"kind"`
	Namespace     string         `json:"namespace,omitempty"`
	Name          string         `json:"name"`
	Details       map[string]any `json:"details,omitempty"`
}

// sarifLevel maps a severity onto a SARIF level.
func sarifLevel(severity string) string {
	if severity == "deny" {
		return "error"
	}
	return "warning"
}

// writeSARIF writes r as a SARIF 2.1.0 log.
func writeSARIF(w io.Writer, r *Report, version string) error {
	driver := sarifDriver{Name: "driftless", InformationURI: sarifToolURI, Version: version, Rules: make([]sarifRule, 0, len(r.Rules))}
	index := make(map[string]int, len(r.Rules))
	for i, rule := range r.Rules {
		index[rule.ID] = i
		driver.Rules = append(driver.Rules, newSARIFRule(rule))
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Results: []sarifResult{}}
	for _, t := range r.Targets {
		for _, o := range t.Objects {
			for _, v := range o.Violations {
				loc := sarifLocation{
					PhysicalLocation: sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(o.File)}},
					LogicalLocations: []sarifLogicalLocation{{Name: o.Name, FullyQualifiedName: o.Ref(), Kind: "resource"}},
				}
				if o.Line > 0 {
					loc.PhysicalLocation.Region = &sarifRegion{StartLine: o.Line}
				}
				run.Results = append(run.Results, sarifResult{
					RuleID:    v.RuleID,
					RuleIndex: index[v.RuleID],
					Level:     sarifLevel(v.Severity),
					Message:   sarifText{Text: o.Ref() + ": " + v.Message},
					Locations: []sarifLocation{loc},
					Properties: sarifResultProps{
						Target:        t.Path,
						Kustomization: o.Kustomization,
						APIVersion:    o.APIVersion,
						Kind:          o.Kind,
						Namespace:     o.Namespace,
						Name:          o.Name,
						Details:       v.Details,
					},
				})
			}
		}
	}
	return writeJSON(w, sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

// newSARIFRule describes a rule for the driver's rules list.
func newSARIFRule(rule RuleReport) sarifRule {
	full := rule.Description
	if full == "" {
		full = rule.Title
	}
	help := full
	if name, ok := strings.CutPrefix(rule.Package, policy.LibraryPackagePrefix); ok {
		help += " Built-in rule; switch it off with --disable-rule " + name + " or library.disabledRules in the policy set."
	} else {
		help += " Rule " + rule.Title + " of a Rego policy."
	}
	tags := []string{"kubernetes", "policy"}
	if strings.HasPrefix(rule.Package, policy.LibraryPackagePrefix) {
		tags = append(tags, "driftless-library")
	}
	return sarifRule{
		ID:                   rule.ID,
		Name:                 rule.ID,
		ShortDescription:     sarifText{Text: rule.Title},
		FullDescription:      sarifText{Text: full},
		Help:                 sarifText{Text: help},
		DefaultConfiguration: sarifConfiguration{Level: sarifLevel(rule.Severity)},
		Properties:           sarifRuleProps{Tags: tags},
	}
}

// sarifURI turns a report file name into a URI reference: relative paths stay relative to
// the repository root (as GitHub code scanning expects), absolute ones become file URIs.
func sarifURI(file string) string {
	if filepath.IsAbs(file) {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(file)}).String()
	}
	return (&url.URL{Path: file}).String()
}
