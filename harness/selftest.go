package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/workloads"
)

// SeededBug is one of the agent's -unsafe switches with the test that should expose it.
type SeededBug struct {
	Name      string   // the agent's -unsafe name
	Workload  string   // register or set
	ReadMode  string   // consistent, default or stale
	Nemesis   []string // faults that expose it
	AgentArgs []string // extra agent flags the scenario needs
	Shapes    []string // partition shapes to draw from (empty: all)
	Signal    string   // restart signal (empty: the base options')
	Rolling   bool     // restart stops the nodes one after another
	// Interval replaces the base options' nemesis interval (0: keep it): a bug that shows only
	// after a quiet spell longer than the fault needs fewer, longer-spaced faults.
	Interval time.Duration
	// Lock is the lock workload's shape (nil: the base options').
	Lock *workloads.LockShape
	// MinTimeLimit lengthens a shorter run: a bug that needs a rarer fault draws more faults.
	MinTimeLimit time.Duration
	Why          string // how the bug shows in the history
}

// SeededBugs lists every seeded bug of the agent and how the self-test provokes it.
var SeededBugs = []SeededBug{
	{Name: "stale-consistent-reads", Workload: "register", ReadMode: "consistent", Nemesis: []string{"partition"},
		Why: "an isolated old leader answers ?consistent reads from its own state: a stale read"},
	{Name: "long-lease", Workload: "register", ReadMode: "default", Nemesis: []string{"partition"},
		Shapes: []string{"isolate-leader"},
		Why:    "a deposed leader keeps serving default reads long after a new leader took writes"},
	{Name: "local-cas", Workload: "register", ReadMode: "consistent", Nemesis: []string{"partition"},
		Why: "a CAS compared against a lagging follower's state succeeds on a stale value"},
	{Name: "ack-before-commit", Workload: "register", ReadMode: "consistent", Nemesis: []string{"partition"},
		Shapes: []string{"isolate-leader"}, // every partition cuts off the leader (CI once drew shapes that left it in the majority for 10 s)
		Why:    "an isolated leader acknowledges writes that never commit: later reads miss them"},
	{Name: "bootstrap-alone", Workload: "register", ReadMode: "consistent", Nemesis: nil,
		Why: "every server is its own cluster: reads through different nodes disagree"},
	{Name: "leave-wipes-peers", Workload: "register", ReadMode: "consistent", Nemesis: []string{"restart"},
		AgentArgs: []string{"-skip-leave-on-interrupt=false"}, Signal: "INT", Rolling: true,
		Why: "after an orderly graceful leave of every server (SIGINT, one by one) even the last server has no peers: no leader, ever"},
	{Name: "session-ttl-1x", Workload: "lock", ReadMode: "consistent", Nemesis: nil,
		Lock:         &workloads.LockShape{Stall: 1, Sessions: workloads.LockSessionsTTL},
		MinTimeLimit: 25 * time.Second, // stalled holdings expire at 10 s under the bug, at 20 s in Consul (the correct agent expires some)
		Why:          "every holder stalls with a TTL-only session: it expires at 1×TTL, and the holder's next fenced write is rolled back before the 2×TTL Consul keeps"},
	{Name: "lock-delay-ignored", Workload: "lock", ReadMode: "consistent", Nemesis: nil,
		Lock: &workloads.LockShape{Abandon: 1, Sessions: workloads.LockSessionsMixed},
		Why:  "every holder destroys its session while holding: a waiter acquires the lock at once instead of after the lock-delay"},
	{Name: "local-check-session", Workload: "lock", ReadMode: "consistent", Nemesis: nil,
		Lock:         &workloads.LockShape{Sessions: workloads.LockSessionsMixed}, // short holds only: many hand-overs
		MinTimeLimit: 20 * time.Second,                                            // the shape measured 10/10; a CI run of 10 s once saw no refused holder
		Why:          "a follower that has not yet applied an acquisition judges the new holder's check-session on its own state and rolls the fenced write back, while a consistent read shows the holder still holds the lock"},
	{Name: "session-timers-not-rearmed", Workload: "lock", ReadMode: "consistent", Nemesis: []string{"partition"},
		Shapes: []string{"isolate-leader"}, Interval: 15 * time.Second,
		Lock:         &workloads.LockShape{Stall: 1, Sessions: workloads.LockSessionsTTL},
		MinTimeLimit: 80 * time.Second, // leader changes at about 16 s and 46 s; each is followed by 29 s without one, past the 25 s bound
		Why:          "every holder stalls with a TTL-only session while a partition isolates the leader every 30 s: the new leader arms no timer for the sessions it inherits, and a stalled holder's fenced writes still commit more than 2×TTL after the leader change"},
	{Name: "skip-fsync", Workload: "register", ReadMode: "consistent", Nemesis: []string{"power"},
		MinTimeLimit: 30 * time.Second, // a loss of every server: seeds 1–10 each drew one in 30 s
		Why:          "a power loss rolls a server's Raft log, term and vote back to its last fsync (bbolt's first): of every server, acknowledged writes vanish; of one, it forgets its vote and log"},
}

// NotSelftested lists the agent's -unsafe switches that SeededBugs deliberately leaves out, each
// with the reason. A test ties SeededBugs and this list to the agent's own list of switches
// (agent.UnsafeNames): every switch is in exactly one of them.
var NotSelftested = map[string]string{}

// DefaultSelftestAttempts bounds the self-test's search for each seeded bug: a bug gets at most
// this many runs, seed after seed, and the first invalid verdict ends its search. A seed fixes the
// fault schedule but not the timing of the operations, so one run of a bug that 10 seeds out of 10
// expose can still miss on a loaded machine; three runs make a miss of a bug that shows in nine
// runs of ten a one-in-a-thousand event, and a bug that needs all three is a row to reshape.
const DefaultSelftestAttempts = 3

// SelftestRow is one line of the self-test table.
type SelftestRow struct {
	Bug      string           `json:"bug"`
	Nemesis  string           `json:"nemesis"`
	Verdict  checker.Validity `json:"verdict"`
	Detected bool             `json:"detected"`
	Seconds  float64          `json:"seconds_to_detection"` // from workload start to first anomalous op; -1 if unknown
	// Runs is how many runs the row took: for a seeded bug, the runs until the first invalid
	// verdict (the bound when none was); for the correct agent, 1.
	Runs int `json:"runs"`
	// Seed is the seed of the row's last run: the detecting one for a detected bug.
	Seed  int64  `json:"seed"`
	Dir   string `json:"dir"`
	Error string `json:"error,omitempty"`
	// Missed is, for a seeded bug that went unseen, what its last run's checkers saw (each one's
	// verdict and the start of its details), so that a miss can be understood from the table alone.
	Missed string `json:"missed,omitempty"`
	// Misses lists the run folders of the earlier runs of a bug that saw nothing (kept for
	// reading: a row that needs more than one run is a row whose shape could expose the bug better).
	Misses []string `json:"misses,omitempty"`
}

// Selftest runs every seeded bug (or those named in only) against the nemesis that should expose
// it, as a bounded search: up to attempts runs (DefaultSelftestAttempts when attempts < 1), with
// seeds base.Seed, base.Seed+1, …, until one run is invalid. The correct agent runs each distinct
// configuration once, with base.Seed, and must be valid. It returns one row per bug and per
// correct configuration; ok is false when a bug went unseen within its bound, or the correct agent
// was judged anything but valid (or its run errored).
func Selftest(ctx context.Context, base Options, only []string, attempts int, log io.Writer) (rows []SelftestRow, ok bool, err error) {
	return selftest(ctx, base, only, attempts, Run, log)
}

// testRunner runs one test: Run, or a stand-in in unit tests of the search.
type testRunner func(ctx context.Context, o Options, log io.Writer) (*Outcome, error)

func selftest(ctx context.Context, base Options, only []string, attempts int, run testRunner, log io.Writer) (rows []SelftestRow, ok bool, err error) {
	if attempts < 1 {
		attempts = DefaultSelftestAttempts
	}
	ok = true
	correctDone := map[string]bool{}
	for _, bug := range SeededBugs {
		if len(only) > 0 && !contains(only, bug.Name) {
			continue
		}
		for _, unsafe := range []bool{true, false} {
			o := bug.options(base)
			label := bug.Name
			if unsafe {
				o.Unsafe = []string{bug.Name}
			} else {
				key := fmt.Sprint(o.Workload, o.ReadMode, o.Nemesis, o.AgentArgs, o.PartitionShapes, o.RestartSignal, o.RestartRolling, o.LockShape(), o.NemesisInterval, o.TimeLimit)
				if correctDone[key] {
					continue
				}
				correctDone[key] = true
				label = "(correct agent)"
			}
			o.Name = "selftest-" + strings.TrimPrefix(strings.NewReplacer("(", "", ")", "", " ", "-").Replace(label), "-")
			row := SelftestRow{Bug: label, Nemesis: strings.Join(o.Nemesis, ","), Seconds: -1}
			if row.Nemesis == "" {
				row.Nemesis = "none"
			}
			tries := 1
			if unsafe {
				tries = attempts
			}
			for i := 0; i < tries; i++ {
				if ctx.Err() != nil {
					return rows, false, ctx.Err()
				}
				o.Seed = base.Seed + int64(i)
				if row.Dir != "" || row.Error != "" {
					miss := row.Dir
					if row.Error != "" {
						miss += " (error: " + row.Error + ")"
					}
					row.Misses = append(row.Misses, miss)
				}
				fmt.Fprintf(log, "selftest: %s with nemesis %v, read mode %s, seed %d (run %d of at most %d)\n", label, o.Nemesis, o.ReadMode, o.Seed, i+1, tries)
				row.runOnce(ctx, run, o, log)
				row.Runs, row.Seed = i+1, o.Seed
				if !unsafe || row.Detected {
					break
				}
			}
			if unsafe {
				ok = ok && row.Detected
			} else {
				ok = ok && row.Verdict == checker.Valid && row.Error == ""
				row.Missed = ""
			}
			rows = append(rows, row)
		}
	}
	return rows, ok, nil
}

// options is base shaped for the bug's row: workload, read mode, nemesis and the rest; the
// -unsafe switch is left off (the caller adds it for the bug's own runs).
func (bug SeededBug) options(base Options) Options {
	o := base
	o.Workload, o.ReadMode, o.Nemesis = bug.Workload, bug.ReadMode, bug.Nemesis
	o.AgentArgs = append(append([]string(nil), base.AgentArgs...), bug.AgentArgs...)
	o.Unsafe = nil
	o.PartitionShapes = bug.Shapes
	if bug.Lock != nil {
		o.setLockShape(*bug.Lock)
	}
	o.RestartRolling = bug.Rolling
	if bug.Interval > 0 {
		o.NemesisInterval = bug.Interval
	}
	o.TimeLimit = max(o.TimeLimit, bug.MinTimeLimit)
	if bug.Signal != "" {
		o.RestartSignal = bug.Signal
	}
	return o
}

// runOnce runs o and records its verdict, folder, detection time and error in the row (replacing
// what an earlier run of the row left there).
func (row *SelftestRow) runOnce(ctx context.Context, run testRunner, o Options, log io.Writer) {
	row.Dir, row.Verdict, row.Seconds, row.Error, row.Missed = "", checker.Unknown, -1, "", ""
	out, runErr := run(ctx, o, log)
	if out != nil {
		row.Dir, row.Verdict = out.Dir, out.Results.Valid
		row.Seconds = secondsToDetection(out.Dir, out.Results)
	}
	if runErr != nil {
		row.Error = firstLine(runErr.Error())
	}
	row.Detected = row.Verdict == checker.Invalid
	if !row.Detected && out != nil {
		row.Missed = missedDigest(out.Results)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// secondsToDetection is the time from the workload phase's start to the earliest anomalous op
// that an invalid checker names (the first of checker.Reasons); -1 when none names one.
func secondsToDetection(dir string, res results.Results) float64 {
	rs := checker.Reasons(res.Checkers)
	if len(rs) == 0 || rs[0].Valid != checker.Invalid || rs[0].Anomaly == nil {
		return -1
	}
	best := rs[0].Anomaly.Time
	ops, err := history.ReadFile(filepath.Join(dir, results.HistoryFile))
	if err != nil {
		return -1
	}
	start := int64(0)
	for _, op := range ops {
		if op.IsNemesis() && op.F == history.FPhase && strings.Contains(string(op.Value), `"`+history.PhaseWorkload+`"`) {
			start = op.Time
			break
		}
	}
	return float64(best-start) / 1e9
}

// PrintSelftest writes the table: bug, nemesis, verdict, detected, runs taken, seed of the last
// run, seconds to detection, run folder; then the error of every row that had one, what the
// checkers of an unseen bug's last run saw, and the folders of the runs that missed a bug.
func PrintSelftest(w io.Writer, rows []SelftestRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUG\tNEMESIS\tVERDICT\tDETECTED\tRUNS\tSEED\tSECONDS\tRUN FOLDER")
	for _, r := range rows {
		det := "no"
		if r.Detected {
			det = "yes"
		}
		if r.Bug == "(correct agent)" {
			det = "-"
		}
		secs := "-"
		if r.Seconds >= 0 && r.Bug != "(correct agent)" {
			secs = fmt.Sprintf("%.1f", r.Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%d\t%s\t%s\n", r.Bug, r.Nemesis, r.Verdict, det, r.Runs, r.Seed, secs, r.Dir)
	}
	tw.Flush()
	for _, r := range rows {
		if r.Error != "" { // an unknown verdict is often a harness error: say which
			fmt.Fprintf(w, "%s (%s): %s\n", r.Bug, r.Dir, r.Error)
		}
		if r.Missed != "" {
			fmt.Fprintf(w, "%s not detected in %s; the last saw: %s\n", r.Bug, runsWord(r.Runs), r.Missed)
		}
		if len(r.Misses) > 0 && r.Detected {
			fmt.Fprintf(w, "%s needed %s; unseen in %s\n", r.Bug, runsWord(r.Runs), strings.Join(r.Misses, ", "))
		}
	}
}

func runsWord(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

// missedDigestDetails bounds how much of each checker's details missedDigest quotes.
const missedDigestDetails = 400

// missedDigest is what the checkers of a run that should have been invalid saw: the number of
// ops, then per checker (by name) its verdict and the start of its details as JSON.
func missedDigest(res results.Results) string {
	names := make([]string, 0, len(res.Checkers))
	for n := range res.Checkers {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops", res.Ops)
	for _, n := range names {
		c := res.Checkers[n]
		fmt.Fprintf(&b, "; %s %s", n, c.Valid)
		if c.NotApplicable != "" {
			fmt.Fprintf(&b, " (not applicable: %s)", c.NotApplicable)
			continue
		}
		if d, err := json.Marshal(c.Details); err == nil && c.Details != nil {
			fmt.Fprintf(&b, " %s", truncateRunes(string(d), missedDigestDetails))
		}
	}
	return b.String()
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
