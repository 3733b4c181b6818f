package harness

import (
	"context"
	"maps"
	"time"

	"github.com/raftcheck/harness/history"
)

// Leader watch: while the workload runs, every node is asked for its leader a few times a second
// and each change of the answers is recorded (a leader event, observed). Checkers that depend on
// when leadership moved read it: a new Consul leader re-arms every session's TTL timer, so the
// lock checker's bound on a session's life starts again at the first observation of a new term (a
// leader named that had not named itself in the observation before).
const (
	leaderWatchEvery   = 250 * time.Millisecond
	leaderWatchTimeout = time.Second // a paused or cut-off node answers "" after this
)

// leaderSource is what the watch needs of a cluster.
type leaderSource interface {
	Leaders(ctx context.Context) map[string]string
}

// watchLeaders records the nodes' leaders at once and then at every change, until ctx is done.
func watchLeaders(ctx context.Context, src leaderSource, rec *history.Recorder) {
	var last map[string]string
	for {
		pctx, cancel := context.WithTimeout(ctx, leaderWatchTimeout)
		now := src.Leaders(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if last == nil || !maps.Equal(now, last) {
			rec.Nemesis(history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: now})
			last = now
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(leaderWatchEvery):
		}
	}
}
