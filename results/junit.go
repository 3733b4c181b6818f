package results

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/raftcheck/harness/checker"
)

// JUnitCase is one run as a JUnit test case.
type JUnitCase struct {
	Name     string
	Dir      string // the run folder, written to system-out
	Valid    checker.Validity
	Reason   string // why the run is not valid: Results.Reason (see NewJUnitCase)
	Duration time.Duration
}

// NewJUnitCase is the test case of a run with results res: its verdict, and as its reason
// res.Reason(), the first of checker.Reasons, the order every verdict summary uses.
func NewJUnitCase(name, dir string, res Results, d time.Duration) JUnitCase {
	return JUnitCase{Name: name, Dir: dir, Valid: res.Valid, Reason: res.Reason(), Duration: d}
}

// JUnit XML elements (the common Jenkins/Surefire dialect).
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes cases as one JUnit test suite to path (atomically). An invalid run is a
// <failure> (type "invalid"); an unknown verdict is an <error> (type "unknown"), not a skip, so
// that CI never shows an undecided run as passed or ignored. Each case's system-out names its
// run folder.
func WriteJUnit(path string, suite string, cases []JUnitCase) error {
	s := junitSuite{Name: suite, Tests: len(cases)}
	var total time.Duration
	for _, c := range cases {
		total += c.Duration
		jc := junitCase{Name: c.Name, ClassName: suite, Time: junitSeconds(c.Duration)}
		if c.Dir != "" {
			jc.SystemOut = "run folder: " + c.Dir
		}
		reason := c.Reason
		switch c.Valid {
		case checker.Valid:
		case checker.Invalid:
			if reason == "" {
				reason = "the history is not valid"
			}
			jc.Failure = &junitProblem{Message: xmlSafe(reason), Type: "invalid", Text: xmlSafe(reason + "\n" + jc.SystemOut)}
			s.Failures++
		default:
			if reason == "" {
				reason = "the verdict is unknown"
			}
			jc.Error = &junitProblem{Message: xmlSafe(reason), Type: "unknown", Text: xmlSafe(reason + "\n" + jc.SystemOut)}
			s.Errors++
		}
		jc.Name, jc.SystemOut = xmlSafe(jc.Name), xmlSafe(jc.SystemOut)
		s.Cases = append(s.Cases, jc)
	}
	s.Time = junitSeconds(total)
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	b = append([]byte(xml.Header), append(b, '\n')...)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func junitSeconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// xmlSafe drops the characters XML 1.0 cannot carry at all (encoding/xml escapes the rest but
// writes control characters as character references that parsers reject).
func xmlSafe(s string) string {
	ok := true
	for _, r := range s {
		if !xmlChar(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if xmlChar(r) {
			out = append(out, r)
		} else {
			out = append(out, '\uFFFD')
		}
	}
	return string(out)
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
