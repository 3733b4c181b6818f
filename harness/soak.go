package harness

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/results"
	"github.com/raftcheck/harness/targets"
	"github.com/raftcheck/harness/workloads"
)

// Matrix is the set of test configurations a soak cycles through.
type Matrix struct {
	// Targets are target specs (agent, consul, consul@X.Y.Z); empty: the base options' target.
	Targets   []string   `json:"targets,omitempty"`
	Nemesis   [][]string `json:"nemesis"`
	Workloads []string   `json:"workloads"`
	ReadModes []string   `json:"read_modes"`
	Nodes     []int      `json:"nodes"`

	// NemesisTogether[i] runs the kinds of Nemesis[i] at the same time (a "+" choice, or all).
	NemesisTogether []bool `json:"nemesis_together,omitempty"`
}

// DefaultMatrix covers every fault alone, every fault one at a time and every fault at the same
// time, both workloads, the two linearizable read modes, and 3 and 5 nodes.
func DefaultMatrix() Matrix {
	return Matrix{
		Nemesis: [][]string{{"partition"}, {"kill"}, {"pause"}, {"restart"}, {"membership"}, {"loss"}, {"power"},
			{"partition", "kill", "pause", "restart", "membership", "loss", "power"},
			{"partition", "kill", "pause", "restart", "membership", "loss", "power"}},
		Workloads: workloads.Names(),
		ReadModes: []string{"consistent", "default"},
		Nodes:     []int{3, 5},

		NemesisTogether: []bool{8: true}, // the last set: every fault at the same time
	}
}

// ParseMatrix narrows the default matrix: "target=agent|consul;nemesis=partition|kill,pause|kill+pause;
// workload=register;read-mode=consistent;nodes=3" ('|' separates choices; a nemesis choice is a
// --nemesis spec: ',' joins faults drawn one at a time, '+' faults at the same time).
func ParseMatrix(spec string) (Matrix, error) {
	m := DefaultMatrix()
	if strings.TrimSpace(spec) == "" {
		return m, nil
	}
	for _, part := range strings.Split(spec, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return m, usagef("--matrix: %q is not key=value|value…", part)
		}
		choices := strings.Split(v, "|")
		switch k {
		case "target":
			m.Targets = nil
			for _, c := range choices {
				t, err := targets.Parse(c)
				if err != nil {
					return m, usagef("--matrix: %v", err)
				}
				m.Targets = append(m.Targets, t.String())
			}
		case "nemesis":
			m.Nemesis, m.NemesisTogether = nil, nil
			for _, c := range choices {
				spec, err := nemesis.ParseSpec(c)
				if err != nil {
					return m, usagef("--matrix: %v", err)
				}
				m.Nemesis = append(m.Nemesis, spec.Faults)
				m.NemesisTogether = append(m.NemesisTogether, spec.Together)
			}
		case "workload":
			m.Workloads = choices
		case "read-mode":
			m.ReadModes = choices
		case "nodes":
			m.Nodes = nil
			for _, c := range choices {
				n, err := strconv.Atoi(c)
				if err != nil {
					return m, usagef("--matrix: nodes=%q is not a number", c)
				}
				m.Nodes = append(m.Nodes, n)
			}
		default:
			return m, usagef("--matrix: unknown key %q (use target, nemesis, workload, read-mode, nodes)", k)
		}
	}
	return m, nil
}

// configs expands the matrix into option sets, in a fixed order.
func (m Matrix) configs(base Options) []Options {
	var out []Options
	tgts := m.Targets
	if len(tgts) == 0 {
		tgts = []string{base.Target}
	}
	for _, t := range tgts {
		for _, n := range m.Nodes {
			for _, wl := range m.Workloads {
				for _, rm := range m.ReadModes {
					for i, nem := range m.Nemesis {
						o := base
						o.Target, o.Nodes, o.Workload, o.ReadMode, o.Nemesis = t, n, wl, rm, nem
						o.NemesisTogether = i < len(m.NemesisTogether) && m.NemesisTogether[i]
						o.Name = fmt.Sprintf("soak-%dn-%s", n, o.DefaultName())
						if rm != "consistent" {
							o.Name += "-" + rm
						}
						out = append(out, o)
					}
				}
			}
		}
	}
	return out
}

// SoakOptions control a soak.
type SoakOptions struct {
	Duration   time.Duration // stop starting new tests after this long
	Count      int           // stop after this many tests (0: no limit)
	KeepGoing  bool          // continue after an invalid run
	KeepPassed int           // keep only the newest N passing run folders (-1: keep all)
	Seed       int64         // first seed; each test uses the next
}

// SoakRun is one test of a soak.
type SoakRun struct {
	Name    string           `json:"name"`
	Seed    int64            `json:"seed"`
	Outcome string           `json:"outcome"` // valid, invalid, unknown, crashed
	Dir     string           `json:"dir"`
	Reason  string           `json:"reason,omitempty"`
	Seconds float64          `json:"seconds"`
	Valid   checker.Validity `json:"valid"`
}

// SoakSummary is the soak's summary (also written as JSON).
type SoakSummary struct {
	Start  time.Time      `json:"start"`
	End    time.Time      `json:"end"`
	Runs   []SoakRun      `json:"runs"`
	Counts map[string]int `json:"counts"`
}

// Soak runs test after test with new seeds over the matrix until the duration or count is
// reached, an invalid run is found (unless KeepGoing), or ctx is cancelled.
func Soak(ctx context.Context, base Options, m Matrix, so SoakOptions, log io.Writer) (*SoakSummary, error) {
	cfgs := m.configs(base)
	if len(cfgs) == 0 {
		return nil, usagef("--matrix selects no configuration")
	}
	for i := range cfgs {
		if err := cfgs[i].Validate(); err != nil {
			return nil, err
		}
	}
	sum := &SoakSummary{Start: time.Now(), Counts: map[string]int{}}
	seed := so.Seed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1e9
	}
	var order []int
	for i := 0; ctx.Err() == nil; i++ {
		if so.Count > 0 && i >= so.Count || so.Duration > 0 && time.Since(sum.Start) >= so.Duration {
			break
		}
		if i%len(cfgs) == 0 {
			order = soakOrder(len(cfgs), seed, i/len(cfgs))
		}
		o := cfgs[order[i%len(cfgs)]]
		o.Seed = seed + int64(i)
		fmt.Fprintf(log, "soak: test %d: %s seed %d\n", i+1, o.Name, o.Seed)
		t0 := time.Now()
		out, err := Run(ctx, o, log)
		sr := SoakRun{Name: o.Name, Seed: o.Seed, Seconds: time.Since(t0).Seconds()}
		if out != nil {
			sr.Dir, sr.Valid = out.Dir, out.Results.Valid
			sr.Reason = FirstFailure(out.Results)
		}
		switch {
		case ctx.Err() != nil:
			sr.Outcome = "crashed"
			sr.Reason = "interrupted"
		case err != nil:
			sr.Outcome, sr.Reason = "crashed", firstLine(err.Error())
		case sr.Valid == checker.Valid:
			sr.Outcome = "valid"
		case sr.Valid == checker.Invalid:
			sr.Outcome = "invalid"
		default:
			sr.Outcome = "unknown"
		}
		sum.Runs = append(sum.Runs, sr)
		sum.Counts[sr.Outcome]++
		fmt.Fprintf(log, "soak: test %d: %s (%.0fs) %s\n", i+1, sr.Outcome, sr.Seconds, sr.Dir)
		if so.KeepPassed >= 0 {
			prunePassed(sum.Runs, so.KeepPassed)
		}
		if sr.Outcome == "invalid" && !so.KeepGoing {
			break
		}
	}
	sum.End = time.Now()
	return sum, nil
}

// soakOrder is the order of the matrix's n configurations in one cycle of a soak: a permutation
// drawn from the soak's seed and the cycle's number. Every configuration runs once per cycle, and a
// soak that ends before its first cycle does (the whole matrix of both targets takes hours) has
// still drawn from all of it, not only from the first target's first workload.
func soakOrder(n int, seed int64, cycle int) []int {
	return rand.New(rand.NewPCG(uint64(seed), uint64(cycle))).Perm(n)
}

// FirstFailure is the run's one-line reason, res.Reason(): the first checker in checker.Reasons'
// order ("checker: error"), else the harness error's first line.
func FirstFailure(res results.Results) string { return res.Reason() }

// prunePassed deletes the folders of all but the newest keep valid runs.
func prunePassed(runs []SoakRun, keep int) {
	passed := 0
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Outcome != "valid" || runs[i].Dir == "" {
			continue
		}
		passed++
		if passed > keep {
			if _, err := os.Stat(runs[i].Dir); err == nil {
				_ = os.RemoveAll(runs[i].Dir)
				runs[i].Dir += " (pruned)"
			}
		}
	}
}

// ExitOutcome is Jepsen's test-all rule: any crash beats any unknown beats any invalid beats valid.
func (s *SoakSummary) ExitOutcome() string {
	for _, o := range []string{"crashed", "unknown", "invalid"} {
		if s.Counts[o] > 0 {
			return o
		}
	}
	return "valid"
}

// WriteText prints the summary as Jepsen's test-all does: counts, then runs by outcome.
func (s *SoakSummary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "soak: %d tests in %s\n", len(s.Runs), s.End.Sub(s.Start).Round(time.Second))
	for _, o := range []string{"valid", "invalid", "unknown", "crashed"} {
		fmt.Fprintf(w, "# %s: %d\n", o, s.Counts[o])
		for _, r := range s.Runs {
			if r.Outcome == o && o != "valid" {
				fmt.Fprintf(w, "  %s seed %d  %s  %s\n", r.Name, r.Seed, r.Dir, r.Reason)
			}
		}
	}
}

// WriteFiles writes summary.json and summary.txt into dir.
func (s *SoakSummary) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := results.WriteJSON(filepath.Join(dir, "summary.json"), s); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "summary.txt"))
	if err != nil {
		return err
	}
	s.WriteText(f)
	return f.Close()
}
