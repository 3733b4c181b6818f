// Package history is the record of a test: every client operation and nemesis event, one JSON
// object per line (history.jsonl), written as it happens and read back for checking.
//
// The line format is a fixed contract (see DESIGN.md, "History line"):
//
//	{"index":7,"time":1523000000,"process":3,"type":"invoke","f":"cas","key":"r2","value":[4,9]}
//	{"index":8,"time":1541000000,"process":3,"type":"ok","f":"cas","key":"r2","value":[4,9],"node":"n2"}
package history

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Type is the kind of a history line: an invocation or one of the three completions.
type Type string

const (
	// Invoke is written before a client calls the system.
	Invoke Type = "invoke"
	// OK means the operation certainly happened.
	OK Type = "ok"
	// Fail means the operation certainly did not happen.
	Fail Type = "fail"
	// Info means the outcome is unknown (timeout, lost connection); the process is then retired.
	Info Type = "info"
)

// Valid reports whether t is one of the four known types.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// NemesisProcess is the Process value of nemesis events; it is written as the string "nemesis".
const NemesisProcess Process = -1

// Process identifies a logical single-threaded client, or the nemesis (NemesisProcess).
// Client processes are numbered from 0; after an Info completion a worker continues under a new
// number, as in Jepsen.
type Process int

// MarshalJSON writes client processes as numbers and the nemesis as "nemesis".
func (p Process) MarshalJSON() ([]byte, error) {
	if p == NemesisProcess {
		return []byte(`"nemesis"`), nil
	}
	return strconv.AppendInt(nil, int64(p), 10), nil
}

// UnmarshalJSON accepts a non-negative number or the string "nemesis".
func (p *Process) UnmarshalJSON(b []byte) error {
	if string(b) == `"nemesis"` {
		*p = NemesisProcess
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("process must be a non-negative integer or \"nemesis\", got %s", b)
	}
	*p = Process(n)
	return nil
}

// Op is one line of a history.
//
// Value holds the workload-specific payload as raw JSON (register: read → null or int,
// write → int, cas → [expected,new]; set: add → int, read → [ints]; nemesis: a description of
// the targets). Use the typed accessors to decode it.
type Op struct {
	Index   int64           `json:"index"`
	Time    int64           `json:"time"` // nanoseconds since the run started (monotonic)
	Process Process         `json:"process"`
	Type    Type            `json:"type"`
	F       string          `json:"f"`
	Key     string          `json:"key,omitempty"`
	Value   json.RawMessage `json:"value"`
	Node    string          `json:"node,omitempty"`  // the node that served the call, on completions
	Error   string          `json:"error,omitempty"` // why a fail or info happened
}

// IsNemesis reports whether the op is a nemesis event rather than a client operation.
func (o Op) IsNemesis() bool { return o.Process == NemesisProcess }

// Int decodes Value as an integer; ok is false when Value is null or missing.
func (o Op) Int() (v int64, ok bool, err error) {
	if isNull(o.Value) {
		return 0, false, nil
	}
	err = json.Unmarshal(o.Value, &v)
	return v, err == nil, err
}

// Pair decodes Value as a two-integer array, as CAS operations carry [expected, new].
func (o Op) Pair() (a, b int64, err error) {
	var p [2]int64
	if err = json.Unmarshal(o.Value, &p); err != nil {
		return 0, 0, err
	}
	return p[0], p[1], nil
}

// Ints decodes Value as a list of integers (a set read); null decodes to nil.
func (o Op) Ints() ([]int64, error) {
	if isNull(o.Value) {
		return nil, nil
	}
	var v []int64
	err := json.Unmarshal(o.Value, &v)
	return v, err
}

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

// MustValue encodes v as a json.RawMessage for Op.Value; it panics only on values that cannot be
// encoded as JSON, which is a programming error.
func MustValue(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("history: cannot encode value %#v: %v", v, err))
	}
	return b
}
