package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/results"
)

// TestConsulLockWorkloadUnderPartition runs the lock workload on real Consul while partitions
// cut nodes off: the lock checker must find Consul's locks safe, locks must have changed hands,
// fenced writes must have committed, and the report must draw the holders of every lock.
func TestConsulLockWorkloadUnderPartition(t *testing.T) {
	o := consulRun(t)
	o.Workload = "lock"
	o.Nemesis = []string{"partition"}
	o.TimeLimit = 15 * time.Second
	o.NemesisInterval = 4 * time.Second
	checkLockRun(t, runValidOutcome(t, o))
}

// TestLockWorkloadOnTheAgentUnderPartition: the same on the agent's sessions and locks.
func TestLockWorkloadOnTheAgentUnderPartition(t *testing.T) {
	o := shortRun(t)
	o.Workload = "lock"
	o.Nemesis = []string{"partition"}
	o.TimeLimit = 15 * time.Second
	o.NemesisInterval = 4 * time.Second
	checkLockRun(t, runValidOutcome(t, o))
}

// checkLockRun checks a valid lock run: the lock checker judged it valid, locks changed hands,
// fenced writes committed, the leader watch let the expiry bound be judged, a partition was
// started and the report draws lock l0's holders.
func checkLockRun(t *testing.T, out *Outcome) {
	t.Helper()
	r := out.Results.Checkers[checker.NameLock]
	if r.Valid != checker.Valid {
		t.Fatalf("lock checker %v: %s", r.Valid, r.Error)
	}
	var d checker.LockDetails
	b, err := json.Marshal(r.Details)
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	if err != nil {
		t.Fatal(err)
	}
	if d.Locks < 1 || d.Holdings < 2 || d.FencedOK < 10 { // one hold in four lasts up to 25 s
		t.Errorf("too little happened on Consul: %+v", d)
	}
	if !d.Expiry.Checked {
		t.Errorf("the expiry bound was not judged (%s): the leader watch recorded nothing", d.Expiry.Why)
	}
	page, err := os.ReadFile(filepath.Join(out.Dir, results.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `aria-label="holders of lock l0"`) {
		t.Errorf("report.html in %s draws no holders of lock l0", out.Dir)
	}
	if !hasFaultStart(t, out.Dir, "partition") {
		t.Errorf("no partition was started in %s", out.Dir)
	}
}
