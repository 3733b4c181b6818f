package history

// Nemesis events (Process == NemesisProcess, Type == Info) share one shape of Value so that the
// checkers and the report can find fault windows and phases without knowing every fault:
//
//	{"process":"nemesis","type":"info","f":"partition","value":{"event":"start","targets":["n1"],"detail":{…}}}
//	{"process":"nemesis","type":"info","f":"partition","value":{"event":"end","targets":["n1"]}}
//	{"process":"nemesis","type":"info","f":"phase","value":{"event":"final-reads"}}
//	{"process":"nemesis","type":"info","f":"leader","value":{"event":"observed","leaders":{"n1":"n2","n2":"n2"}}}
//
// F is the fault kind (partition, kill, pause, restart, membership, loss), or one of the
// bookkeeping kinds below.
const (
	// FPhase marks the start of a phase of the run; Event is the phase name (Phase* below).
	FPhase = "phase"
	// FHeal is the final heal of every fault; Event is "start" then "end".
	FHeal = "heal"
	// FLeader records which leader each node reported; Event is "observed".
	FLeader = "leader"
)

// Event names used in NemesisEvent.Event.
const (
	EventStart    = "start"
	EventEnd      = "end"
	EventObserved = "observed"
)

// DetailUndoSeconds is the key, in the Detail of a fault's end line, of the seconds its reversal
// took: the line is written once the fault is gone, so the heal began that long before it.
const DetailUndoSeconds = "undo_s"

// Phase names, recorded in order with F == FPhase.
const (
	PhaseWorkload   = "workload"    // client operations begin
	PhaseHeal       = "heal"        // faults stop; everything is healed
	PhaseRecovery   = "recovery"    // the cluster is given --recovery-time
	PhaseFinalReads = "final-reads" // every client op invoked after this must succeed
	PhaseDone       = "done"
)

// NemesisEvent is the Value of a nemesis line.
type NemesisEvent struct {
	Event   string            `json:"event"`
	Targets []string          `json:"targets,omitempty"`
	Leaders map[string]string `json:"leaders,omitempty"` // FLeader: node → the leader it reports ("" = none)
	Detail  any               `json:"detail,omitempty"`  // fault-specific: grudge, signal, shape, …
	Error   string            `json:"error,omitempty"`   // the fault could not be applied (fully)
}
