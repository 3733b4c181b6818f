package checker

import (
	"cmp"
	"slices"
)

// The checkers' names: the keys of "checkers" in results.json. Each checker's Name returns its
// constant; every other package names a checker through these.
const (
	NameLinearizable = "linearizable" // Register
	NameSet          = "set"          // Set
	NameStats        = "stats"        // Stats
	NameLiveness     = "liveness"     // Liveness
)

// NoReason is the reason given for a checker that is not valid but left its Error empty.
const NoReason = "(no reason given)"

// Reason is why one checker is not valid.
type Reason struct {
	Checker string   // the checker's name
	Valid   Validity // Invalid or Unknown
	Error   string   // the checker's Error, or NoReason when it gave none
	Anomaly *Anomaly // the checker's first anomaly, if any
}

// String is "checker: reason", the form the CLI, the soak summary and JUnit print.
func (r Reason) String() string { return r.Checker + ": " + r.Error }

// Reasons lists the checkers of results that are not valid (and apply), in the one order that every summary
// of a verdict uses (the CLI's verdict line, the soak summary, JUnit, the report's "Why"):
//
//  1. Invalid checkers before unknown ones: an invalid checker decides the verdict, unknown
//     ones matter only when none is invalid.
//  2. Then the checker whose first anomaly is earliest (by its time, then its history index);
//     checkers that name no anomaly come after those that do.
//  3. Then by checker name, so that the order never depends on map iteration.
//
// The first reason, when there is one, is the run's reason (see results.Results.Reason).
func Reasons(results map[string]Result) []Reason {
	var out []Reason
	for name, r := range results {
		if r.Valid == Valid || r.NotApplicable != "" {
			continue
		}
		e := r.Error
		if e == "" {
			e = NoReason
		}
		out = append(out, Reason{Checker: name, Valid: r.Valid, Error: e, Anomaly: r.FirstAnomaly})
	}
	slices.SortFunc(out, compareReasons)
	return out
}

// compareReasons is the order of Reasons.
func compareReasons(a, b Reason) int {
	if c := cmp.Compare(reasonRank(a.Valid), reasonRank(b.Valid)); c != 0 {
		return c
	}
	switch {
	case a.Anomaly != nil && b.Anomaly == nil:
		return -1
	case a.Anomaly == nil && b.Anomaly != nil:
		return 1
	case a.Anomaly != nil:
		if c := cmp.Compare(a.Anomaly.Time, b.Anomaly.Time); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Anomaly.Index, b.Anomaly.Index); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.Checker, b.Checker)
}

// reasonRank puts Invalid first; every other non-valid verdict (Unknown) after it.
func reasonRank(v Validity) int {
	if v == Invalid {
		return 0
	}
	return 1
}
