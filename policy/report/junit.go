package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// junitTestSuites is the root of the JUnit XML report: one testsuite per PATH, one testcase
// per object, one failure per denial (and per warning with --fail-on-warn). Warnings that do
// not fail go to the testcase's system-out.
type junitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name      string          `xml:"name,attr"`
	Tests     int             `xml:"tests,attr"`
	Failures  int             `xml:"failures,attr"`
	Errors    int             `xml:"errors,attr"`
	Skipped   int             `xml:"skipped,attr"`
	TestCases []junitTestCase `xml:"testcase"`
}

type junitTestCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	File      string         `xml:"file,attr,omitempty"`
	Line      int            `xml:"line,attr,omitempty"`
	Failures  []junitFailure `xml:"failure"`
	SystemOut string         `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes r as JUnit XML.
func writeJUnit(w io.Writer, r *Report) error {
	doc := junitTestSuites{Name: "driftless check", Suites: make([]junitTestSuite, 0, len(r.Targets))}
	for _, t := range r.Targets {
		suite := junitTestSuite{Name: t.Path, Tests: len(t.Objects), TestCases: make([]junitTestCase, 0, len(t.Objects))}
		for _, o := range t.Objects {
			tc := junitTestCase{Name: o.Ref(), Classname: o.File, File: o.File, Line: o.Line}
			var out strings.Builder
			for _, v := range o.Violations {
				if v.Severity == "deny" || r.FailOnWarn {
					tc.Failures = append(tc.Failures, junitFailure{
						Message: fmt.Sprintf("%s: %s", v.RuleID, oneLine(v.Message)),
						Type:    v.Severity,
						Text:    fmt.Sprintf("%s: %s %s: %s: %s", o.Location(), v.Severity, v.RuleID, o.Ref(), v.Message),
					})
					continue
				}
				fmt.Fprintf(&out, "%s: %s %s: %s: %s\n", o.Location(), v.Severity, v.RuleID, o.Ref(), v.Message)
			}
			tc.SystemOut = out.String()
			if len(tc.Failures) > 0 {
				suite.Failures++
			}
			suite.TestCases = append(suite.TestCases, tc)
		}
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Suites = append(doc.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
