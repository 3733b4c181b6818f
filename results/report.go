package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// WriteReport renders report.html in dir from the run's stored files (test.json, results.json,
// history.jsonl); it also links the node logs under nodes/ and porcupine's linear-*.html files
// when they exist. A missing or broken file is reported on the page rather than failing the
// report; only failing to write report.html is an error.
//
// The page is self-contained and offline: inline CSS and SVG, no script, and a
// Content-Security-Policy that forbids loading anything. Every piece of data from the run is
// escaped by html/template.
func WriteReport(dir string) error {
	v := buildReport(dir)
	tmp := filepath.Join(dir, ReportFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	err = renderReport(f, v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ReportFile)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func renderReport(w io.Writer, v *reportView) error {
	return reportTmpl.Execute(w, v)
}

// Display limits that keep the page small.
const (
	maxDetailsChars = 6000
	maxSetElements  = 200
)

type reportView struct {
	Dir         string
	Verdict     string // valid, invalid, unknown or incomplete: the CSS class
	VerdictText string
	Why         []whyRow
	Problems    []string // files that could not be read, plots that could not be drawn
	HarnessErr  string

	HasTest  bool
	Test     TestInfo
	Command  string
	Options  [][2]string
	Duration float64 // s, last history line
	Ops      int

	LatencySVG template.HTML
	RateSVG    template.HTML
	Faults     []faultWindow

	Anomaly  *anomalyView
	Sets     []setView
	Locks    []lockTimelineView // lock workload: holders per lock over the run
	Checkers []checkerRow
	Counts   []opCount
	Phases   []Phase
	Recovery [][2]string
	Logs     []string
	Visuals  []string
}

type whyRow struct{ Checker, Reason string }

type checkerRow struct {
	Name    string
	Valid   string
	Error   string
	Anomaly *checker.Anomaly
	Details string
	// Counterexamples are the register checker's shrunk histories of invalid keys.
	Counterexamples []counterexampleView
}

type counterexampleView struct {
	Key string
	Ops []checker.OpBrief
}

type anomalyView struct {
	Checker     string
	Key         string
	Description string
	Index       int64
	Process     history.Process
	Time        float64
	Excerpt     []clientOp
	Timeline    timeline
	Visual      string // porcupine's file for the key, relative to the run folder
}

type setView struct {
	Checker            string
	Lost, Unexpected   []string
	LostN, UnexpectedN int
}

// verdictClass maps a verdict to the page's wording and CSS class.
func verdictClass(v checker.Validity) (class, text string) {
	switch v {
	case checker.Valid:
		return "valid", "valid"
	case checker.Invalid:
		return "invalid", "invalid"
	}
	return "unknown", "unknown"
}

func buildReport(dir string) *reportView {
	v := &reportView{Dir: filepath.Base(filepath.Clean(dir))}
	if abs, err := filepath.Abs(dir); err == nil {
		v.Dir = filepath.Base(filepath.Dir(abs)) + "/" + filepath.Base(abs)
	}
	var res Results
	if err := ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
		v.Verdict, v.VerdictText = "incomplete", "incomplete (no results)"
		v.Problems = append(v.Problems, "results: "+err.Error())
	} else {
		v.Verdict, v.VerdictText = verdictClass(res.Valid)
	}
	v.HarnessErr = res.Error
	v.Phases = res.Phases
	v.Ops = res.Ops

	if err := ReadJSON(filepath.Join(dir, TestFile), &v.Test); err != nil {
		v.Problems = append(v.Problems, "test options: "+err.Error())
	} else {
		v.HasTest = true
		v.Command = ReproduceCommand(v.Test)
		v.Options = optionRows(v.Test.Options)
	}

	// The history is folded as it is read, never held whole; a lock history (it has acquire
	// ops, as workloads.Infer tells) is read again whole for its timelines.
	hint := 0
	if st, err := os.Stat(filepath.Join(dir, HistoryFile)); err == nil {
		hint = int(st.Size() / 190) // a client op is two lines of about 95 bytes
	}
	f := newOpFolder(hint, false)
	if err := history.ScanFile(filepath.Join(dir, HistoryFile), f.add); err != nil {
		v.Problems = append(v.Problems, err.Error())
	}
	ops, cops, end := f.lines(), f.ops, f.end
	var err error
	if f.acquire {
		if all, err := history.ReadFile(filepath.Join(dir, HistoryFile)); err == nil {
			ops = all
		}
	}
	v.Duration = float64(end) / 1e9
	v.Faults = faultWindows(ops)
	if len(ops) == 0 && len(res.Faults) > 0 {
		for _, f := range res.Faults {
			v.Faults = append(v.Faults, faultWindow{F: f.F, Start: int64(f.Start * 1e9), End: int64(f.End * 1e9), Targets: f.Targets})
		}
	}
	v.Counts = countOps(cops)
	v.Locks = lockTimelines(ops, end, v.Faults)
	if v.LatencySVG, err = latencyPlot(cops, v.Faults, end); err != nil {
		v.Problems = append(v.Problems, err.Error())
	}
	if v.RateSVG, err = ratePlot(cops, v.Faults, end); err != nil {
		v.Problems = append(v.Problems, err.Error())
	}

	v.Visuals = globRel(dir, "linear-*.html")
	v.Logs = listLogs(dir)

	names := make([]string, 0, len(res.Checkers))
	for name := range res.Checkers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := res.Checkers[name]
		class, _ := verdictClass(r.Valid)
		row := checkerRow{Name: name, Valid: class, Error: r.Error, Anomaly: r.FirstAnomaly, Details: detailsText(r.Details)}
		if r.NotApplicable != "" {
			row.Valid, row.Error = "not-applicable", r.NotApplicable
		}
		keys, ces := checker.Counterexamples(r)
		for _, k := range keys {
			row.Counterexamples = append(row.Counterexamples, counterexampleView{Key: k, Ops: ces[k]})
		}
		v.Checkers = append(v.Checkers, row)
		if s, ok := setElements(name, r); ok {
			v.Sets = append(v.Sets, s)
		}
		if name == checker.NameLiveness {
			v.Recovery = flatten(r.Details)
		}
	}
	v.Why = why(res)
	v.Anomaly = findAnomaly(res, names, cops, end, v.Faults, v.Visuals)
	return v
}

// why lists the checkers that decided the verdict, in checker.Reasons' order: the invalid ones,
// or, when none is invalid, the unknown ones.
func why(res Results) []whyRow {
	var out []whyRow
	rs := checker.Reasons(res.Checkers)
	for _, r := range rs {
		if r.Valid != rs[0].Valid {
			break // the invalid checkers came first and decided the verdict
		}
		out = append(out, whyRow{Checker: r.Checker, Reason: r.Error})
	}
	return out
}

// findAnomaly builds the excerpt of the first anomaly on a key: the linearizable checker's
// when it has one, else that of any non-valid checker that names a key.
func findAnomaly(res Results, names []string, cops []clientOp, end int64, faults []faultWindow, visuals []string) *anomalyView {
	order := append([]string{checker.NameLinearizable}, names...)
	for _, n := range order {
		r, ok := res.Checkers[n]
		if !ok || r.Valid == checker.Valid || r.FirstAnomaly == nil || r.FirstAnomaly.Key == "" {
			continue
		}
		a := r.FirstAnomaly
		ex := excerpt(cops, a.Key, a.Index, end)
		av := &anomalyView{Checker: n, Key: a.Key, Description: a.Description, Index: a.Index, Process: a.Process,
			Time: float64(a.Time) / 1e9, Excerpt: ex, Visual: visualFor(a, visuals)}
		if len(ex) > 0 {
			av.Timeline = buildTimeline(ex, a.Index, end, faults)
		}
		return av
	}
	return nil
}

// visualFor is the visualisation file the checker recorded for the anomaly
// (checker.Anomaly.Visualization), provided it is one of the run folder's visualisations: a
// name in results.json never links outside the folder or to a file that is not there.
func visualFor(a *checker.Anomaly, visuals []string) string {
	if a.Visualization != "" && slices.Contains(visuals, a.Visualization) {
		return a.Visualization
	}
	return ""
}

// setElements reads the lost and unexpected elements from a set checker's details: counts in
// "lost" and "unexpected" with examples in "lost_examples" and "unexpected_examples"
// (checker.SetDetails), or the element lists themselves in "lost" and "unexpected".
func setElements(name string, r checker.Result) (setView, bool) {
	m, ok := asMap(r.Details)
	if !ok {
		return setView{}, false
	}
	_, okL := m["lost"]
	_, okU := m["unexpected"]
	if !okL && !okU {
		return setView{}, false
	}
	s := setView{Checker: name}
	s.Lost, s.LostN = elements(m["lost"], m["lost_examples"])
	s.Unexpected, s.UnexpectedN = elements(m["unexpected"], m["unexpected_examples"])
	return s, true
}

// elements renders a list of elements (at most maxSetElements) and its full length: the list
// is either v itself or examples, with v the count.
func elements(v, examples any) ([]string, int) {
	list, isList := v.([]any)
	n := len(list)
	if !isList {
		list, _ = examples.([]any)
		n = len(list)
		if f, ok := v.(float64); ok {
			n = int(f)
		}
	}
	var out []string
	for i, e := range list {
		if i >= maxSetElements {
			break
		}
		out = append(out, compact(e))
	}
	return out, n
}

// asMap turns checker details (a struct before a JSON round trip, a map after) into a map.
func asMap(d any) (map[string]any, bool) {
	if d == nil {
		return nil, false
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

// flatten lists the top-level fields of details as name, value.
func flatten(d any) [][2]string {
	m, ok := asMap(d)
	if !ok {
		return nil
	}
	var rows [][2]string
	for k, x := range m {
		rows = append(rows, [2]string{k, history.Truncate(compact(x), 400)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	return rows
}

func compact(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// detailsText is a checker's details as indented JSON, cut to maxDetailsChars.
func detailsText(d any) string {
	if d == nil {
		return ""
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Sprint(d)
	}
	return history.Truncate(string(b), maxDetailsChars)
}

// globRel lists files in dir matching pattern, by name.
func globRel(dir, pattern string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	out := make([]string, 0, len(m))
	for _, p := range m {
		out = append(out, filepath.Base(p))
	}
	sort.Strings(out)
	return out
}

// listLogs lists the regular files under dir/nodes as slash paths relative to dir.
func listLogs(dir string) []string {
	var out []string
	root := filepath.Join(dir, NodesDir)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			rel, rerr := filepath.Rel(dir, p)
			if rerr == nil {
				out = append(out, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	return out
}

func seconds(ns int64) string { return fmt.Sprintf("%.3f", float64(ns)/1e9) }

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"seconds":  seconds,
	"describe": describe,
	"join":     strings.Join,
	"raw":      func(b json.RawMessage) string { return string(b) },
}).Parse(reportHTML))
