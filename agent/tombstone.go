package agent

import (
	"time"
)

// tombstoneGC is the leader's tombstone reaper, after Consul's TombstoneGC. Every granularity
// tick it notes the highest tombstone index it has seen; a note TombstoneTTL old names tombstones
// that have existed at least that long, and the leader reaps them all through Raft in one entry.
// A new leader starts with no notes, so tombstones get a full TTL from its first tick.
type tombstoneGC struct {
	marks    []tombMark
	reapedTo uint64
}

type tombMark struct {
	at    time.Time
	index uint64
}

// tick notes the current highest tombstone index and returns the index to reap up to (0: none).
func (g *tombstoneGC) tick(now time.Time, maxIndex uint64, ttl time.Duration) uint64 {
	if maxIndex > g.reapedTo && (len(g.marks) == 0 || g.marks[len(g.marks)-1].index < maxIndex) {
		g.marks = append(g.marks, tombMark{at: now, index: maxIndex})
	}
	var reap uint64
	for len(g.marks) > 0 && now.Sub(g.marks[0].at) >= ttl {
		reap = g.marks[0].index
		g.marks = g.marks[1:]
	}
	if reap <= g.reapedTo {
		return 0
	}
	return reap
}

// reapTombstones runs one tick of the leader's tombstone GC.
func (a *Agent) reapTombstones(g *tombstoneGC) {
	n, maxIndex := a.fsm.Tombstones()
	if n == 0 {
		return
	}
	idx := g.tick(time.Now(), maxIndex, a.cfg.TombstoneTTL)
	if idx == 0 {
		return
	}
	if err := a.await(a.raft.Apply(encodeCommand(command{Op: "tombstone-reap", ReapIndex: idx}), a.cfg.HoldTimeout)); err != nil {
		a.logger.Printf("[WARN] agent: reap tombstones up to index %d: %v", idx, err)
		return
	}
	g.reapedTo = idx
	a.logger.Printf("[DEBUG] agent: reaped tombstones up to index %d", idx)
}
