// Package checker decides whether a history is acceptable. Every checker is a pure function of
// a history ([]history.Op); each gives a Result whose Valid is true, false or "unknown", and
// Merge combines them into the verdict of a run (DESIGN.md, results.json).
package checker

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/raftcheck/harness/history"
)

// Validity is a checker's verdict. It marshals as JSON true, false or "unknown". The zero value
// is Unknown, so a Result that was never filled in can never pass.
type Validity int8

const (
	// Unknown means the checker could not decide (timeout, missing data).
	Unknown Validity = iota
	// Valid means the history passed.
	Valid
	// Invalid means the history shows a violation.
	Invalid
)

// String returns "true", "false" or "unknown", as in results.json.
func (v Validity) String() string {
	switch v {
	case Valid:
		return "true"
	case Invalid:
		return "false"
	}
	return "unknown"
}

// MarshalJSON writes true, false or "unknown".
func (v Validity) MarshalJSON() ([]byte, error) {
	switch v {
	case Valid:
		return []byte("true"), nil
	case Invalid:
		return []byte("false"), nil
	}
	return []byte(`"unknown"`), nil
}

// UnmarshalJSON accepts true, false and "unknown".
func (v *Validity) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*v = Valid
	case "false":
		*v = Invalid
	case `"unknown"`:
		*v = Unknown
	default:
		return fmt.Errorf("validity must be true, false or \"unknown\", got %s", b)
	}
	return nil
}

// Result is one checker's outcome, as stored under "checkers" in results.json.
type Result struct {
	Valid        Validity `json:"valid"`
	Error        string   `json:"error,omitempty"`         // one-line reason when not valid (first failure)
	Details      any      `json:"details,omitempty"`       // checker-specific
	FirstAnomaly *Anomaly `json:"first_anomaly,omitempty"` // earliest op that shows the problem, if known
	// NotApplicable, when set, says why the checker does not apply to this history (liveness of a
	// history without the harness's phases); Valid is then Unknown, and Merge and Reasons leave
	// the result out, so it neither passes nor fails a run.
	NotApplicable string `json:"not_applicable,omitempty"`
}

// Anomaly points at the history line that shows a problem.
type Anomaly struct {
	Index       int64           `json:"index"` // history index of the line
	Time        int64           `json:"time"`  // its time, ns since the run started
	Key         string          `json:"key,omitempty"`
	Process     history.Process `json:"process"`
	Description string          `json:"description"`
	// Visualization is the name of the file, in the checker's output folder (the run folder),
	// that shows this anomaly, when the checker wrote one (the register checker's porcupine HTML).
	Visualization string `json:"visualization,omitempty"`
}

// Checker judges a history. Check must not modify ops and must honour ctx where it can take
// long; it never panics on purpose (RunAll recovers anyway).
type Checker interface {
	Name() string
	Check(ctx context.Context, ops []history.Op) Result
}

// Merge combines verdicts: any Invalid gives Invalid, else any Unknown gives Unknown, else Valid.
// Results that do not apply (NotApplicable) are left out; no results at all is Unknown: nothing
// was checked.
func Merge(results map[string]Result) Validity {
	vs := make([]Validity, 0, len(results))
	for _, r := range results {
		if r.NotApplicable == "" {
			vs = append(vs, r.Valid)
		}
	}
	return MergeVerdicts(vs...)
}

// MergeVerdicts merges verdicts by the same rule as Merge: any Invalid gives Invalid, else any
// Unknown gives Unknown, else Valid; no verdict at all is Unknown.
func MergeVerdicts(vs ...Validity) Validity {
	if len(vs) == 0 {
		return Unknown
	}
	v := Valid
	for _, x := range vs {
		switch x {
		case Invalid:
			return Invalid
		case Valid:
		default:
			v = Unknown
		}
	}
	return v
}

// RunAll runs every checker concurrently on ops and returns their results by name. A checker
// that panics gets an Unknown result carrying the panic text.
func RunAll(ctx context.Context, cs []Checker, ops []history.Op) map[string]Result {
	results := make(map[string]Result, len(cs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runOne(ctx, c, ops)
			mu.Lock()
			results[c.Name()] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

func runOne(ctx context.Context, c Checker, ops []history.Op) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{
				Valid:   Unknown,
				Error:   fmt.Sprintf("checker %s panicked: %v", c.Name(), p),
				Details: map[string]string{"stack": string(debug.Stack())},
			}
		}
	}()
	return c.Check(ctx, ops)
}

// parseInt decodes a JSON integer quickly, falling back to encoding/json for unusual forms.
// ok is false for null or a missing value.
func parseInt(raw json.RawMessage) (v int64, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	if n, good := history.PlainInt(raw); good {
		return n, true, nil
	}
	err = json.Unmarshal(raw, &v)
	return v, err == nil, err
}

// parsePair decodes [a,b].
func parsePair(raw json.RawMessage) (a, b int64, err error) {
	if len(raw) >= 5 && raw[0] == '[' && raw[len(raw)-1] == ']' {
		for i := 1; i < len(raw)-1; i++ {
			if raw[i] == ',' {
				x, ok1 := history.PlainInt(raw[1:i])
				y, ok2 := history.PlainInt(raw[i+1 : len(raw)-1])
				if ok1 && ok2 {
					return x, y, nil
				}
				break
			}
		}
	}
	var p [2]int64
	if err = json.Unmarshal(raw, &p); err != nil {
		return 0, 0, err
	}
	return p[0], p[1], nil
}
