package checker

import (
	"slices"
	"testing"
)

// TestReasonsOrder pins the order documented on Reasons, rule by rule, and checks that it does
// not depend on map iteration (each map is built and ranged over many times).
func TestReasonsOrder(t *testing.T) {
	at := func(time, index int64) *Anomaly { return &Anomaly{Time: time, Index: index} }
	results := map[string]Result{
		"ok":        {Valid: Valid},
		"unknown-a": {Valid: Unknown, Error: "timed out"},
		"unknown-b": {Valid: Unknown, FirstAnomaly: at(9, 1)}, // rule 2 within the unknown ones
		"late":      {Valid: Invalid, Error: "late", FirstAnomaly: at(50, 7)},
		"early":     {Valid: Invalid, Error: "early", FirstAnomaly: at(10, 3)},
		"early-tie": {Valid: Invalid, Error: "same time, later index", FirstAnomaly: at(10, 4)},
		"zeta":      {Valid: Invalid, Error: "no anomaly"},
		"alpha":     {Valid: Invalid, Error: "no anomaly either"},
	}
	want := []string{
		// rule 1: invalid first; rule 2: earliest anomaly (time, then index); no anomaly last
		"early", "early-tie", "late",
		// rule 3: then by name
		"alpha", "zeta",
		// unknown ones after every invalid one, by the same rules
		"unknown-b", "unknown-a",
	}
	for i := 0; i < 50; i++ {
		m := make(map[string]Result, len(results))
		for k, v := range results {
			m[k] = v
		}
		var got []string
		for _, r := range Reasons(m) {
			got = append(got, r.Checker)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: order %v, want %v", i, got, want)
		}
	}
	rs := Reasons(results)
	if rs[0].String() != "early: early" || rs[len(rs)-2].Error != NoReason {
		t.Errorf("reason text: first %q, unknown-b %+v", rs[0].String(), rs[len(rs)-2])
	}
	if len(Reasons(map[string]Result{"ok": {Valid: Valid}})) != 0 || len(Reasons(nil)) != 0 {
		t.Errorf("valid or no checkers give reasons")
	}
}

// TestCheckerNames: each checker's Name is its exported constant, the name other packages use.
func TestCheckerNames(t *testing.T) {
	for c, want := range map[Checker]string{
		Register{}: NameLinearizable, Set{}: NameSet, Stats{}: NameStats, Liveness{}: NameLiveness,
	} {
		if c.Name() != want {
			t.Errorf("%T.Name() = %q, want %q", c, c.Name(), want)
		}
	}
}
