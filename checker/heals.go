package checker

import (
	"math"
	"time"

	"github.com/raftcheck/harness/history"
)

// HealWindow is how long after a partition ends a loss of leadership is laid to the heal.
const HealWindow = 5 * time.Second

// PartitionHeals is what the ends of partitions did to the leader, read from the leader watch (a
// measured figure beside the liveness verdict, not part of it). Raft with pre-vote (hashicorp/raft
// v1.7, the agent's default) keeps a healthy leader when a cut-off server rejoins; without it
// (v1.5.0, Consul 1.20.1's) the rejoining server's higher term deposes the leader.
type PartitionHeals struct {
	// Heals are partition ends during the workload with a leader named by a majority of nodes,
	// itself among them, in the watch's observation before the end, and no other fault starting
	// within HealWindow after it.
	Heals int `json:"heals"`
	// Deposed is how many of them that leader stopped naming itself within HealWindow (a leader
	// that failed to answer the watch within its timeout counts too).
	Deposed int `json:"deposed"`
	// Unjudged are partition ends with no such leader before, another fault too soon after, or
	// the watch ending within the window.
	Unjudged int `json:"unjudged"`
	// BackS is, per deposing heal, the seconds from the partition's end to the first observation
	// in which every node named one leader again (-1: not seen while the watch ran).
	BackS []float64 `json:"leader_back_s,omitempty"`
}

// healWatch follows one partition end through the observations after it.
type healWatch struct {
	at      int64
	leader  string
	deposed bool
	done    bool
}

// observe applies one leader observation at time t (ns) to h.
func (h *healWatch) observe(obs map[string]string, t int64, out *PartitionHeals) {
	if h.done {
		return
	}
	if !h.deposed && obs[h.leader] != h.leader {
		h.deposed = true
	}
	if _, back := agreed(obs); h.deposed && back {
		h.done = true
		out.Heals++
		out.Deposed++
		out.BackS = append(out.BackS, round3(float64(t-h.at)/1e9))
	}
}

type observation struct {
	at      int64
	leaders map[string]string
}

// maxObservedBack bounds the observations kept to look back over a heal's undo (the watch records
// at most four a second; a partition's undo takes well under a second).
const maxObservedBack = 64

// undoNanos is how long the fault's reversal took, from its end line's detail (0 if not given).
func undoNanos(ev history.NemesisEvent) int64 {
	d, _ := ev.Detail.(map[string]any)
	s, _ := d[history.DetailUndoSeconds].(float64)
	if s < 0 {
		return 0
	}
	return int64(s * 1e9)
}

// partitionHeals measures PartitionHeals on ops; nil when no partition ended while the leader
// watch ran.
func partitionHeals(ops []history.Op) *PartitionHeals {
	var (
		out      PartitionHeals
		seen     bool
		watching bool
		last     map[string]string
		observed []observation // the latest leader observations, oldest first
		pending  []*healWatch
	)
	window := HealWindow.Nanoseconds()
	// settle closes what the passage of time decides by t: a heal not deposed within the window.
	settle := func(t int64) {
		for _, h := range pending {
			if !h.done && !h.deposed && t > h.at+window {
				h.done = true
				out.Heals++
			}
		}
	}
	for i := range ops {
		op := &ops[i]
		ev, ok := nemesisEvent(op)
		if !ok {
			continue
		}
		settle(op.Time)
		switch {
		case op.F == history.FPhase && ev.Event == history.PhaseWorkload:
			watching = true
		case op.F == history.FPhase && ev.Event == history.PhaseHeal:
			watching = false
			for _, h := range pending {
				if !h.done { // the watch stopped inside the window
					h.done = true
					out.Unjudged++
					if h.deposed {
						out.Unjudged--
						out.Heals++
						out.Deposed++
						out.BackS = append(out.BackS, -1)
					}
				}
			}
			pending = nil
		case op.F == history.FLeader && ev.Event == history.EventObserved:
			last = ev.Leaders
			observed = append(observed, observation{op.Time, last})
			if len(observed) > maxObservedBack {
				observed = observed[1:]
			}
			for _, h := range pending {
				h.observe(last, op.Time, &out)
			}
		case !watching || op.F == history.FPhase || op.F == history.FHeal || op.F == history.FLeader:
		case ev.Event == history.EventStart: // another fault inside a window: not the heal's doing
			for _, h := range pending {
				if !h.done && !h.deposed {
					h.done = true
					out.Unjudged++
				}
			}
		case op.F == "partition" && ev.Event == history.EventEnd:
			seen = true
			// The heal began when the rules started to go, undo_s before this line: the
			// leader is the one named before that, and what was observed since counts.
			at := op.Time - undoNanos(ev)
			before, since := last, []map[string]string(nil)
			for j := len(observed) - 1; j >= 0 && observed[j].at > at; j-- {
				since = append([]map[string]string{observed[j].leaders}, since...)
				before = nil
				if j > 0 {
					before = observed[j-1].leaders
				}
			}
			l := majorityLeader(before)
			if l == "" {
				out.Unjudged++
				break
			}
			h := &healWatch{at: at, leader: l}
			pending = append(pending, h)
			for _, obs := range since {
				h.observe(obs, op.Time, &out)
			}
		}
	}
	if !seen {
		return nil
	}
	return &out
}

// majorityLeader is the leader a strict majority of the observation's nodes name, itself among
// them; "" when there is none.
func majorityLeader(obs map[string]string) string {
	count := map[string]int{}
	for _, l := range obs {
		if l != "" {
			count[l]++
		}
	}
	for l, n := range count {
		if 2*n > len(obs) && obs[l] == l {
			return l
		}
	}
	return ""
}

// Leaderless measures, from the leader watch during the workload, how long the cluster had no
// leader a majority of nodes named (itself among them): with one server cut off, the others hold
// a majority and should elect one within a few election timeouts.
type Leaderless struct {
	TotalS float64 `json:"total_s"`
	MaxS   float64 `json:"max_s"`
	// MaxFromS is when the longest span began, in seconds since the workload began.
	MaxFromS float64 `json:"max_from_s"`
}

// leaderless measures Leaderless on ops; nil when the history has no leader watch.
func leaderless(ops []history.Op) *Leaderless {
	var (
		out      Leaderless
		seen     bool
		watching bool
		start    int64 // workload start
		from     int64 = -1
	)
	end := func(t int64) {
		if from < 0 {
			return
		}
		span := float64(t-from) / 1e9
		out.TotalS += span
		if span > out.MaxS {
			out.MaxS, out.MaxFromS = span, float64(from-start)/1e9
		}
		from = -1
	}
	for i := range ops {
		op := &ops[i]
		if !op.IsNemesis() || (op.F != history.FPhase && op.F != history.FLeader) {
			continue
		}
		ev, ok := nemesisEvent(op)
		if !ok {
			continue
		}
		switch {
		case op.F == history.FPhase && ev.Event == history.PhaseWorkload:
			watching, start = true, op.Time
		case op.F == history.FPhase && ev.Event == history.PhaseHeal && watching:
			end(op.Time)
			watching = false
		case op.F == history.FLeader && watching:
			seen = true
			if majorityLeader(ev.Leaders) == "" {
				if from < 0 {
					from = op.Time
				}
			} else {
				end(op.Time)
			}
		}
	}
	if !seen {
		return nil
	}
	out.TotalS, out.MaxS, out.MaxFromS = round3(out.TotalS), round3(out.MaxS), round3(out.MaxFromS)
	return &out
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
