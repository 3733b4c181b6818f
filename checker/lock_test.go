package checker

import (
	"context"
	"strings"
	"testing"

	"github.com/raftcheck/harness/history"
)

// lb builds lock workload histories; times are in seconds.
type lb struct{ hb }

func sec(s float64) int64 { return int64(s * 1e9) }

func (b *lb) session(t float64, p history.Process, lock, sid, checks string) *lb {
	v := map[string]any{"checks": checks, "ttl_ms": 10000, "lock_delay_ms": 3000}
	b.inv(sec(t), p, "session", lock, v)
	v["session"] = sid
	b.ok(sec(t)+1000, p, "session", lock, v)
	return b
}

func (b *lb) acquire(t0, t1 float64, p history.Process, lock, sid string, index, lockIndex uint64) *lb {
	b.inv(sec(t0), p, "acquire", lock, map[string]any{"session": sid})
	b.ok(sec(t1), p, "acquire", lock, map[string]any{"session": sid, "index": index, "lock_index": lockIndex})
	return b
}

func (b *lb) write(t0, t1 float64, p history.Process, lock, sid string, value int64, typ history.Type, index uint64, holder string, lockIndex uint64) *lb {
	b.inv(sec(t0), p, "fenced-write", lock, map[string]any{"session": sid, "value": value})
	v := map[string]any{"session": sid, "value": value}
	if typ == history.OK {
		v["index"], v["holder"], v["lock_index"] = index, holder, lockIndex
	}
	b.add(sec(t1), p, typ, "fenced-write", lock, v)
	if typ == history.Fail {
		b.ops[len(b.ops)-1].Error = "rolled back: lock is not held"
	}
	return b
}

func (b *lb) step(f string, t0, t1 float64, p history.Process, lock, sid string, typ history.Type) *lb {
	b.inv(sec(t0), p, f, lock, map[string]any{"session": sid})
	b.add(sec(t1), p, typ, f, lock, map[string]any{"session": sid})
	return b
}

func (b *lb) final(t float64, p history.Process, lock, holder string, index, lockIndex uint64, value int64) *lb {
	b.inv(sec(t), p, "read", lock, nil)
	b.ok(sec(t)+1000, p, "read", lock, map[string]any{"holder": holder, "index": index, "lock_index": lockIndex, "value": value})
	return b
}

// validLockHistory: two clean hand-overs, then a holder cut off by a partition whose node-check
// session is invalidated: the next holder acquires after the lock-delay while the old one still
// believes it holds the lock (1 s of overlap), and the old holder's fenced write is rolled back.
func validLockHistory() *lb {
	b := &lb{}
	b.session(0, 0, "l0", "s1", "node").session(0.05, 1, "l0", "s2", "none")
	b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
	b.acquire(0.15, 0.6, 1, "l0", "s2", 12, 2) // waited for s1's release
	b.write(0.3, 0.35, 0, "l0", "s1", 1, history.OK, 11, "s1", 1)
	b.step("release", 0.5, 0.55, 0, "l0", "s1", history.OK)
	b.step("destroy", 0.56, 0.58, 0, "l0", "s1", history.OK)
	b.write(0.7, 0.75, 1, "l0", "s2", 2, history.OK, 13, "s2", 2)
	b.step("release", 1.0, 1.05, 1, "l0", "s2", history.OK)
	b.step("destroy", 1.06, 1.1, 1, "l0", "s2", history.OK)

	b.session(1.9, 2, "l0", "s3", "node")
	b.acquire(2.0, 2.1, 2, "l0", "s3", 14, 3)
	b.write(2.2, 2.3, 2, "l0", "s3", 3, history.OK, 15, "s3", 3)
	b.nemesis(sec(2.4), "partition", history.NemesisEvent{Event: history.EventStart, Targets: []string{"n1"}})
	b.write(2.5, 4.5, 2, "l0", "s3", 4, history.Info, 0, "", 0) // cut off: unknown
	b.session(5.0, 3, "l0", "s4", "node")
	b.acquire(5.5, 8.0, 3, "l0", "s4", 20, 4) // after s3's invalidation + 3 s lock-delay
	b.write(8.5, 8.6, 4, "l0", "s3", 5, history.Fail, 0, "", 0)
	b.write(8.7, 8.8, 3, "l0", "s4", 6, history.OK, 21, "s4", 4)
	b.nemesis(sec(8.9), "partition", history.NemesisEvent{Event: history.EventEnd, Targets: []string{"n1"}})
	b.step("lost", 9.0, 9.0, 4, "l0", "s3", history.OK)
	b.step("release", 9.1, 9.2, 4, "l0", "s3", history.OK)
	b.step("release", 9.3, 9.4, 3, "l0", "s4", history.OK)
	b.final(10, 9, "l0", "", 22, 4, 6)
	return b
}

func checkLock(t *testing.T, ops []history.Op) (Result, *LockDetails) {
	t.Helper()
	r := Lock{}.Check(context.Background(), ops)
	d, _ := r.Details.(*LockDetails)
	if d == nil {
		t.Fatalf("no details: %+v", r)
	}
	return r, d
}

func TestLockValidHistory(t *testing.T) {
	r, d := checkLock(t, validLockHistory().ops)
	if r.Valid != Valid {
		t.Fatalf("valid history judged %v: %s (%v)", r.Valid, r.Error, d.Examples)
	}
	if d.Holdings != 4 || d.FencedOK != 4 || d.FencedRejected != 1 || d.FencedUnknown != 1 || d.Lost != 1 {
		t.Errorf("counts: %+v", d)
	}
	o := d.Overlap
	if o.Count != 1 || o.MaxSeconds != 1.0 || o.WritesRejected != 1 || o.WritesOK != 0 {
		t.Errorf("overlap: %+v, want one of 1 s with one rejected write", o)
	}
}

// TestLockInvalidHistories: each history breaks one promise and must be caught as that kind.
func TestLockInvalidHistories(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		build      func() *lb
	}{
		{"overlap-with-committed-fenced-write", LockMutex, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node").session(0, 1, "l0", "s2", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
			b.acquire(0.15, 0.25, 1, "l0", "s2", 12, 2) // while s1's next write commits
			b.write(0.3, 0.35, 0, "l0", "s1", 1, history.OK, 11, "s1", 1)
			return b
		}},
		{"acquired-before-the-earlier-index", LockMutex, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node").session(0, 1, "l0", "s2", "node")
			b.acquire(0.01, 0.05, 1, "l0", "s2", 12, 2)
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1) // index 10 but invoked after s2's ok
			return b
		}},
		{"fenced-write-after-next-acquisition", LockFencing, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node").session(0, 1, "l0", "s2", "none")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
			b.write(0.3, 4, 0, "l0", "s1", 1, history.OK, 13, "s1", 1) // committed after index 12
			b.acquire(0.15, 3.5, 1, "l0", "s2", 12, 2)
			return b
		}},
		{"check-session-passed-for-another-holder", LockFencing, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
			b.write(0.3, 0.4, 0, "l0", "s1", 1, history.OK, 11, "s9", 1)
			return b
		}},
		{"check-session-passed-for-a-free-lock", LockFencing, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
			b.write(0.3, 0.4, 0, "l0", "s1", 1, history.OK, 11, "", 1) // the key read in the txn is held by nobody
			return b
		}},
		{"check-session-refused-a-holder", LockRefused, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
			b.write(0.3, 0.4, 0, "l0", "s1", 1, history.Fail, 0, "", 0) // rolled back …
			b.inv(sec(0.41), 0, "confirm", "l0", map[string]any{"session": "s1"})
			b.ok(sec(0.42), 0, "confirm", "l0", map[string]any{"session": "s1", "holder": "s1", "index": 10, "lock_index": 1}) // … yet still held
			b.step("release", 0.5, 0.55, 0, "l0", "s1", history.OK)
			return b
		}},
		{"lock-delay-ignored", LockDelayed, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s3", "node").session(0, 1, "l0", "s4", "node")
			b.acquire(2.0, 2.1, 0, "l0", "s3", 14, 3)
			b.write(2.2, 2.3, 0, "l0", "s3", 3, history.OK, 15, "s3", 3)
			b.acquire(3.0, 4.0, 1, "l0", "s4", 20, 4) // 1.8 s after the last proof, delay 3 s
			return b
		}},
		{"ttl-session-expired-early", LockTTL, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s5", "none").session(0, 1, "l0", "s6", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s5", 10, 1)
			b.acquire(5, 15, 1, "l0", "s6", 30, 2) // s5 (TTL 10 s) cannot expire before 20 s
			return b
		}},
		{"ttl-session-expired-early-then-released", LockTTL, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s5", "none").session(0, 1, "l0", "s6", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s5", 10, 1)
			b.inv(sec(10.5), 0, "lost", "l0", map[string]any{"session": "s5"})
			b.ok(sec(10.6), 0, "lost", "l0", map[string]any{"session": "s5", "ended": true})
			b.step("release", 10.7, 10.8, 0, "l0", "s5", history.OK) // too late to be the end
			b.acquire(11, 15, 1, "l0", "s6", 30, 2)
			return b
		}},
		{"ttl-session-seen-expired-early", LockTTL, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s5", "none")
			b.acquire(0.1, 0.2, 0, "l0", "s5", 10, 1)
			b.write(10.5, 10.6, 0, "l0", "s5", 1, history.Fail, 0, "", 0) // rolled back at 1×TTL
			b.step("release", 10.7, 10.8, 0, "l0", "s5", history.OK)
			b.step("destroy", 10.9, 11, 0, "l0", "s5", history.OK)
			return b
		}},
		{"lock-index-not-growing", LockIndexes, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node").session(0, 1, "l0", "s2", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 5)
			b.step("release", 0.3, 0.4, 0, "l0", "s1", history.OK)
			b.acquire(0.5, 0.6, 1, "l0", "s2", 12, 4)
			return b
		}},
		{"rolled-back-write-visible", LockFinal, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
			b.write(0.3, 0.4, 0, "l0", "s1", 7, history.Fail, 0, "", 0)
			b.step("release", 0.5, 0.6, 0, "l0", "s1", history.OK)
			b.final(1, 5, "l0", "", 12, 1, 7)
			return b
		}},
		{"unindexed-holdings-overlap", LockMutex, func() *lb {
			b := &lb{}
			b.session(0, 0, "l0", "s1", "node").session(0, 1, "l0", "s2", "node")
			b.acquire(0.1, 0.2, 0, "l0", "s1", 0, 0)
			b.acquire(0.1, 0.25, 1, "l0", "s2", 0, 0)
			b.write(0.3, 0.35, 0, "l0", "s1", 1, history.OK, 11, "s1", 1)
			b.write(0.3, 0.35, 1, "l0", "s2", 2, history.OK, 12, "s2", 2)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, d := checkLock(t, tc.build().ops)
			if r.Valid != Invalid {
				t.Fatalf("judged %v, want invalid (%s)", r.Valid, r.Error)
			}
			if d.Violations[tc.kind] == 0 {
				t.Errorf("violations %v, want %s; %s", d.Violations, tc.kind, r.Error)
			}
			if r.FirstAnomaly == nil || r.FirstAnomaly.Key != "l0" || !strings.Contains(r.Error, "first:") {
				t.Errorf("anomaly %+v, error %q", r.FirstAnomaly, r.Error)
			}
		})
	}
}

func TestLockUndecidable(t *testing.T) {
	b := &lb{}
	b.session(0, 0, "l0", "s1", "node")
	b.inv(sec(0.1), 0, "acquire", "l0", map[string]any{"session": "s1"})
	b.fail(sec(0.2), 0, "acquire", "l0", map[string]any{"session": "s1"})
	if r, _ := checkLock(t, b.ops); r.Valid != Unknown {
		t.Errorf("no holding at all: %v, want unknown", r.Valid)
	}
	b.inv(sec(0.3), 1, "acquire", "l0", "not an object")
	b.ok(sec(0.4), 1, "acquire", "l0", "not an object")
	if r, _ := checkLock(t, b.ops); r.Valid != Unknown || !strings.Contains(r.Error, "undecodable") {
		t.Errorf("bad value: %v %q, want unknown naming the op", r.Valid, r.Error)
	}
}

// TestLockTTLBoundLiftedByAFaultOnItsNode: Consul's autopilot removes a failed server and
// deregisters its node, which destroys the node's sessions, TTL-only ones too (seen on Consul
// 1.20.1, docs/findings/lock-node-deregistered). A hand-over before the TTL bound is then fine;
// the same history without the fault is not.
func TestLockTTLBoundLiftedByAFaultOnItsNode(t *testing.T) {
	build := func(target string) []history.Op {
		b := &lb{}
		b.session(0, 0, "l0", "s5", "none")
		b.ops[len(b.ops)-1].Node = "n2"
		b.session(0, 1, "l0", "s6", "node")
		b.acquire(0.1, 0.2, 0, "l0", "s5", 10, 1)
		b.nemesis(sec(1), "partition", history.NemesisEvent{Event: history.EventStart, Targets: []string{target}})
		b.acquire(5, 8, 1, "l0", "s6", 30, 2)
		return b.ops
	}
	if r, d := checkLock(t, build("n2")); r.Valid != Valid {
		t.Errorf("fault on the session's node: %v %s %v", r.Valid, r.Error, d.Examples)
	}
	if r, d := checkLock(t, build("n3")); r.Valid != Invalid || d.Violations[LockTTL] != 1 {
		t.Errorf("fault elsewhere: %v %v, want one ttl violation", r.Valid, d.Violations)
	}
}

// TestLockReleaseAfterALostNotice: without proof that the holding had ended, the release that
// follows a lost notice may be what ended it, and the next acquisition is fine.
func TestLockReleaseAfterALostNotice(t *testing.T) {
	b := &lb{}
	b.session(0, 0, "l0", "s5", "none").session(0, 1, "l0", "s6", "node")
	b.acquire(0.1, 0.2, 0, "l0", "s5", 10, 1)
	b.step("lost", 10.5, 10.6, 0, "l0", "s5", history.OK) // the monitor gave up; the read failed
	b.step("release", 10.7, 10.8, 0, "l0", "s5", history.OK)
	b.acquire(11, 15, 1, "l0", "s6", 30, 2)
	if r, d := checkLock(t, b.ops); r.Valid != Valid {
		t.Errorf("%v %s %v", r.Valid, r.Error, d.Examples)
	}
}

// TestLockAbandonedHolding: a holder that destroys its session without releasing stops believing
// it holds the lock at the destroy; the next holder must wait out the lock-delay after it.
func TestLockAbandonedHolding(t *testing.T) {
	build := func(next float64) []history.Op {
		b := &lb{}
		b.session(0, 0, "l0", "s1", "none").session(0, 1, "l0", "s2", "node")
		b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
		b.write(0.3, 0.35, 0, "l0", "s1", 1, history.OK, 11, "s1", 1)
		b.step("destroy", 0.5, 0.55, 0, "l0", "s1", history.OK) // abandoned: no release
		b.acquire(0.4, next, 1, "l0", "s2", 13, 2)
		return b.ops
	}
	r, d := checkLock(t, build(3.6))
	if r.Valid != Valid || d.Overlap.Count != 0 {
		t.Errorf("acquired 3.1 s after the destroy: %v %s %v, overlap %+v; want valid without overlap", r.Valid, r.Error, d.Examples, d.Overlap)
	}
	r, d = checkLock(t, build(1.0))
	if r.Valid != Invalid || d.Violations[LockDelayed] != 1 {
		t.Errorf("acquired 0.5 s after the destroy: %v %v, want one lock-delay violation", r.Valid, d.Violations)
	}
}

// TestLockTTLViolationDatedByItsProof: the first anomaly of a session that expired early is the
// op that showed it no longer held the lock, not its acquisition.
func TestLockTTLViolationDatedByItsProof(t *testing.T) {
	b := &lb{}
	b.session(0, 0, "l0", "s5", "none")
	b.acquire(0.1, 0.2, 0, "l0", "s5", 10, 1)
	b.write(10.5, 10.6, 0, "l0", "s5", 1, history.Fail, 0, "", 0)
	r, _ := checkLock(t, b.ops)
	if r.FirstAnomaly == nil || r.FirstAnomaly.Time != sec(10.6) || r.FirstAnomaly.Index != b.ops[len(b.ops)-1].Index {
		t.Errorf("first anomaly %+v, want the rolled-back write at 10.6 s", r.FirstAnomaly)
	}
}

// TestLockConfirmAfterATrueRollback: a rollback whose confirm read shows another holder, or the
// lock free, or a later LockIndex is a true end, and no violation.
func TestLockConfirmAfterATrueRollback(t *testing.T) {
	for _, confirm := range []map[string]any{
		{"session": "s1", "holder": "s2", "index": 14, "lock_index": 2},
		{"session": "s1", "index": 14, "lock_index": 1},
		{"session": "s1", "holder": "s1", "index": 20, "lock_index": 3},
	} {
		b := &lb{}
		b.session(0, 0, "l0", "s1", "node")
		b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
		b.write(0.3, 0.4, 0, "l0", "s1", 1, history.Fail, 0, "", 0)
		b.inv(sec(0.41), 0, "confirm", "l0", map[string]any{"session": "s1"})
		b.ok(sec(0.42), 0, "confirm", "l0", confirm)
		if r, d := checkLock(t, b.ops); r.Valid != Valid {
			t.Errorf("confirm %v: %v %s %v", confirm, r.Valid, r.Error, d.Examples)
		}
	}
}

// TestLockExpiryUpperBound: a committed fenced write proves its session alive; a session must be
// gone once 2×TTL (+ slack) passed since the latest of its creation, its last renew and the first
// sight of a new leader (which re-arms every session's timer). Without a leader watch in the
// history the bound is not judged.
func TestLockExpiryUpperBound(t *testing.T) {
	leaders := func(b *lb, at float64, l map[string]string) {
		b.nemesis(sec(at), history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: l})
	}
	one := map[string]string{"n1": "n1", "n2": "n1", "n3": "n1"}
	moved := map[string]string{"n1": "", "n2": "n2", "n3": "n2"}
	back := map[string]string{"n1": "n2", "n2": "n2", "n3": "n2"} // n1 comes back: no new leader
	stepped := map[string]string{"n1": "n2", "n2": "", "n3": ""}  // n2 stepped down (n1 has not noticed) …
	build := func(watch, newLeader, reElected bool, renewAt float64, lastWrite float64) []history.Op {
		b := &lb{}
		b.nemesis(0, history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload})
		if watch {
			leaders(b, 0.01, one)
		}
		b.session(0.02, 0, "l0", "s1", "none")
		b.acquire(0.1, 0.2, 0, "l0", "s1", 10, 1)
		b.write(5, 5.1, 0, "l0", "s1", 1, history.OK, 11, "s1", 1)
		if watch && newLeader {
			leaders(b, 8, moved)
			leaders(b, 12, back)
		}
		if watch && reElected {
			leaders(b, 15, stepped)
			leaders(b, 16, back) // … and won again: a new term of the same leader
		}
		if renewAt > 0 {
			b.step("renew", renewAt, renewAt+0.1, 0, "l0", "s1", history.OK)
		}
		b.write(lastWrite, lastWrite+0.1, 0, "l0", "s1", 2, history.OK, 12, "s1", 1)
		b.nemesis(sec(lastWrite+1), history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
		b.final(lastWrite+2, 9, "l0", "s1", 13, 1, 2)
		return b.ops
	}
	for _, tc := range []struct {
		name                        string
		watch, newLeader, reElected bool
		renewAt, lastWrite          float64
		want                        Validity
		silent                      float64 // the measured longest silence
	}{
		{"alive-within-2ttl", true, false, false, 0, 24.9, Valid, 24.88},
		{"alive-past-2ttl-plus-slack", true, false, false, 0, 25.1, Invalid, 25.08},
		{"new-leader-re-armed-it", true, true, false, 0, 32.9, Valid, 24.9},
		{"alive-past-the-re-armed-bound", true, true, false, 0, 33.1, Invalid, 25.1},
		{"same-leader-re-elected-re-armed-it", true, true, true, 0, 40.9, Valid, 24.9},
		{"alive-past-the-re-election-bound", true, true, true, 0, 41.1, Invalid, 25.1},
		{"renewed", true, false, false, 20, 45, Valid, 24.9},
		{"renewed-then-outlived", true, false, false, 20, 45.2, Invalid, 25.1},
		{"no-leader-watch", false, false, false, 0, 60, Valid, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, d := checkLock(t, build(tc.watch, tc.newLeader, tc.reElected, tc.renewAt, tc.lastWrite))
			if r.Valid != tc.want || tc.want == Invalid && (d.Violations[LockExpiry] != 1 || len(d.Violations) != 1) {
				t.Fatalf("got %v %v (%s), want %v with one expiry violation", r.Valid, d.Violations, r.Error, tc.want)
			}
			if d.Expiry.Checked != tc.watch || d.Expiry.MaxSilentS != tc.silent {
				t.Errorf("expiry details %+v, want checked=%v max silence %.3f s", d.Expiry, tc.watch, tc.silent)
			}
		})
	}
}
