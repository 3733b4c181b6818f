package checker

import (
	"context"
	"fmt"
	"sort"

	"github.com/raftcheck/harness/history"
)

// Set checks the set workload (name "set"): f=add with an int (each add a distinct element)
// and f=read returning the whole set as a list of ints. The last successful read is the final
// read. An acknowledged add missing from it is lost; an element in it that was never attempted
// is unexpected; both make the history invalid. Info adds that are present are "recovered"
// (fine). Without a successful read the result is Unknown.
type Set struct{}

// Name is "set".
func (Set) Name() string { return NameSet }

// MaxExamples bounds the examples listed per category.
const MaxExamples = 10

// SetDetails is Result.Details of Set.
type SetDetails struct {
	Attempted       int     `json:"attempted"`
	Acknowledged    int     `json:"acknowledged"`
	Read            int     `json:"read"` // elements in the final read
	FinalReadIndex  int64   `json:"final_read_index"`
	Lost            int     `json:"lost"`
	Unexpected      int     `json:"unexpected"`
	Recovered       int     `json:"recovered"`
	Duplicates      int     `json:"duplicates"` // elements listed twice in the final read (reported only)
	LostExamples    []int64 `json:"lost_examples,omitempty"`
	UnexpectedEx    []int64 `json:"unexpected_examples,omitempty"`
	RecoveredEx     []int64 `json:"recovered_examples,omitempty"`
	DuplicateExampl []int64 `json:"duplicate_examples,omitempty"`
}

type addState struct {
	invoke *history.Op
	done   history.Type
}

// Check implements Checker.
func (Set) Check(_ context.Context, ops []history.Op) Result {
	adds := map[int64]*addState{}
	pending := map[history.Process]*history.Op{}
	var final *history.Op
	for i := range ops {
		op := &ops[i]
		if op.IsNemesis() || op.F != "add" && op.F != "read" {
			continue
		}
		if op.Type == history.Invoke {
			pending[op.Process] = op
			if op.F == "add" {
				v, ok, err := parseInt(op.Value)
				if err != nil || !ok {
					return Result{Valid: Unknown, Error: fmt.Sprintf("index %d: add value %s is not an integer", op.Index, op.Value)}
				}
				if adds[v] == nil {
					adds[v] = &addState{invoke: op, done: history.Info}
				}
			}
			continue
		}
		inv := pending[op.Process]
		delete(pending, op.Process)
		if op.F == "add" && inv != nil {
			v, _, _ := parseInt(inv.Value)
			if a := adds[v]; a != nil && (a.done != history.OK) {
				a.done = op.Type
			}
		}
		if op.F == "read" && op.Type == history.OK {
			final = op
		}
	}
	if final == nil {
		return Result{Valid: Unknown, Error: "no successful read of the set: cannot tell lost elements"}
	}
	read, err := final.Ints()
	if err != nil {
		return Result{Valid: Unknown, Error: fmt.Sprintf("index %d: final read %s is not a list of integers", final.Index, final.Value)}
	}
	d := SetDetails{Attempted: len(adds), Read: len(read), FinalReadIndex: final.Index}
	inRead := make(map[int64]bool, len(read))
	for _, v := range read {
		if inRead[v] {
			d.Duplicates++
			d.DuplicateExampl = example(d.DuplicateExampl, v)
		}
		inRead[v] = true
		a := adds[v]
		switch {
		case a == nil:
			d.Unexpected++
			d.UnexpectedEx = example(d.UnexpectedEx, v)
		case a.done == history.Info:
			d.Recovered++
			d.RecoveredEx = example(d.RecoveredEx, v)
		}
	}
	// Lost: acknowledged but absent; report in history order, earliest first.
	var lost []*addState
	for v, a := range adds {
		if a.done == history.OK {
			d.Acknowledged++
			if !inRead[v] {
				lost = append(lost, a)
			}
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].invoke.Index < lost[j].invoke.Index })
	d.Lost = len(lost)
	for _, a := range lost {
		v, _, _ := parseInt(a.invoke.Value)
		d.LostExamples = example(d.LostExamples, v)
	}
	sort.Slice(d.UnexpectedEx, func(i, j int) bool { return d.UnexpectedEx[i] < d.UnexpectedEx[j] })
	res := Result{Valid: Valid, Details: d}
	switch {
	case d.Lost > 0:
		res.Valid = Invalid
		a := lost[0].invoke
		res.Error = fmt.Sprintf("%d acknowledged adds lost (e.g. %s), %d unexpected elements", d.Lost, a.Value, d.Unexpected)
		res.FirstAnomaly = &Anomaly{Index: a.Index, Time: a.Time, Key: a.Key, Process: a.Process,
			Description: fmt.Sprintf("add %s was acknowledged but is missing from the final read (index %d)", a.Value, final.Index)}
	case d.Unexpected > 0:
		res.Valid = Invalid
		res.Error = fmt.Sprintf("%d unexpected elements in the final read (e.g. %d), never added", d.Unexpected, d.UnexpectedEx[0])
		res.FirstAnomaly = &Anomaly{Index: final.Index, Time: final.Time, Key: final.Key, Process: final.Process,
			Description: fmt.Sprintf("final read contains %d, which no add attempted", d.UnexpectedEx[0])}
	}
	return res
}

func example(list []int64, v int64) []int64 {
	if len(list) < MaxExamples {
		list = append(list, v)
	}
	return list
}
