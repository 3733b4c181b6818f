package checker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/raftcheck/harness/history"
)

// Liveness checks that the cluster recovered after the faults (name "liveness"), using the
// nemesis bookkeeping events (history/events.go):
//
//   - every client op invoked after the "final-reads" phase began must complete ok;
//   - after the last heal (phase "heal" or a heal start event; else the recovery phase) there
//     must be a leader observation in which every node names one and the same non-empty leader.
//
// Without any phase event (a history not made by harness run) the checker does not apply
// (NotApplicable); with phases but without a final-reads phase the result is Unknown. Details give the recovery time: from the
// start of the last heal phase to the first agreeing observation.
type Liveness struct{}

// Name is "liveness".
func (Liveness) Name() string { return NameLiveness }

// LivenessDetails is Result.Details of Liveness.
type LivenessDetails struct {
	HealTime         int64  `json:"heal_time"`          // start of the last heal (or recovery) phase; -1 if none
	LeaderTime       int64  `json:"leader_time"`        // first agreeing observation after it; -1 if none
	Leader           string `json:"leader,omitempty"`   // the agreed leader
	RecoveryNanos    int64  `json:"recovery_ns"`        // LeaderTime - HealTime; -1 if unknown
	RecoverySeconds  string `json:"recovery,omitempty"` // human form
	FinalReadsTime   int64  `json:"final_reads_time"`
	FinalOps         int    `json:"final_ops"`
	FinalOpsNotOK    int    `json:"final_ops_not_ok"`
	LastObservation  any    `json:"last_observation,omitempty"` // leaders map of the last observation, when none agreed
	ObservationCount int    `json:"observations"`
	// PartitionHeals is what the partitions' ends during the workload did to the leader
	// (measured, not judged); nil when none ended while the leader watch ran.
	PartitionHeals *PartitionHeals `json:"partition_heals,omitempty"`
	// Leaderless is how long during the workload no majority named one leader (measured, not
	// judged); nil without a leader watch.
	Leaderless *Leaderless `json:"leaderless,omitempty"`
}

func nemesisEvent(op *history.Op) (history.NemesisEvent, bool) {
	var ev history.NemesisEvent
	if !op.IsNemesis() || json.Unmarshal(op.Value, &ev) != nil {
		return ev, false
	}
	return ev, true
}

// Check implements Checker.
func (Liveness) Check(_ context.Context, ops []history.Op) Result {
	d := LivenessDetails{HealTime: -1, LeaderTime: -1, RecoveryNanos: -1, FinalReadsTime: -1, PartitionHeals: partitionHeals(ops), Leaderless: leaderless(ops)}
	finalAt, healAt, recoveryAt := -1, -1, -1
	phases := false
	for i := range ops {
		op := &ops[i]
		if !op.IsNemesis() || (op.F != history.FPhase && op.F != history.FHeal) {
			continue
		}
		phases = phases || op.F == history.FPhase
		ev, ok := nemesisEvent(op)
		if !ok {
			continue
		}
		switch {
		case op.F == history.FPhase && ev.Event == history.PhaseFinalReads && finalAt < 0:
			finalAt = i
			d.FinalReadsTime = op.Time
		case op.F == history.FPhase && ev.Event == history.PhaseHeal, op.F == history.FHeal && ev.Event == history.EventStart:
			healAt = i
		case op.F == history.FPhase && ev.Event == history.PhaseRecovery:
			recoveryAt = i
		}
	}
	// The recovery clock starts at the last heal; a history with only a recovery phase starts it
	// there.
	if healAt < 0 {
		healAt = recoveryAt
	}
	if !phases {
		return Result{Valid: Unknown, NotApplicable: "the history has no harness phases (not made by harness run): liveness not applicable", Details: d}
	}
	if finalAt < 0 {
		return Result{Valid: Unknown, Error: "the history has no final-reads phase (the run ended early?): cannot judge liveness", Details: d}
	}
	res := Result{Valid: Valid}
	// Final reads: every client op invoked after the phase must complete ok.
	pending := map[history.Process]*history.Op{}
	var firstBad *history.Op
	var firstBadInv *history.Op
	for i := finalAt + 1; i < len(ops); i++ {
		op := &ops[i]
		if op.IsNemesis() {
			continue
		}
		if op.Type == history.Invoke {
			pending[op.Process] = op
			d.FinalOps++
			continue
		}
		inv := pending[op.Process]
		if inv == nil {
			continue // completes an op invoked before the phase
		}
		delete(pending, op.Process)
		if op.Type != history.OK {
			d.FinalOpsNotOK++
			if firstBad == nil {
				firstBad, firstBadInv = op, inv
			}
		}
	}
	for _, inv := range pending { // never completed
		d.FinalOpsNotOK++
		if firstBad == nil || inv.Index < firstBadInv.Index {
			firstBad, firstBadInv = inv, inv
		}
	}
	if firstBad != nil {
		res.Valid = Invalid
		what := "never completed"
		if firstBad != firstBadInv {
			what = fmt.Sprintf("completed %s", firstBad.Type)
			if firstBad.Error != "" {
				what += " (" + firstBad.Error + ")"
			}
		}
		res.Error = fmt.Sprintf("final %s of %q by process %d (index %d) %s; %d of %d final ops did not succeed",
			firstBadInv.F, firstBadInv.Key, firstBadInv.Process, firstBadInv.Index, what, d.FinalOpsNotOK, d.FinalOps)
		res.FirstAnomaly = &Anomaly{Index: firstBad.Index, Time: firstBad.Time, Key: firstBad.Key, Process: firstBad.Process, Description: res.Error}
	}
	// Leader agreement after the last heal.
	from := 0
	if healAt >= 0 {
		from = healAt
		d.HealTime = ops[healAt].Time
	}
	for i := from; i < len(ops); i++ {
		op := &ops[i]
		if op.F != history.FLeader {
			continue
		}
		ev, ok := nemesisEvent(op)
		if !ok || ev.Event != history.EventObserved {
			continue
		}
		d.ObservationCount++
		if leader, ok := agreed(ev.Leaders); ok {
			d.Leader, d.LeaderTime, d.LastObservation = leader, op.Time, nil
			if d.HealTime >= 0 {
				d.RecoveryNanos = op.Time - d.HealTime
				d.RecoverySeconds = fmt.Sprintf("%.3fs", float64(d.RecoveryNanos)/1e9)
			}
			break
		}
		d.LastObservation = ev.Leaders
	}
	if d.LeaderTime < 0 {
		msg := "no single leader known to every node within the recovery time"
		if res.Valid == Invalid {
			res.Error += "; " + msg
		} else {
			res.Valid = Invalid
			res.Error = msg
			last := &ops[len(ops)-1]
			res.FirstAnomaly = &Anomaly{Index: last.Index, Time: last.Time, Process: history.NemesisProcess,
				Description: fmt.Sprintf("%s (%d leader observations after the heal)", msg, d.ObservationCount)}
		}
	}
	res.Details = d
	return res
}

// agreed reports the one non-empty leader that every node names.
func agreed(leaders map[string]string) (string, bool) {
	leader := ""
	for _, l := range leaders {
		if l == "" || leader != "" && l != leader {
			return "", false
		}
		leader = l
	}
	return leader, leader != ""
}

// Window is a fault's active period, for shading in the report.
type Window struct {
	F       string   `json:"f"`
	Start   int64    `json:"start"`
	End     int64    `json:"end"`
	Targets []string `json:"targets,omitempty"`
}

// FaultWindows pairs nemesis start and end events of each fault kind (matched in order, per f
// and target set, falling back to the oldest open window of that f); windows never closed end
// at the time of the last op. Bookkeeping events (phase, leader, heal) are not faults. Windows are
// ordered by start.
func FaultWindows(ops []history.Op) []Window {
	var out []Window
	open := map[string][]int{} // f → indexes into out of open windows, oldest first
	for i := range ops {
		op := &ops[i]
		if !op.IsNemesis() || op.F == history.FPhase || op.F == history.FLeader || op.F == history.FHeal {
			continue
		}
		ev, ok := nemesisEvent(op)
		if !ok {
			continue
		}
		switch ev.Event {
		case history.EventStart:
			open[op.F] = append(open[op.F], len(out))
			out = append(out, Window{F: op.F, Start: op.Time, End: -1, Targets: ev.Targets})
		case history.EventEnd:
			list := open[op.F]
			if len(list) == 0 {
				continue
			}
			pick := 0
			for j, w := range list {
				if sameTargets(out[w].Targets, ev.Targets) {
					pick = j
					break
				}
			}
			out[list[pick]].End = op.Time
			open[op.F] = append(list[:pick:pick], list[pick+1:]...)
		}
	}
	var last int64
	if len(ops) > 0 {
		last = ops[len(ops)-1].Time
	}
	for i := range out {
		if out[i].End < 0 {
			out[i].End = last
		}
	}
	return out
}

func sameTargets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
