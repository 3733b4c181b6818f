package checker

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/raftcheck/harness/history"
)

// Stats counts client operations per f and outcome (name "stats"). It is invalid when some f
// was attempted but never succeeded, which usually means the system was unavailable throughout
// or the workload is broken; fs never attempted are ignored.
type Stats struct{}

// Name is "stats".
func (Stats) Name() string { return NameStats }

// FStats counts the completions of one f.
type FStats struct {
	Invoke int `json:"invoke"`
	OK     int `json:"ok"`
	Fail   int `json:"fail"`
	Info   int `json:"info"`
}

// StatsDetails is Result.Details of Stats.
type StatsDetails struct {
	Total FStats            `json:"total"`
	ByF   map[string]FStats `json:"by_f"`
}

// Check implements Checker.
func (Stats) Check(_ context.Context, ops []history.Op) Result {
	d := StatsDetails{ByF: map[string]FStats{}}
	for i := range ops {
		d.add(&ops[i])
	}
	return d.result()
}

func (d *StatsDetails) add(op *history.Op) {
	if op.IsNemesis() {
		return
	}
	s := d.ByF[op.F]
	for _, c := range []*FStats{&s, &d.Total} {
		switch op.Type {
		case history.Invoke:
			c.Invoke++
		case history.OK:
			c.OK++
		case history.Fail:
			c.Fail++
		case history.Info:
			c.Info++
		}
	}
	d.ByF[op.F] = s
}

func (d StatsDetails) result() Result {
	var never []string
	for f, s := range d.ByF {
		if s.Invoke > 0 && s.OK == 0 {
			never = append(never, f)
		}
	}
	sort.Strings(never)
	res := Result{Valid: Valid, Details: d}
	if len(never) > 0 {
		res.Valid = Invalid
		res.Error = fmt.Sprintf("no %s operation ever succeeded", strings.Join(never, ", no "))
	}
	return res
}
