package results

import (
	"strings"
	"time"

	"github.com/raftcheck/harness/checker"
)

// Phase is one timed step of a run, as recorded in results.json.
type Phase struct {
	Name     string        `json:"name"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Seconds  float64       `json:"seconds"`
	Error    string        `json:"error,omitempty"`
}

// Fault is one fault window (nemesis start to end), in seconds since the history's start.
type Fault struct {
	F       string   `json:"f"`
	Start   float64  `json:"start_s"`
	End     float64  `json:"end_s"`
	Targets []string `json:"targets,omitempty"`
}

// Results is results.json: the merged verdict, each checker's result, and how the run went.
type Results struct {
	Valid    checker.Validity          `json:"valid"`
	Checkers map[string]checker.Result `json:"checkers"`
	Phases   []Phase                   `json:"phases,omitempty"`
	Faults   []Fault                   `json:"faults,omitempty"`
	Ops      int                       `json:"ops"`
	Error    string                    `json:"error,omitempty"` // a harness error that ended the run early
	Checked  time.Time                 `json:"checked"`
}

// Reason is the one-line reason of a run that is not valid: the first of checker.Reasons
// ("checker: error", in that documented order), else the first line of the harness error, else
// "". The soak summary and JUnit (NewJUnitCase, harness.FirstFailure) give it.
func (r Results) Reason() string {
	if rs := checker.Reasons(r.Checkers); len(rs) > 0 {
		return rs[0].String()
	}
	first, _, _ := strings.Cut(r.Error, "\n")
	return first
}
