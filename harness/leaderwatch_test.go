package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/raftcheck/harness/history"
)

// scriptedLeaders answers each poll with the next map of its script, then the last one forever.
type scriptedLeaders struct {
	mu     sync.Mutex
	script []map[string]string
	polls  int
}

func (s *scriptedLeaders) Leaders(context.Context) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.polls, len(s.script)-1)
	s.polls++
	return s.script[i]
}

func TestWatchLeadersRecordsEachChange(t *testing.T) {
	a := map[string]string{"n1": "n1", "n2": "n1"}
	b := map[string]string{"n1": "", "n2": "n2"}
	src := &scriptedLeaders{script: []map[string]string{a, a, b, b, a}}
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf)
	ctx, cancel := context.WithTimeout(context.Background(), 8*leaderWatchEvery)
	defer cancel()
	watchLeaders(ctx, src, rec)
	var got []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var op history.Op
		var ev history.NemesisEvent
		if json.Unmarshal([]byte(line), &op) != nil || op.F != history.FLeader || json.Unmarshal(op.Value, &ev) != nil {
			t.Fatalf("not a leader event: %s", line)
		}
		got = append(got, ev.Leaders)
	}
	if src.polls < 5 {
		t.Fatalf("%d polls in %s, want at least 5", src.polls, 8*leaderWatchEvery)
	}
	if len(got) != 3 || got[0]["n2"] != "n1" || got[1]["n2"] != "n2" || got[2]["n2"] != "n1" {
		t.Errorf("recorded %v, want a, b, a (one event per change)", got)
	}
}
