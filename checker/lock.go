package checker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/raftcheck/harness/history"
)

// NameLock is the lock checker's name in results.json.
const NameLock = "lock"

// Lock checks the lock workload (name "lock"; the ops are described in docs/design.md, "The lock
// workload"). Every session acquires at most once, so a session is a holding. It judges:
//
//   - mutual exclusion, as a linearizable mutex: in the order Consul granted the holdings (the
//     lock key's ModifyIndex at acquisition), each acquisition must fit after the previous
//     holding ended. A holding ends by its release (no earlier than the release was invoked; a
//     release invoked after a proof that the holding had ended — a rolled-back fenced write, or
//     a lost notice whose read showed the key no longer held — is not the end) or by the
//     invalidation of its session (no earlier than its last fenced write that passed
//     check-session was invoked, and for a TTL-only session no earlier than TTLMultiplier × TTL
//     after its creation or last renew, unless a fault touched its node: Consul may then
//     deregister the node, which destroys its sessions), whichever can come first. Holdings
//     whose index is unknown are checked pairwise: two that certainly overlapped are a violation;
//   - lock-delay: after an invalidation the next acquisition comes no earlier than the session's
//     lock-delay after it;
//   - fencing: a fenced write that committed (Raft index W) under session S was not preceded, in
//     Raft order, by another session's acquisition after S's; the lock key read in the same
//     transaction names S;
//   - LockIndex only grows: in Raft order every observation of a lock key has a LockIndex no
//     smaller than the one before, and every acquisition a larger one;
//   - the final read of each resource shows a value some fenced write that did not roll back wrote;
//   - check-session refuses no holder: after a rolled-back fenced write, a consistent read of the
//     lock key (confirm) must not show it still held by the session with the acquisition's LockIndex.
//   - sessions expire: a committed fenced write shows its session alive when it was invoked, which
//     must be no later than TTLMultiplier × TTL (plus ExpirySlack) after the latest of the
//     session's creation, its last renew and the first sight of a new leadership term (a new
//     Consul leader, or the same one re-elected, re-arms every session's timer at a full period).
//     It is judged only on a history with the harness's leader watch (leader observations during
//     the workload).
//
// Consul documents that a holder cut off from the cluster believes it holds the lock until it
// notices; the overlap of such beliefs (from one holder's acquisition to the moment the previous
// holder noticed the loss or began its release) is measured in the details, and is not a
// violation: fenced writes are what must stay safe.
type Lock struct {
	// TTLMultiplier is how many TTLs a session outlives its last renew: 2 in Consul (a session
	// expires once 2×TTL passes without a renew; the documented contract is 1×TTL). 0 means 2.
	TTLMultiplier int
	// ExpirySlack is how long past its upper TTL bound a session may still be seen holding: the
	// leader's invalidation goes through Raft, and a new leader arms its timers only once it has
	// established itself, some time after the leader watch first saw it. 0 means DefaultExpirySlack.
	ExpirySlack time.Duration
}

// DefaultExpirySlack is Lock.ExpirySlack's default.
const DefaultExpirySlack = 5 * time.Second

// Name is "lock".
func (Lock) Name() string { return NameLock }

// Lock violation kinds, as counted in LockDetails.Violations.
const (
	LockMutex    = "mutual-exclusion" // two holdings certainly overlapped
	LockTTL      = "ttl"              // a TTL-only session lost its lock before its TTL bound
	LockDelayed  = "lock-delay"       // acquired sooner than the lock-delay after an invalidation
	LockFencing  = "fencing"          // a fenced write committed under a session that no longer held the lock
	LockIndexes  = "lock-index"       // LockIndex went backwards (or did not grow on a new acquisition)
	LockFinal    = "final-value"      // the resource's final value was never written by a committed or unknown fenced write
	LockRefused  = "check-session"    // a fenced write was rolled back while its session held the lock
	LockExpiry   = "expiry"           // a session still held its lock past its upper TTL bound (last renew or leader change + TTLMultiplier×TTL + slack)
	maxLockViols = 20
)

// LockHolding is one session's acquisition of a lock and what happened while it was held.
// Times are history times (ns); -1 means never.
type LockHolding struct {
	Lock    string          `json:"lock"`
	Session string          `json:"session"`
	Process history.Process `json:"process"` // the process that acquired
	Checks  string          `json:"checks"`  // node or none (TTL only); "" unknown
	Node    string          `json:"node"`    // the node the session was created on
	// NodeFault says a fault touched the session's node while its TTL bound ran: the node may then
	// have been deregistered (Consul's autopilot removes a failed server), which destroys every
	// session of the node, TTL-only ones too, so the TTL bound does not hold.
	NodeFault bool          `json:"node_fault"`
	TTL       time.Duration `json:"ttl"`
	LockDelay time.Duration `json:"lock_delay"`

	Created    int64 `json:"created"`     // session create invoked
	CreateDone int64 `json:"create_done"` // session create completed ok
	// RenewsDone are the completions of the ok renews, in history order; RenewUnknown says a
	// renew's outcome is unknown (it may have renewed at any later instant).
	RenewsDone    []int64 `json:"-"`
	RenewUnknown  bool    `json:"renew_unknown"`
	Renewed       int64   `json:"renewed"`        // last ok renew invoked, or Created
	AcquireInvoke int64   `json:"acquire_invoke"` // acquire invoked
	AcquireOK     int64   `json:"acquire_ok"`     // acquire completed ok
	AcquireOp     int64   `json:"acquire_op"`     // history index of that completion
	Index         uint64  `json:"index"`          // the lock key's ModifyIndex at acquisition (0 unknown)
	LockIndex     uint64  `json:"lock_index"`     // its LockIndex then (0 unknown)
	Evidence      int64   `json:"evidence"`       // the last ok fenced write's invoke (held at some instant after it)
	Lost          int64   `json:"lost"`           // api.Lock's lost notification noticed
	Ended         int64   `json:"ended"`          // proof that the holding had ended: a rolled-back fenced write or a lost notice whose read showed another holder
	EndedOp       int64   `json:"ended_op"`       // history index of that proof's completion
	// Refused is the history index of a confirm op that found the key still held by the session,
	// with the acquisition's LockIndex, after a fenced write was rolled back (-1: none).
	Refused int64 `json:"refused"`
	// endedByRollback says Ended is a rolled-back fenced write (a confirm may void it).
	endedByRollback bool
	Release         int64 `json:"release"`      // release invoked
	ReleaseDone     int64 `json:"release_done"` // release completed (any outcome)
	Destroy         int64 `json:"destroy"`      // destroy invoked

	Writes []FencedWrite `json:"-"`
}

// FencedWrite is one fenced-write of a holding.
type FencedWrite struct {
	Invoke, Done int64
	Type         history.Type
	RolledBack   bool   // a fail whose error says Consul rolled the transaction back
	OpIndex      int64  // history index of the completion
	Index        uint64 // commit index (ok only)
	Holder       string // the session the lock key named in the same transaction (ok only)
	LockIndex    uint64
	Value        int64
}

// BelieveEnd is when the holder stopped believing it held the lock: it noticed the loss, began
// to release, or destroyed its session (an abandoning holder lets go without a release); end
// (the history's last time) if none.
func (h *LockHolding) BelieveEnd(end int64) int64 {
	e := end
	for _, t := range []int64{h.Lost, h.Release, h.Destroy} {
		if t >= 0 {
			e = min(e, t)
		}
	}
	return max(e, h.AcquireOK)
}

// LockAnalysis is the lock workload's history folded into holdings, per lock.
type LockAnalysis struct {
	Holdings        map[string][]*LockHolding // by lock, ordered by AcquireOK
	UnknownAcquires int                       // acquires with an unknown outcome (may have held, never used)
	Finals          []lockObservation
	Observations    []lockObservation                 // acquisitions and fenced writes with their Raft index
	WriteValues     map[string]map[int64]history.Type // lock → value → the fenced write's outcome
	End             int64
	BadOps          []string // ops that could not be decoded
	// LeaderWatch is the leader watch's span of the workload (the first leader observation after
	// the workload began, to the heal phase or the end); From < 0 when the history has no watch.
	LeaderWatch struct{ From, To int64 }
	// NewLeaders are the times the watch first saw a leader that had not named itself in the
	// observation before: a new leadership term (a new Consul leader re-arms every session's TTL
	// timer), of another server or of the same one after it stepped down.
	NewLeaders []int64
}

type lockObservation struct {
	Lock      string
	Index     uint64 // Raft index the observation is as of
	LockIndex uint64
	Holder    string
	Value     *int64
	Op        *history.Op
	Acquire   bool
}

// lockValue mirrors workloads.LockValue (the checker cannot import workloads).
type lockValue struct {
	Session     string `json:"session"`
	Checks      string `json:"checks"`
	TTLMillis   int64  `json:"ttl_ms"`
	DelayMillis int64  `json:"lock_delay_ms"`
	Value       *int64 `json:"value"`
	Index       uint64 `json:"index"`
	LockIndex   uint64 `json:"lock_index"`
	Holder      string `json:"holder"`
	Ended       bool   `json:"ended"`
}

// AnalyzeLocks folds a lock workload history into holdings. It is pure and keeps pointers into ops.
func AnalyzeLocks(ops []history.Op) *LockAnalysis {
	a := &LockAnalysis{Holdings: map[string][]*LockHolding{}, WriteValues: map[string]map[int64]history.Type{}}
	a.LeaderWatch.From, a.LeaderWatch.To = -1, -1
	workload := false
	var lastLeaders map[string]string
	sessions := map[string]*LockHolding{}
	session := func(id, lock string, p history.Process) *LockHolding {
		h := sessions[id]
		if h == nil {
			h = &LockHolding{Lock: lock, Session: id, Process: p, Created: -1, CreateDone: -1, Renewed: -1, AcquireInvoke: -1, AcquireOK: -1,
				Evidence: -1, Lost: -1, Ended: -1, EndedOp: -1, Refused: -1, Release: -1, ReleaseDone: -1, Destroy: -1}
			sessions[id] = h
		}
		return h
	}
	decode := func(op *history.Op) (lockValue, bool) {
		var v lockValue
		if len(op.Value) == 0 || string(op.Value) == "null" {
			return v, true
		}
		if err := json.Unmarshal(op.Value, &v); err != nil {
			if len(a.BadOps) < 10 {
				a.BadOps = append(a.BadOps, fmt.Sprintf("index %d: %s value %s: %v", op.Index, op.F, history.Truncate(string(op.Value), 60), err))
			}
			return v, false
		}
		return v, true
	}
	pending := map[history.Process]*history.Op{}
	for i := range ops {
		op := &ops[i]
		a.End = max(a.End, op.Time)
		if op.IsNemesis() {
			a.watchLeaders(op, &workload, &lastLeaders)
			continue
		}
		if op.Type == history.Invoke {
			pending[op.Process] = op
			if op.F == "release" || op.F == "destroy" {
				if v, ok := decode(op); ok && v.Session != "" {
					h := session(v.Session, op.Key, op.Process)
					if op.F == "release" && h.Release < 0 {
						h.Release = op.Time
					}
					if op.F == "destroy" && h.Destroy < 0 {
						h.Destroy = op.Time
					}
				}
			}
			continue
		}
		inv := pending[op.Process]
		delete(pending, op.Process)
		if inv == nil || inv.F != op.F {
			continue
		}
		iv, ok1 := decode(inv)
		cv, ok2 := decode(op)
		if !ok1 || !ok2 {
			continue
		}
		switch op.F {
		case "session":
			if op.Type == history.OK && cv.Session != "" {
				h := session(cv.Session, op.Key, op.Process)
				h.Checks, h.TTL, h.LockDelay = cv.Checks, time.Duration(cv.TTLMillis)*time.Millisecond, time.Duration(cv.DelayMillis)*time.Millisecond
				h.Node = op.Node
				h.Created, h.Renewed, h.CreateDone = inv.Time, inv.Time, op.Time
			}
		case "acquire":
			if iv.Session == "" {
				continue
			}
			h := session(iv.Session, op.Key, op.Process)
			switch op.Type {
			case history.OK:
				h.Lock, h.Process, h.AcquireInvoke, h.AcquireOK, h.AcquireOp = op.Key, op.Process, inv.Time, op.Time, op.Index
				h.Index, h.LockIndex = cv.Index, cv.LockIndex
				a.Holdings[op.Key] = append(a.Holdings[op.Key], h)
				if cv.Index > 0 {
					a.Observations = append(a.Observations, lockObservation{Lock: op.Key, Index: cv.Index, LockIndex: cv.LockIndex, Holder: iv.Session, Op: op, Acquire: true})
				}
			case history.Info:
				a.UnknownAcquires++
			}
		case "fenced-write":
			if iv.Session == "" || iv.Value == nil {
				continue
			}
			h := session(iv.Session, op.Key, op.Process)
			w := FencedWrite{Invoke: inv.Time, Done: op.Time, Type: op.Type, OpIndex: op.Index, Value: *iv.Value,
				RolledBack: op.Type == history.Fail && strings.HasPrefix(op.Error, "rolled back")}
			if a.WriteValues[op.Key] == nil {
				a.WriteValues[op.Key] = map[int64]history.Type{}
			}
			a.WriteValues[op.Key][*iv.Value] = op.Type
			if op.Type == history.OK {
				w.Index, w.Holder, w.LockIndex = cv.Index, cv.Holder, cv.LockIndex
				h.Evidence = max(h.Evidence, inv.Time)
				if cv.Index > 0 && cv.LockIndex > 0 {
					a.Observations = append(a.Observations, lockObservation{Lock: op.Key, Index: cv.Index, LockIndex: cv.LockIndex, Holder: cv.Holder, Op: op})
				}
			}
			h.Writes = append(h.Writes, w)
			if w.RolledBack && (h.Ended < 0 || op.Time < h.Ended) {
				h.Ended, h.EndedOp, h.endedByRollback = op.Time, op.Index, true
			}
		case "renew":
			if iv.Session != "" {
				h := session(iv.Session, op.Key, op.Process)
				switch op.Type {
				case history.OK:
					h.Renewed = max(h.Renewed, inv.Time)
					h.RenewsDone = append(h.RenewsDone, op.Time)
				case history.Info:
					h.RenewUnknown = true
				}
			}
		case "confirm":
			if iv.Session == "" {
				continue
			}
			h := session(iv.Session, op.Key, op.Process)
			if op.Type == history.OK && cv.Holder == iv.Session && h.LockIndex > 0 && cv.LockIndex == h.LockIndex && h.Refused < 0 {
				// The rollback did not end the holding: it is no proof of an end, and is itself a violation.
				h.Refused = op.Index
				if h.endedByRollback {
					h.Ended, h.EndedOp, h.endedByRollback = -1, -1, false
				}
			}
		case "lost":
			if iv.Session != "" {
				h := session(iv.Session, op.Key, op.Process)
				if h.Lost < 0 {
					h.Lost = op.Time
				}
				if cv.Ended && (h.Ended < 0 || op.Time < h.Ended) {
					h.Ended, h.EndedOp, h.endedByRollback = op.Time, op.Index, false
				}
			}
		case "release":
			if iv.Session != "" {
				session(iv.Session, op.Key, op.Process).ReleaseDone = op.Time
			}
		case "read":
			if op.Type == history.OK {
				a.Finals = append(a.Finals, lockObservation{Lock: op.Key, Index: cv.Index, LockIndex: cv.LockIndex, Holder: cv.Holder, Value: cv.Value, Op: op})
			}
		}
	}
	if a.LeaderWatch.From >= 0 && a.LeaderWatch.To < 0 {
		a.LeaderWatch.To = a.End
	}
	windows := FaultWindows(ops)
	for _, hs := range a.Holdings {
		slices.SortStableFunc(hs, func(x, y *LockHolding) int { return cmp.Compare(x.AcquireOK, y.AcquireOK) })
		for _, h := range hs {
			until := max(h.Created, h.Renewed) + 4*int64(max(h.TTL, time.Second)) // past any TTL bound checked
			for _, w := range windows {
				if w.End >= h.Created && w.Start <= until && (len(w.Targets) == 0 || slices.Contains(w.Targets, h.Node)) {
					h.NodeFault = true
				}
			}
		}
	}
	return a
}

// watchLeaders follows the workload phase and the leader watch's observations in it (see
// LockAnalysis.LeaderWatch and NewLeaders).
func (a *LockAnalysis) watchLeaders(op *history.Op, workload *bool, last *map[string]string) {
	ev, ok := nemesisEvent(op)
	if !ok {
		return
	}
	switch {
	case op.F == history.FPhase && ev.Event == history.PhaseWorkload:
		*workload = true
	case op.F == history.FPhase && ev.Event == history.PhaseHeal && *workload:
		*workload = false
		if a.LeaderWatch.From >= 0 && a.LeaderWatch.To < 0 {
			a.LeaderWatch.To = op.Time
		}
	case op.F == history.FLeader && ev.Event == history.EventObserved && *workload:
		if a.LeaderWatch.From < 0 {
			a.LeaderWatch.From = op.Time
		}
		for _, l := range ev.Leaders {
			// The first observation is the leader the workload began with; after it, a leader named
			// now that did not name itself in the observation before holds a new term: another
			// server, or the same one re-elected (on Consul 1.20.1, whose raft has no pre-vote, a
			// healed server's higher term makes the leader step down and win again).
			if *last != nil && l != "" && (*last)[l] != l {
				a.NewLeaders = append(a.NewLeaders, op.Time)
				break
			}
		}
		*last = ev.Leaders
	}
}

// LockDetails is Result.Details of Lock.
type LockDetails struct {
	Locks           int            `json:"locks"`
	Holdings        int            `json:"holdings"`
	Unindexed       int            `json:"holdings_without_index"` // checked pairwise only
	UnknownAcquires int            `json:"unknown_acquires"`
	FencedOK        int            `json:"fenced_writes_ok"`
	FencedRejected  int            `json:"fenced_writes_rolled_back"` // rolled back: check-session failed
	FencedFailed    int            `json:"fenced_writes_failed"`      // other certain failures (connection refused, 4xx)
	FencedUnknown   int            `json:"fenced_writes_unknown"`
	Lost            int            `json:"lost_notifications"`
	Overlap         LockOverlap    `json:"overlap"`
	PerLock         map[string]int `json:"holdings_per_lock"`
	Violations      map[string]int `json:"violations,omitempty"`
	Examples        []string       `json:"examples,omitempty"`
	TTLMultiplier   int            `json:"ttl_multiplier"`
	Expiry          LockExpiryInfo `json:"expiry"`
}

// LockExpiryInfo is what the upper TTL bound was judged on: a session must be gone once
// TTLMultiplier×TTL (plus the slack) has passed since the latest of its creation, its last renew
// and the first sight of a new leadership term; the longest such silence a session was seen to survive
// (a committed fenced write invoked that long after its anchor) is measured.
type LockExpiryInfo struct {
	Checked    bool    `json:"checked"`
	Why        string  `json:"why_not,omitempty"`
	NewLeaders int     `json:"new_leaders_seen"`
	SlackS     float64 `json:"slack_s"`
	// MaxSilentS is the longest a session was seen holding (a committed fenced write's invoke)
	// after its anchor.
	MaxSilentS float64 `json:"max_silent_s"`
}

// LockOverlap measures how long two holders both believed they held one lock: from the later
// acquisition to the moment the earlier holder noticed the loss or began its release.
type LockOverlap struct {
	Count          int     `json:"count"`
	TotalSeconds   float64 `json:"total_s"`
	MaxSeconds     float64 `json:"max_s"`
	WritesOK       int     `json:"writes_ok_during"`      // fenced writes of the stale holder invoked during an overlap that committed
	WritesRejected int     `json:"writes_failed_during"`  // … that certainly did not commit (rolled back or refused)
	WritesUnknown  int     `json:"writes_unknown_during"` // … whose outcome is unknown
}

type lockViolation struct {
	kind string
	op   *history.Op // may be nil
	time int64
	key  string
	desc string
}

// Check implements Checker.
func (c Lock) Check(_ context.Context, ops []history.Op) Result {
	mult := c.TTLMultiplier
	if mult <= 0 {
		mult = 2
	}
	slack := c.ExpirySlack
	if slack <= 0 {
		slack = DefaultExpirySlack
	}
	a := AnalyzeLocks(ops)
	d := LockDetails{Locks: len(a.Holdings), UnknownAcquires: a.UnknownAcquires, PerLock: map[string]int{}, TTLMultiplier: mult}
	d.Expiry = LockExpiryInfo{Checked: a.LeaderWatch.From >= 0, NewLeaders: len(a.NewLeaders), SlackS: slack.Seconds()}
	if !d.Expiry.Checked {
		d.Expiry.Why = "the history has no leader watch (no leader observations during the workload): a new leader's re-armed timers cannot be told from a session that outlived its TTL"
	}
	var viols []lockViolation
	add := func(v lockViolation) { viols = append(viols, v) }
	byOp := map[int64]*history.Op{}
	for i := range ops {
		byOp[ops[i].Index] = &ops[i]
	}
	locks := make([]string, 0, len(a.Holdings))
	for l := range a.Holdings {
		locks = append(locks, l)
	}
	slices.Sort(locks)
	for _, l := range locks {
		hs := a.Holdings[l]
		d.Holdings += len(hs)
		d.PerLock[l] = len(hs)
		for _, h := range hs {
			if h.Lost >= 0 {
				d.Lost++
			}
			for _, w := range h.Writes {
				switch w.Type {
				case history.OK:
					d.FencedOK++
				case history.Fail:
					if w.RolledBack {
						d.FencedRejected++
					} else {
						d.FencedFailed++
					}
				default:
					d.FencedUnknown++
				}
			}
		}
		for _, h := range hs {
			if h.Refused >= 0 {
				add(lockViolation{kind: LockRefused, op: byOp[h.Refused], key: l,
					desc: fmt.Sprintf("a fenced write of session %s (process %d) was rolled back, but a consistent read after it shows lock %s still held by the session with its acquisition's LockIndex %d: check-session refused the holder",
						short(h.Session), h.Process, l, h.LockIndex)})
			}
		}
		lockChain(l, hs, mult, byOp, &d, add)
		lockEndedEarly(l, hs, mult, byOp, add)
		lockOutlived(l, hs, a, mult, slack, &d.Expiry, byOp, add)
		lockFencing(l, hs, byOp, add)
		lockOverlap(hs, a.End, &d.Overlap)
	}
	lockIndexes(a, add)
	for _, f := range a.Finals {
		if f.Value == nil {
			continue
		}
		if t, ok := a.WriteValues[f.Lock][*f.Value]; !ok || t == history.Fail {
			why := "no fenced write wrote it"
			if ok {
				why = "its fenced write was rolled back"
			}
			add(lockViolation{kind: LockFinal, op: f.Op, key: f.Lock, desc: fmt.Sprintf("final read of %s's resource shows %d, but %s", f.Lock, *f.Value, why)})
		}
	}
	d.Overlap.TotalSeconds = math.Round(d.Overlap.TotalSeconds*1000) / 1000
	d.Overlap.MaxSeconds = math.Round(d.Overlap.MaxSeconds*1000) / 1000
	res := Result{Valid: Valid, Details: &d}
	if len(a.BadOps) > 0 {
		res.Valid, res.Error = Unknown, "undecodable lock ops: "+a.BadOps[0]
		return res
	}
	if d.Holdings == 0 {
		res.Valid, res.Error = Unknown, "no lock was ever acquired: nothing to judge"
		return res
	}
	if len(viols) == 0 {
		return res
	}
	for i := range viols {
		if viols[i].op != nil && viols[i].time == 0 {
			viols[i].time = viols[i].op.Time
		}
	}
	slices.SortStableFunc(viols, func(x, y lockViolation) int { return cmp.Compare(x.time, y.time) })
	d.Violations = map[string]int{}
	for _, v := range viols {
		d.Violations[v.kind]++
		if len(d.Examples) < maxLockViols {
			d.Examples = append(d.Examples, v.kind+": "+v.desc)
		}
	}
	first := viols[0]
	res.Valid = Invalid
	res.Error = fmt.Sprintf("%d lock violations (%s); first: %s", len(viols), kindsText(d.Violations), first.desc)
	an := &Anomaly{Time: first.time, Key: first.key, Description: first.kind + ": " + first.desc, Index: -1}
	if first.op != nil {
		an.Index, an.Process, an.Time = first.op.Index, first.op.Process, first.op.Time
	}
	res.FirstAnomaly = an
	return res
}

func kindsText(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	return s
}

const never = math.MaxInt64

// endBounds is the earliest a holding can have ended, when its start is placed at p: by its
// release (rel; never if no release was invoked) or by an invalidation of its session (inv, to
// which the lock-delay is added for the next acquisition). ttl is the TTL bound of a TTL-only
// session that was neither released nor destroyed (never for other sessions).
func endBounds(h *LockHolding, p int64, mult int) (rel, inv, ttl int64) {
	rel = never
	if h.Release >= 0 && (h.Ended < 0 || h.Release < h.Ended) {
		rel = max(p, h.Release) // a release after a proof that the holding had ended did not end it
	}
	ttl = never
	invalid := max(p, h.Evidence) // a node check may fail at any instant after the last proof
	if h.Checks == "none" && h.TTL > 0 && !h.NodeFault {
		ttl = max(h.Created, h.Renewed) + int64(mult)*int64(h.TTL)
		bound := ttl
		if h.Destroy >= 0 && (h.Ended < 0 || h.Destroy < h.Ended) {
			bound = min(bound, h.Destroy) // a destroy invalidates at once (unless the holding had ended before it)
		}
		invalid = max(invalid, bound)
	}
	return rel, invalid, ttl
}

func add64(a, b int64) int64 {
	if a == never {
		return never
	}
	return a + b
}

// lockChain checks the holdings Consul ordered (by acquisition index) as a linearizable mutex
// with lock-delay: greedily placing every acquisition as early as it can go is optimal for a
// fixed order. Holdings without an index are checked pairwise against every other holding.
func lockChain(l string, hs []*LockHolding, mult int, byOp map[int64]*history.Op, d *LockDetails, add func(lockViolation)) {
	var chain, loose []*LockHolding
	for _, h := range hs {
		if h.Index > 0 {
			chain = append(chain, h)
		} else {
			loose = append(loose, h)
		}
	}
	d.Unindexed += len(loose)
	slices.SortStableFunc(chain, func(x, y *LockHolding) int { return cmp.Compare(x.Index, y.Index) })
	var prev *LockHolding
	var prevP int64
	next := int64(math.MinInt64) // earliest instant the next acquisition may take effect
	for _, h := range chain {
		p := max(h.AcquireInvoke, next)
		if prev != nil && p > h.AcquireOK {
			add(chainViolation(l, prev, prevP, h, mult, byOp))
			p = h.AcquireOK // report once, then carry on from what happened
		}
		rel, inv, _ := endBounds(h, p, mult)
		next = min(rel, add64(inv, int64(h.LockDelay)))
		prev, prevP = h, p
	}
	// A loose holding is checked against every other: a violation when neither order fits.
	before := func(x, y *LockHolding, delay bool) bool { // x can end (and its lock-delay pass) before y's acquisition
		r, i, _ := endBounds(x, x.AcquireInvoke, mult)
		if delay {
			i = add64(i, int64(x.LockDelay))
		}
		return y.AcquireOK >= min(r, i)
	}
	for _, x := range loose {
		for _, y := range hs {
			if x == y || y.Index == 0 && y.AcquireOK < x.AcquireOK {
				continue // each loose pair once
			}
			if before(x, y, true) || before(y, x, true) {
				continue
			}
			kind, how := LockDelayed, "within the lock-delay of each other"
			if !before(x, y, false) && !before(y, x, false) {
				kind, how = LockMutex, "at once"
			}
			add(lockViolation{kind: kind, op: byOp[y.AcquireOp], key: l, time: max(x.AcquireOK, y.AcquireOK),
				desc: fmt.Sprintf("lock %s: sessions %s (process %d) and %s (process %d) both held it %s", l, short(x.Session), x.Process, short(y.Session), y.Process, how)})
		}
	}
}

// lockEndedEarly: a TTL-only session whose holder saw the holding end (a rolled-back fenced write,
// or a lost notice whose read showed the key no longer held) before its TTL bound, neither
// released nor destroyed before then and with no fault on its node, was invalidated too early,
// whoever acquired next.
func lockEndedEarly(l string, hs []*LockHolding, mult int, byOp map[int64]*history.Op, add func(lockViolation)) {
	for _, h := range hs {
		if h.Ended < 0 || h.Checks != "none" || h.TTL <= 0 || h.NodeFault ||
			h.Release >= 0 && h.Release < h.Ended || h.Destroy >= 0 && h.Destroy < h.Ended {
			continue
		}
		if ttl := max(h.Created, h.Renewed) + int64(mult)*int64(h.TTL); h.Ended < ttl {
			add(lockViolation{kind: LockTTL, key: l, time: h.Ended, op: byOp[h.EndedOp],
				desc: fmt.Sprintf("session %s (process %d, TTL-only, TTL %s, last renewed at %.3f s) no longer held lock %s at %.3f s, before its TTL bound %.3f s (%d×TTL), without a release or destroy",
					short(h.Session), h.Process, h.TTL, float64(max(h.Created, h.Renewed))/1e9, l, float64(h.Ended)/1e9, float64(ttl)/1e9, mult)})
		}
	}
}

// lockOutlived: a committed fenced write proves its session still existed when it was invoked.
// Consul invalidates a session once TTLMultiplier×TTL passes without a renew, and a new leader
// gives every session a full period when it takes over; so a session seen holding later than
// that after the latest of its creation, its last renew and the first sight of a new leadership term
// (plus the slack) outlived its TTL. Only writes inside the leader watch are judged, and not
// those of a session with a renew of unknown outcome.
func lockOutlived(l string, hs []*LockHolding, a *LockAnalysis, mult int, slack time.Duration, e *LockExpiryInfo, byOp map[int64]*history.Op, add func(lockViolation)) {
	if !e.Checked {
		return
	}
	latest := func(ts []int64, t int64) int64 { // the last of ts (ordered) at or before t, or -1
		i, _ := slices.BinarySearch(ts, t+1)
		if i == 0 {
			return -1
		}
		return ts[i-1]
	}
	for _, h := range hs {
		if h.TTL <= 0 || h.CreateDone < 0 || h.RenewUnknown {
			continue
		}
		for _, w := range h.Writes {
			if w.Type != history.OK || w.Invoke < a.LeaderWatch.From || w.Invoke > a.LeaderWatch.To {
				continue
			}
			renew, term := latest(h.RenewsDone, w.Invoke), latest(a.NewLeaders, w.Invoke)
			anchor := max(h.CreateDone, renew, term)
			silent := w.Invoke - anchor
			e.MaxSilentS = max(e.MaxSilentS, math.Round(float64(silent)/1e6)/1e3)
			if bound := int64(mult)*int64(h.TTL) + int64(slack); silent > bound {
				what := "its creation"
				switch anchor {
				case term:
					what = "the first sight of a new leadership term"
				case renew:
					what = "its last renew"
				}
				add(lockViolation{kind: LockExpiry, op: byOp[w.OpIndex], key: l,
					desc: fmt.Sprintf("fenced write %d of session %s (process %d, TTL %s) invoked at %.3f s committed: the session still held lock %s %.3f s after %s (at %.3f s), past its bound of %d×TTL + %s",
						w.Value, short(h.Session), h.Process, h.TTL, float64(w.Invoke)/1e9, l, float64(silent)/1e9, what, float64(anchor)/1e9, mult, slack)})
				break // one per holding
			}
		}
	}
}

// chainViolation explains why h could not have acquired after prev: which bound it broke.
func chainViolation(l string, prev *LockHolding, prevP int64, h *LockHolding, mult int, byOp map[int64]*history.Op) lockViolation {
	rel, inv, ttl := endBounds(prev, prevP, mult)
	v := lockViolation{key: l, op: byOp[h.AcquireOp], time: h.AcquireOK}
	at := func(t int64) string { return fmt.Sprintf("%.3f s", float64(t)/1e9) }
	who := fmt.Sprintf("session %s (process %d, index %d) acquired lock %s at %s", short(h.Session), h.Process, h.Index, l, at(h.AcquireOK))
	switch {
	case h.AcquireOK < min(rel, max(prevP, prev.Evidence)):
		v.kind = LockMutex
		v.desc = fmt.Sprintf("%s while session %s (process %d, index %d) still held it: its fenced write invoked at %s committed",
			who, short(prev.Session), prev.Process, prev.Index, at(prev.Evidence))
		if prev.Evidence < 0 || prev.Evidence <= prevP {
			v.desc = fmt.Sprintf("%s before session %s (process %d, index %d) acquired it", who, short(prev.Session), prev.Process, prev.Index)
		}
	case ttl != never && h.AcquireOK < min(rel, inv):
		v.kind = LockTTL
		v.desc = fmt.Sprintf("%s, but session %s (process %d) was TTL-only (TTL %s), last renewed at %s, never released: it cannot expire before %s (%d×TTL)",
			who, short(prev.Session), prev.Process, prev.TTL, at(max(prev.Created, prev.Renewed)), at(ttl), mult)
	default:
		v.kind = LockDelayed
		v.desc = fmt.Sprintf("%s, sooner than session %s's lock-delay of %s after it could first have been invalidated (%s; release invoked: %s)",
			who, short(prev.Session), prev.LockDelay, at(inv), invokedAt(prev.Release))
	}
	return v
}

func invokedAt(t int64) string {
	if t < 0 {
		return "never"
	}
	return fmt.Sprintf("%.3f s", float64(t)/1e9)
}

// lockFencing checks every committed fenced write against the acquisitions in Raft order.
func lockFencing(l string, hs []*LockHolding, byOp map[int64]*history.Op, add func(lockViolation)) {
	for _, h := range hs {
		for _, w := range h.Writes {
			if w.Type != history.OK {
				continue
			}
			op := byOp[w.OpIndex]
			// The transaction read the lock key when LockIndex is known (every key that was ever
			// locked has one); check-session passed only if the key named this session then.
			if (w.Holder != "" || w.LockIndex > 0) && w.Holder != h.Session {
				names := "names session " + short(w.Holder)
				if w.Holder == "" {
					names = "names no session (the lock was free)"
				}
				add(lockViolation{kind: LockFencing, op: op, key: l, desc: fmt.Sprintf("fenced write %d of session %s committed at index %d, but the lock key read in the same transaction %s",
					w.Value, short(h.Session), w.Index, names)})
				continue
			}
			if h.Index == 0 || w.Index == 0 {
				continue
			}
			if w.Index < h.Index {
				add(lockViolation{kind: LockFencing, op: op, key: l, desc: fmt.Sprintf("fenced write %d of session %s committed at index %d, before its acquisition at index %d",
					w.Value, short(h.Session), w.Index, h.Index)})
				continue
			}
			for _, o := range hs {
				if o != h && o.Index > h.Index && o.Index < w.Index {
					add(lockViolation{kind: LockFencing, op: op, key: l, desc: fmt.Sprintf("fenced write %d of session %s (process %d) committed at index %d, after session %s (process %d) acquired lock %s at index %d",
						w.Value, short(h.Session), h.Process, w.Index, short(o.Session), o.Process, l, o.Index)})
					break
				}
			}
		}
	}
}

// lockIndexes checks that LockIndex never decreases in Raft order and grows with each
// acquisition.
func lockIndexes(a *LockAnalysis, add func(lockViolation)) {
	obs := append(slices.Clone(a.Observations), a.Finals...)
	slices.SortStableFunc(obs, func(x, y lockObservation) int {
		return cmp.Or(cmp.Compare(x.Lock, y.Lock), cmp.Compare(x.Index, y.Index))
	})
	for i := 1; i < len(obs); i++ {
		p, o := obs[i-1], obs[i]
		if p.Lock != o.Lock || o.Index == 0 || p.Index == 0 {
			continue
		}
		switch {
		case o.LockIndex < p.LockIndex:
			add(lockViolation{kind: LockIndexes, op: o.Op, key: o.Lock, desc: fmt.Sprintf("lock %s: LockIndex %d at index %d after %d at index %d", o.Lock, o.LockIndex, o.Index, p.LockIndex, p.Index)})
		case o.Acquire && p.Index < o.Index && o.LockIndex <= p.LockIndex && p.Holder != o.Holder:
			add(lockViolation{kind: LockIndexes, op: o.Op, key: o.Lock, desc: fmt.Sprintf("lock %s: acquisition by session %s at index %d has LockIndex %d, not above the %d seen at index %d", o.Lock, short(o.Holder), o.Index, o.LockIndex, p.LockIndex, p.Index)})
		}
	}
}

// lockOverlap measures the beliefs that overlapped (see LockOverlap).
func lockOverlap(hs []*LockHolding, end int64, o *LockOverlap) {
	for i, x := range hs {
		xe := x.BelieveEnd(end)
		for _, y := range hs[i+1:] {
			if y.AcquireOK >= xe {
				continue
			}
			span := min(xe, y.BelieveEnd(end)) - y.AcquireOK
			if span <= 0 {
				continue
			}
			o.Count++
			s := float64(span) / 1e9
			o.TotalSeconds += s
			o.MaxSeconds = max(o.MaxSeconds, s)
			for _, w := range x.Writes {
				if w.Invoke < y.AcquireOK || w.Invoke >= xe {
					continue
				}
				switch w.Type {
				case history.OK:
					o.WritesOK++
				case history.Fail:
					o.WritesRejected++
				default:
					o.WritesUnknown++
				}
			}
		}
	}
}

// short is a session ID's first 8 characters, enough to tell sessions apart in a message.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
