package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/docker"
	"github.com/raftcheck/harness/history"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/targets"
	"github.com/raftcheck/harness/workloads"
)

// Outcome is what a finished run produced.
type Outcome struct {
	Dir     string
	Results results.Results
}

// run carries one test through its phases.
type run struct {
	o      Options
	id     string
	dir    string
	log    io.Writer
	phases []results.Phase
	rec    *history.Recorder
	info   results.TestInfo
	dc     *docker.Client // nil before setup and after teardown
	cl     *Cluster
}

// phase times fn and records it under name.
func (r *run) phase(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	p := results.Phase{Name: name, Start: start, Duration: time.Since(start), Seconds: time.Since(start).Seconds()}
	if err != nil {
		p.Error = err.Error()
	}
	r.phases = append(r.phases, p)
	fmt.Fprintf(r.log, "harness: %-12s %6.2fs%s\n", name, p.Seconds, errSuffix(err))
	return err
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "  error: " + err.Error()
}

// NewRunID returns a short random identifier for labels and names.
func NewRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run executes one test and returns its outcome. The error is non-nil when the harness itself
// failed (bad options, Docker unreachable, the cluster never formed); the verdict is in
// Outcome.Results.Valid. Containers and the network are removed before Run returns, also when ctx
// is cancelled (Ctrl-C): the history then stays checkable and the verdict is at best "unknown".
func Run(ctx context.Context, o Options, log io.Writer) (*Outcome, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	wl, err := workloads.New(o.Workload)
	if err != nil {
		return nil, usagef("%v", err)
	}
	start := time.Now()
	r := &run{o: o, id: NewRunID(), log: log}
	if r.dir, err = results.NewRunDir(o.Store, o.Name, start); err != nil {
		return nil, err
	}
	out := &Outcome{Dir: r.dir}
	fmt.Fprintf(log, "harness: run %s, target %s, seed %d, folder %s\n", r.id, o.Target, o.Seed, r.dir)
	r.info = results.TestInfo{Options: optionsJSON(o), Seed: o.Seed, RunID: r.id, Start: start, GitRevision: gitRevision(ctx), CommandLine: os.Args}
	if err := results.WriteJSON(filepath.Join(r.dir, results.TestFile), r.info); err != nil {
		return out, err
	}

	defer r.teardown(ctx)
	runErr := r.phase("setup", func() error { return r.setup(ctx) })
	// The history's clock starts when the cluster is up, so that time 0 is (about) the workload's
	// start; a run that fails before that still leaves an empty, checkable history.
	if r.rec, err = history.Create(filepath.Join(r.dir, results.HistoryFile)); err != nil {
		return out, err
	}
	defer r.rec.Close()
	if runErr == nil {
		runErr = r.phase("ready", func() error { return r.ready(ctx) })
	}
	if runErr == nil {
		runErr = r.exercise(ctx, r.cl, wl, o.Nemesis)
	}
	r.teardown(ctx)
	if err := r.rec.Close(); err != nil && runErr == nil {
		runErr = err
	}
	out.Results, runErr = r.check(ctx, runErr)
	if runErr != nil && ctx.Err() == nil && out.Results.Valid != checker.Invalid {
		return out, runErr
	}
	return out, nil
}

// setup connects to Docker, builds (or finds) the target and its image, and starts the nodes.
func (r *run) setup(ctx context.Context) error {
	var err error
	if r.dc, err = docker.Connect(ctx); err != nil {
		return err
	}
	if left, err := r.dc.Leftovers(ctx); err == nil && len(left) > 0 {
		fmt.Fprintf(r.log, "harness: warning: %d containers or networks of other or earlier runs exist (if no other harness is running, `harness clean` removes them)\n", len(left))
	}
	p, err := prepareTarget(ctx, r.o, r.dc, r.log)
	if err != nil {
		return err
	}
	r.info.AgentImage, r.info.TargetVersion = p.Image, p.Version
	releases, err := prepareReleases(ctx, r.o, p, r.dc, r.log)
	if err != nil {
		return err
	}
	r.cl, err = startCluster(ctx, r.dc, r.id, p.Image, r.o)
	if r.cl != nil {
		r.info.NodeCommands = r.cl.Commands()
		r.cl.releases = map[string]string{}
		for name, rel := range releases {
			r.cl.releases[name] = rel.Image
		}
	}
	r.info.Releases = releases
	_ = results.WriteJSON(filepath.Join(r.dir, results.TestFile), r.info)
	return err
}

// prepareTarget builds or finds what o's target runs and the helper image.
func prepareTarget(ctx context.Context, o Options, dc *docker.Client, log io.Writer) (targets.Prepared, error) {
	t, err := o.target()
	if err != nil {
		return targets.Prepared{}, err
	}
	return targets.Prepare(ctx, t, targets.Source{Binary: o.AgentBinary, Image: o.AgentImage}, dc, log)
}

// prepareReleases builds or finds the image of each release an upgrade run switches between; the
// first is the target, prepared already (p). Nil without the upgrade fault.
func prepareReleases(ctx context.Context, o Options, p targets.Prepared, dc *docker.Client, log io.Writer) (map[string]results.Release, error) {
	if o.UpgradeTo == "" {
		return nil, nil
	}
	to, err := targets.Parse(o.UpgradeTo)
	if err != nil {
		return nil, err
	}
	q, err := targets.Prepare(ctx, to, targets.Source{}, dc, log)
	if err != nil {
		return nil, fmt.Errorf("the release to upgrade to: %w", err)
	}
	return map[string]results.Release{
		o.UpgradeFrom: {Image: p.Image, Version: p.Version},
		o.UpgradeTo:   {Image: q.Image, Version: q.Version},
	}, nil
}

// ready waits for the cluster to form. A split brain is not a harness failure: the system under
// test is broken, so what each node said is recorded and the run goes on for the checkers.
func (r *run) ready(ctx context.Context) error {
	err := r.cl.WaitReady(ctx, r.o.ReadyTimeout)
	if errors.Is(err, ErrSplitBrain) {
		fmt.Fprintf(r.log, "harness: warning: %v\n", err)
		r.rec.Nemesis(history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: r.cl.Leaders(ctx)})
		return nil
	}
	if err != nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logTailsTimeout)
		defer cancel()
		return fmt.Errorf("%w\n%s", err, r.cl.LogTails(tctx, 15))
	}
	return nil
}

// Bounds of the harness's own steps (not of the system under test).
const (
	// logTailsTimeout: a few Docker log reads (well under a second each) for an error message that must not hang on a stuck engine.
	logTailsTimeout = 10 * time.Second
	// teardownTimeout: collecting up to 9 node logs and force-removing the run's containers and network take seconds; a minute covers a slow engine.
	teardownTimeout = 60 * time.Second
	// healTimeout: the same minute the nemesis allows one fault action (nemesis actionTimeout), for undoing all of them and VerifyHealed.
	healTimeout = 60 * time.Second
)

// teardown collects the node logs and removes everything the run made; it runs once, also when
// ctx was cancelled.
func (r *run) teardown(ctx context.Context) {
	if r.dc == nil {
		return
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	_ = r.phase("teardown", func() error {
		if r.cl != nil {
			_ = r.cl.CollectLogs(tctx, r.dir, func(name string) (io.WriteCloser, error) {
				return os.Create(filepath.Join(r.dir, results.NodesDir, name))
			})
		}
		err := r.dc.RemoveRun(tctx, r.id)
		if r.cl != nil {
			// The containers are gone: nothing uses the power-loss filesystems any more.
			err = errors.Join(err, removePower(r.id, r.cl.power))
		}
		return err
	})
	r.dc.Close()
	r.dc = nil
}

// check checks what was recorded (also after an interrupt or a harness error mid-run), writes
// results.json and report.html, and moves the latest links. A harness error turns a valid
// verdict into unknown.
func (r *run) check(ctx context.Context, runErr error) (results.Results, error) {
	var res results.Results
	_ = r.phase("check", func() error {
		var err error
		res, err = CheckDir(context.WithoutCancel(ctx), r.dir, r.o.CheckConfig())
		return err
	})
	res.Phases = r.phases
	if runErr != nil {
		res.Error = runErr.Error()
		if res.Valid == checker.Valid {
			res.Valid = checker.Unknown
		}
	}
	if err := writeResults(r.dir, res); err != nil && runErr == nil {
		runErr = err
	}
	_ = results.MarkLatest(r.o.Store, r.dir)
	return res, runErr
}

// exercise runs the workload with the nemesis, heals, waits for recovery and does final reads.
func (r *run) exercise(ctx context.Context, cl *Cluster, wl workloads.Workload, faults []string) error {
	o := r.o
	cfg := workloads.Config{
		Concurrency: o.Concurrency, Rate: o.Rate, Keys: o.Keys, OpTimeout: o.OpTimeout,
		ReadMode: o.ReadMode, Seed: o.Seed, Recorder: r.rec, KeyPrefix: "jepsen/", Lock: o.LockShape(),
	}
	for _, n := range cl.nodes {
		cfg.Endpoints = append(cfg.Endpoints, workloads.Endpoint{Name: n.Name(), Addr: httpAddr(n)})
	}
	nem, err := nemesis.New(nemesis.Options{Faults: faults, Interval: o.NemesisInterval, Seed: o.Seed, RestartSignal: o.RestartSignal, RestartRolling: o.RestartRolling, Shapes: o.PartitionShapes, Together: o.NemesisTogether,
		UpgradeFrom: o.UpgradeFrom, UpgradeTo: o.UpgradeTo, RejoinTimeout: o.RecoveryTime}, nemesisCluster{cl}, r.rec)
	if err != nil {
		return usagef("%v", err)
	}
	err = r.phase("workload", func() error {
		r.rec.Nemesis(history.FPhase, history.NemesisEvent{Event: history.PhaseWorkload})
		wctx, cancel := context.WithTimeout(ctx, o.TimeLimit)
		defer cancel()
		var wg sync.WaitGroup
		var werr, nerr error
		wg.Go(func() { werr = wl.Run(wctx, cfg) })
		if len(faults) > 0 {
			wg.Go(func() { nerr = nem.Run(wctx) })
		}
		wg.Go(func() { watchLeaders(wctx, cl, r.rec) })
		prog := newProgress()
		r.rec.Watch(prog.observe)
		defer r.rec.Watch(nil)
		stopProgress := startProgress(wctx, r.log, prog, o.TimeLimit)
		wg.Wait()
		stopProgress()
		return errors.Join(werr, nerr)
	})
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if err != nil {
		return err
	}
	if err := r.phase("heal", func() error {
		r.rec.Nemesis(history.FPhase, history.NemesisEvent{Event: history.PhaseHeal})
		hctx, cancel := context.WithTimeout(ctx, healTimeout)
		defer cancel()
		if err := nem.HealAll(hctx); err != nil {
			return err
		}
		return cl.VerifyHealed(hctx)
	}); err != nil {
		return err
	}
	_ = r.phase("recovery", func() error {
		r.rec.Nemesis(history.FPhase, history.NemesisEvent{Event: history.PhaseRecovery})
		return r.awaitLeader(ctx, cl, o.RecoveryTime)
	})
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return r.phase("final-reads", func() error {
		r.rec.Nemesis(history.FPhase, history.NemesisEvent{Event: history.PhaseFinalReads})
		err := wl.Final(ctx, cfg)
		r.rec.Nemesis(history.FPhase, history.NemesisEvent{Event: history.PhaseDone})
		return err
	})
}

// awaitLeader polls every node until all name the same leader and each serves a consistent read
// (on Consul a follower forwards through its gossip view of the servers, which may lag Raft's), or
// the recovery time is over, and records the leaders it saw last for the liveness checker.
func (r *run) awaitLeader(ctx context.Context, cl *Cluster, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		leaders := cl.Leaders(ctx)
		var readErr error
		if agreedLeader(leaders) != "" {
			readErr = cl.ReadEverywhere(ctx)
		}
		done := agreedLeader(leaders) != "" && readErr == nil
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			r.rec.Nemesis(history.FLeader, history.NemesisEvent{Event: history.EventObserved, Leaders: leaders})
			switch {
			case agreedLeader(leaders) == "":
				return fmt.Errorf("no leader known to every node after %s: %v", within, leaders)
			case readErr != nil:
				return fmt.Errorf("leader %s known to every node, but not every node serves a consistent read after %s: %w", agreedLeader(leaders), within, readErr)
			}
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeResults writes results.json and report.html into dir.
func writeResults(dir string, res results.Results) error {
	if err := results.WriteJSON(filepath.Join(dir, results.ResultsFile), res); err != nil {
		return err
	}
	return results.WriteReport(dir)
}

// DescribeVerdict is the summary the CLI prints: the verdict, then every checker that is not
// valid in checker.Reasons' order, then the harness error.
func DescribeVerdict(res results.Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s", res.Valid)
	for _, r := range checker.Reasons(res.Checkers) {
		fmt.Fprintf(&b, "\n  %s: %s %s", r.Checker, r.Valid, r.Error)
		keys, ops := checker.Counterexamples(res.Checkers[r.Checker])
		for i, k := range keys {
			if i == 3 {
				fmt.Fprintf(&b, "\n  (%d more keys with counterexamples in results.json)", len(keys)-i)
				break
			}
			fmt.Fprintf(&b, "\n  counterexample for key %q (%d ops, still not linearizable):", k, len(ops[k]))
			for _, o := range ops[k] {
				fmt.Fprintf(&b, "\n    %s", o.Describe())
			}
		}
	}
	if res.Error != "" {
		fmt.Fprintf(&b, "\n  harness: %s", firstLine(res.Error))
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// optionsJSON is o as test.json stores it: every option by its JSON name.
func optionsJSON(o Options) map[string]json.RawMessage {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err) // Options holds only plain data
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}
