package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftcheck/harness/history"
)

// scriptedLeaders answers each poll with the next map of its script, then the last one forever;
// the first poll past the script calls exhausted, so a test ends when the script has been seen
// rather than after a guess at how long that takes.
type scriptedLeaders struct {
	mu        sync.Mutex
	script    []map[string]string
	polls     int
	exhausted func()
}

func (s *scriptedLeaders) Leaders(context.Context) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.polls, len(s.script)-1)
	s.polls++
	if s.polls > len(s.script) && s.exhausted != nil {
		s.exhausted()
	}
	return s.script[i]
}

func TestWatchLeadersRecordsEachChange(t *testing.T) {
	a := map[string]string{"n1": "n1", "n2": "n1"}
	b := map[string]string{"n1": "", "n2": "n2"}
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf)
	// The timeout only guards a hang: the source cancels once its script is exhausted.
	const guard = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	src := &scriptedLeaders{script: []map[string]string{a, a, b, b, a}, exhausted: cancel}
	watchLeaders(ctx, src, rec)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("the watch polled %d times in %s, want %d", src.polls, guard, len(src.script)+1)
	}
	var got []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var op history.Op
		var ev history.NemesisEvent
		if json.Unmarshal([]byte(line), &op) != nil || op.F != history.FLeader || json.Unmarshal(op.Value, &ev) != nil {
			t.Fatalf("not a leader event: %s", line)
		}
		got = append(got, ev.Leaders)
	}
	if len(got) != 3 || got[0]["n2"] != "n1" || got[1]["n2"] != "n2" || got[2]["n2"] != "n1" {
		t.Errorf("recorded %v, want a, b, a (one event per change)", got)
	}
}
