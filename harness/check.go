package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
	"github.com/raftcheck/harness/history/edn"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/workloads"
)

// CheckConfig says how a history is judged (run's check phase, harness check).
type CheckConfig struct {
	// Workload names the workload whose checkers judge the history ("": inferred from the ops).
	Workload string
	// Timeout bounds the linearizability check; expiry gives "unknown", never valid.
	Timeout time.Duration
	// MemoryLimit bounds the Go heap of the linearizability search in bytes; past it the keys
	// not yet decided are "unknown" (0: checker.DefaultMemoryLimit; negative: no limit).
	MemoryLimit int64
	// Checkers, when not empty, restricts the checkers to these names (see CheckerNames).
	Checkers []string
}

// CheckConfig is the part of o that says how its history is judged.
func (o Options) CheckConfig() CheckConfig {
	return CheckConfig{Workload: o.Workload, Timeout: o.CheckTimeout, MemoryLimit: o.CheckMemory, Checkers: o.Checkers}
}

// memoryBounded is a checker whose search can be bounded in memory (the register checker).
type memoryBounded interface{ LimitMemory(bytes int64) }

// CheckerNames lists the checkers a user can ask for by name, over all workloads, sorted.
func CheckerNames() []string {
	seen := map[string]bool{}
	for _, w := range workloads.Names() {
		wl, err := workloads.New(w)
		if err != nil {
			continue
		}
		for _, c := range withCommonCheckers(wl.Checkers(workloads.CheckOptions{})) {
			seen[c.Name()] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkers are the workload's checkers (with stats and liveness), restricted to cfg.Checkers.
func checkers(wl workloads.Workload, cfg CheckConfig, dir string) ([]checker.Checker, error) {
	cs := withCommonCheckers(wl.Checkers(workloads.CheckOptions{Timeout: cfg.Timeout, VisualizeDir: dir}))
	for _, c := range cs {
		if m, ok := c.(memoryBounded); ok && cfg.MemoryLimit != 0 {
			m.LimitMemory(cfg.MemoryLimit)
		}
	}
	if len(cfg.Checkers) == 0 {
		return cs, nil
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name())
	}
	var out []checker.Checker
	for _, want := range cfg.Checkers {
		i := slices.Index(names, want)
		switch {
		case i >= 0:
			out = append(out, cs[i])
		case slices.Contains(CheckerNames(), want):
			return nil, usagef("--checker %s does not apply to the %s workload (its checkers: %s)", want, wl.Name(), strings.Join(names, ", "))
		default:
			return nil, usagef("unknown --checker %q (valid: %s)", want, strings.Join(CheckerNames(), ", "))
		}
	}
	return out, nil
}

// CheckDir checks DIR/history.jsonl with the workload's checkers (inferred when cfg.Workload is
// ""), and returns the results; phases of an earlier results.json are kept. It writes nothing
// but the checkers' own files (visualisations). When every checker can take the history line by
// line (checker.Accumulator) the history is never held in memory.
func CheckDir(ctx context.Context, dir string, cfg CheckConfig) (results.Results, error) {
	path := filepath.Join(dir, results.HistoryFile)
	unknown := results.Results{Valid: checker.Unknown}
	workload, guessed := cfg.Workload, false
	if workload == "" {
		fs, err := scanFs(path, inferPrefix)
		if err != nil {
			return unknown, err
		}
		if workload, err = inferFrom(fs); err != nil {
			return unknown, usagef("%v (give --workload)", err)
		}
		guessed = true
	}
	res, fs, err := checkWorkload(ctx, path, dir, workload, cfg)
	if err != nil || !guessed {
		return res, err
	}
	// The guess came from the first lines; the whole history may name another workload.
	whole, err := inferFrom(fs)
	switch {
	case err != nil:
		return unknown, usagef("%v (give --workload)", err)
	case whole != workload:
		res, _, err = checkWorkload(ctx, path, dir, whole, cfg)
	}
	return res, err
}

// inferPrefix is how many lines CheckDir reads to guess the workload before checking.
const inferPrefix = 100_000

// errEnough stops a scan early.
var errEnough = errors.New("enough lines")

// scanFs returns the distinct fs of the client ops among the first lines (all: limit < 0).
func scanFs(path string, limit int) (map[string]bool, error) {
	fs := map[string]bool{}
	n := 0
	err := history.ScanFile(path, func(op *history.Op) error {
		if !op.IsNemesis() {
			fs[op.F] = true
		}
		if n++; limit >= 0 && n >= limit {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return fs, err
}

// inferFrom is workloads.Infer of a history with one op of each f.
func inferFrom(fs map[string]bool) (string, error) {
	ops := make([]history.Op, 0, len(fs))
	for f := range fs {
		ops = append(ops, history.Op{F: f, Type: history.Invoke})
	}
	slices.SortFunc(ops, func(a, b history.Op) int { return strings.Compare(a.F, b.F) })
	return workloads.Infer(ops)
}

// accumulating is a checker that can take a history line by line.
type accumulating interface {
	Accumulate() checker.Accumulator
}

// checkWorkload checks the history at path with the checkers of workload and also returns the
// distinct fs of its client ops.
func checkWorkload(ctx context.Context, path, dir, workload string, cfg CheckConfig) (results.Results, map[string]bool, error) {
	unknown := results.Results{Valid: checker.Unknown}
	wl, err := workloads.New(workload)
	if err != nil {
		return unknown, nil, usagef("%v", err)
	}
	cs, err := checkers(wl, cfg, dir)
	if err != nil {
		return unknown, nil, err
	}
	res := results.Results{Checked: time.Now()}
	var old results.Results
	if results.ReadJSON(filepath.Join(dir, results.ResultsFile), &old) == nil {
		res.Phases, res.Error = old.Phases, old.Error
	}
	fs := map[string]bool{}
	accs := make(map[string]checker.Accumulator, len(cs))
	for _, c := range cs {
		if a, ok := c.(accumulating); ok {
			accs[c.Name()] = a.Accumulate()
		}
	}
	var windows []checker.Window
	if len(accs) == len(cs) {
		var nemesis []history.Op // and the last line, whose time ends open fault windows
		var last history.Op
		err := history.ScanFile(path, func(op *history.Op) error {
			res.Ops++
			if op.IsNemesis() {
				c := *op
				c.Value = slices.Clone(op.Value)
				nemesis = append(nemesis, c)
			} else {
				fs[op.F] = true
			}
			for _, a := range accs {
				a.Add(op)
			}
			last = *op
			last.Value = nil
			return nil
		})
		if err != nil {
			return unknown, nil, err
		}
		res.Checkers = checker.ResultAll(ctx, accs)
		windows = checker.FaultWindows(append(nemesis, last))
	} else {
		ops, err := history.ReadFile(path)
		if err != nil {
			return unknown, nil, err
		}
		for i := range ops {
			if !ops[i].IsNemesis() {
				fs[ops[i].F] = true
			}
		}
		res.Ops = len(ops)
		res.Checkers = checker.RunAll(ctx, cs, ops)
		windows = checker.FaultWindows(ops)
	}
	res.Valid = checker.Merge(res.Checkers)
	for _, w := range windows {
		res.Faults = append(res.Faults, results.Fault{F: w.F, Start: float64(w.Start) / 1e9, End: float64(w.End) / 1e9, Targets: w.Targets})
	}
	return res, fs, nil
}

// withCommonCheckers adds stats and liveness unless the workload already has them.
func withCommonCheckers(cs []checker.Checker) []checker.Checker {
	have := map[string]bool{}
	for _, c := range cs {
		have[c.Name()] = true
	}
	for _, c := range []checker.Checker{checker.Stats{}, checker.Liveness{}} {
		if !have[c.Name()] {
			cs = append(cs, c)
		}
	}
	return cs
}

// Recheck re-checks a stored run and rewrites its results.json and report.html.
func Recheck(ctx context.Context, dir string, cfg CheckConfig) (results.Results, error) {
	if st, err := os.Stat(filepath.Join(dir, results.HistoryFile)); err != nil || st.IsDir() {
		return results.Results{Valid: checker.Unknown}, usagef("%s is not a run folder: no %s", dir, results.HistoryFile)
	}
	res, err := CheckDir(ctx, dir, cfg)
	if err != nil {
		return res, err
	}
	return res, writeResults(dir, res)
}

// ImportJepsen reads a Jepsen EDN history (history.edn: register histories, independent keys
// included, and set histories), stores it as a new run folder under store (test name
// "jepsen"), checks it like a stored run and writes results.json and report.html there.
func ImportJepsen(ctx context.Context, path, store string, cfg CheckConfig) (string, results.Results, error) {
	unknown := results.Results{Valid: checker.Unknown}
	f, err := os.Open(path)
	if err != nil {
		return "", unknown, usagef("cannot read the Jepsen history: %v", err)
	}
	ops, err := edn.ReadJepsen(f)
	f.Close()
	if err != nil {
		return "", unknown, usagef("%s is not a Jepsen EDN history: %v", path, err)
	}
	if cfg.Workload == "" {
		if cfg.Workload, err = workloads.Infer(ops); err != nil {
			return "", unknown, usagef("%s: %v (give --workload)", path, err)
		}
	}
	start := time.Now()
	dir, err := results.NewRunDir(store, "jepsen", start)
	if err != nil {
		return "", unknown, err
	}
	if err := writeHistoryFile(filepath.Join(dir, results.HistoryFile), ops); err != nil {
		return dir, unknown, err
	}
	abs, _ := filepath.Abs(path)
	opts := map[string]any{"workload": cfg.Workload, "format": "jepsen", "source": abs, "target": "jepsen"}
	info := results.TestInfo{Options: map[string]json.RawMessage{}, RunID: NewRunID(), Start: start, CommandLine: os.Args,
		TargetVersion: "history " + filepath.Base(path)}
	for k, v := range opts {
		info.Options[k] = history.MustValue(v)
	}
	if err := results.WriteJSON(filepath.Join(dir, results.TestFile), info); err != nil {
		return dir, unknown, err
	}
	res, err := Recheck(ctx, dir, cfg)
	if err != nil {
		return dir, res, err
	}
	return dir, res, results.MarkLatest(store, dir)
}

// writeHistoryFile writes ops as history.jsonl, keeping their indexes and times.
func writeHistoryFile(path string, ops []history.Op) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range ops {
		if err := enc.Encode(&ops[i]); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
