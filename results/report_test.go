package results

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

func TestFaultWindows(t *testing.T) {
	var h hist
	h.fault(1, "partition", history.EventStart, "n1")
	h.fault(1.5, "kill", history.EventStart, "n2")
	h.fault(2, "kill", history.EventStart, "n3")
	h.add(2.2, history.NemesisProcess, history.Info, history.FPhase, "", history.NemesisEvent{Event: history.PhaseHeal})
	h.fault(2.3, history.FHeal, history.EventStart)
	h.fault(2.4, history.FHeal, history.EventEnd)
	h.fault(2.5, "kill", history.EventEnd, "n3") // closes the n3 window, not the older n2 one
	h.fault(3, "partition", history.EventEnd, "n1")
	h.fault(3.5, "kill", history.EventEnd, "n2")
	h.fault(4, "pause", history.EventStart, "n1") // never ends
	h.fault(4.5, "loss", history.EventEnd, "n1")  // end without start: ignored
	h.add(9, 0, history.Invoke, "read", "k", nil)
	got := faultWindows(h.ops)
	want := []faultWindow{
		{F: "partition", Start: 1e9, End: 3e9, Targets: []string{"n1"}},
		{F: "kill", Start: 1.5e9, End: 3.5e9, Targets: []string{"n2"}},
		{F: "kill", Start: 2e9, End: 2.5e9, Targets: []string{"n3"}},
		{F: "pause", Start: 4e9, End: 9e9, Targets: []string{"n1"}}, // never closed: ends at the last line
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("windows:\n got %+v\nwant %+v", got, want)
	}
}

func TestFoldAndCount(t *testing.T) {
	var h hist
	h.add(0, 0, history.Invoke, "write", "a", 1)
	h.add(0, 1, history.Invoke, "read", "a", nil)
	h.add(1, 0, history.OK, "write", "a", 1)
	h.add(2, 1, history.Info, "read", "a", nil, "n1", "timeout")
	h.add(3, 2, history.Invoke, "write", "a", 2) // never completes
	h.add(3, 3, history.OK, "write", "a", 5)     // completion without invoke: ignored
	cops, end := foldOps(h.ops)
	if end != 3e9 || len(cops) != 3 {
		t.Fatalf("end %d, %d ops", end, len(cops))
	}
	if c := cops[1]; c.Type != history.Info || c.Return != 2e9 || c.Error != "timeout" || c.Done != 3 {
		t.Fatalf("read folded wrong: %+v", c)
	}
	if cops[2].Completed() {
		t.Fatalf("pending write counted as completed")
	}
	counts := countOps(cops)
	want := []opCount{{F: "read", Info: 1}, {F: "write", OK: 1, Incomplete: 1}, {F: "all", OK: 1, Info: 1, Incomplete: 1}}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts %+v, want %+v", counts, want)
	}
}

func TestExcerpt(t *testing.T) {
	var h hist
	// Five old ops on k, of which the last four completed ones are kept.
	for i := 0; i < 5; i++ {
		h.add(float64(i), 0, history.Invoke, "write", "k", i)
		h.add(float64(i)+0.5, 0, history.OK, "write", "k", i)
	}
	h.add(10, 1, history.Invoke, "read", "k", nil)
	h.add(10.2, 2, history.Invoke, "write", "k", 9) // overlaps the anomaly
	h.add(10.3, 3, history.Invoke, "write", "k", 8) // never completes: overlaps
	h.add(10.4, 4, history.Invoke, "read", "other", nil)
	bad := h.add(11, 1, history.OK, "read", "k", 7)
	h.add(11.5, 2, history.OK, "write", "k", 9)
	h.add(11.6, 4, history.OK, "read", "other", nil)
	h.add(20, 5, history.Invoke, "read", "k", nil) // after: not kept
	h.add(21, 5, history.OK, "read", "k", 9)
	cops, end := foldOps(h.ops)
	ex := excerpt(cops, "k", bad, end)
	var got []string
	for _, o := range ex {
		got = append(got, describe(o))
	}
	want := []string{"write(1)", "write(2)", "write(3)", "write(4)", "read → 7", "write(9)", "write(8) (no completion)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("excerpt %q, want %q", got, want)
	}
	if excerpt(cops, "k", 9999, end) != nil || excerpt(cops, "nokey", bad, end) != nil {
		t.Fatalf("excerpt of an unknown anomaly should be nil")
	}
	tl := buildTimeline(ex, bad, end, nil)
	if len(tl.Lanes) != 4 || len(tl.Bars) != len(ex) {
		t.Fatalf("timeline: %d lanes, %d bars", len(tl.Lanes), len(tl.Bars))
	}
	marked := 0
	for _, b := range tl.Bars {
		if b.Anomaly {
			marked++
		}
	}
	if marked != 1 {
		t.Fatalf("%d bars marked as the anomaly, want 1", marked)
	}
}

func TestExcerptCapped(t *testing.T) {
	var h hist
	h.add(0, 0, history.Invoke, "read", "k", nil)
	for p := 1; p <= 100; p++ {
		h.add(0.1, history.Process(p), history.Invoke, "write", "k", p) // all pending, all overlap
	}
	bad := h.add(1, 0, history.OK, "read", "k", 3)
	cops, end := foldOps(h.ops)
	ex := excerpt(cops, "k", bad, end)
	if len(ex) != excerptMax || ex[0].Index != 0 {
		t.Fatalf("capped excerpt has %d ops starting at %d, want %d from the anomaly", len(ex), ex[0].Index, excerptMax)
	}
}

func TestDownsample(t *testing.T) {
	var pts []point
	for i := 0; i < 10000; i++ {
		pts = append(pts, point{float64(i) / 100, float64(i % 97)})
	}
	pts[5000].y = 1e6 // an outlier must survive
	got := downsample(pts, 300)
	if len(got) > 300 || len(got) < 200 {
		t.Fatalf("downsampled to %d points", len(got))
	}
	found := false
	for i, p := range got {
		found = found || p.y == 1e6
		if i > 0 && p.x < got[i-1].x {
			t.Fatalf("points out of order at %d", i)
		}
	}
	if !found {
		t.Fatalf("outlier dropped")
	}
	if len(downsample(pts[:10], 300)) != 10 {
		t.Fatalf("small series changed")
	}
}

func TestReproduceCommand(t *testing.T) {
	for _, c := range []struct {
		info TestInfo
		want string
	}{
		{TestInfo{Seed: 42, CommandLine: []string{"./harness", "run", "--nemesis", "partition", "--seed", "7", "--test-count=5", "--junit", "out.xml", "--name", "a b"}},
			"harness run --nemesis partition --name 'a b' --seed 42"},
		{TestInfo{Seed: -3, CommandLine: []string{"harness", "run", "--seed=1"}}, "harness run --seed -3"},
		{TestInfo{Seed: 9, CommandLine: []string{"harness", "soak"}, Options: map[string]json.RawMessage{
			"nodes": json.RawMessage("5"), "time_limit": json.RawMessage("30000000000"), "nemesis": json.RawMessage(`["kill","pause"]`),
			"seed": json.RawMessage("1"), "agent_binary": json.RawMessage(`""`), "unsafe": json.RawMessage("null"), "agent_args": json.RawMessage(`["-x=1"]`)}},
			"harness run --agent-arg=-x=1 --nemesis=kill,pause --nodes=5 --time-limit=30s --seed 9"},
	} {
		if got := ReproduceCommand(c.info); got != c.want {
			t.Errorf("ReproduceCommand(%v)\n got %s\nwant %s", c.info.CommandLine, got, c.want)
		}
	}
}

func TestWriteReport(t *testing.T) {
	fx := makeRun(t, t.TempDir(), "register-partition", "20260102T030405", false)
	if err := WriteReport(fx.dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(fx.dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		"Verdict: invalid",
		"harness run --nemesis partition,kill --time-limit=6s --seed 42", // the reproduction
		`key &#34;r1&#34;: read 2`,                                       // why
		`href="./linear-r1.html"`,                                        // porcupine
		`href="./nodes/n1.log"`, `href="./nodes/n3.log"`,                 // logs
		"read → 2", "write(3) fail", // the excerpt
		"recovery_seconds", "setup", // liveness, phases
		"partition", "kill", // fault windows
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("report has %d <svg> elements, want 3 (latency, throughput, timeline)", n)
	}
	if strings.Contains(page, "<?xml") || strings.Contains(strings.ToLower(page), "<script") {
		t.Errorf("report has an XML prolog or a script")
	}
	if len(b) > 1<<20 {
		t.Errorf("report is %d bytes", len(b))
	}
	// The read at 2.0 s does not overlap the anomaly and must not be in the excerpt table.
	if strings.Contains(page, "read → 1") {
		t.Errorf("excerpt holds an op outside the anomaly's window")
	}
}

func TestWriteReportMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	if !strings.Contains(string(b), "incomplete") {
		t.Fatalf("report of an empty folder should say incomplete")
	}
}

func TestWriteReportLargeHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("large history")
	}
	dir := t.TempDir()
	var h hist
	for i := 0; i < 100000; i++ {
		p := history.Process(i % 16)
		t0 := float64(i) * 0.001
		h.add(t0, p, history.Invoke, "write", "k", i)
		h.add(t0+0.0005+float64(i%13)*0.0001, p, history.OK, "write", "k", i)
	}
	h.write(t, filepath.Join(dir, HistoryFile))
	if err := WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, ReportFile))
	if st.Size() > 600<<10 {
		t.Fatalf("report of 100k ops is %d bytes; downsampling should keep it small", st.Size())
	}
	t.Logf("report of 100000 ops: %d bytes", st.Size())
}

// TestReportEscapes sends hostile strings through keys, errors, node names, fault kinds,
// options, checker reasons and logs, and checks that the page has no element or attribute that
// could run them.
func TestReportEscapes(t *testing.T) {
	fx := makeRun(t, t.TempDir(), "evil", "20260102T030405", true)
	res := readResults(t, fx.dir)
	// Make the hostile key the anomaly, so it reaches the timeline too.
	lin := res.Checkers[checker.NameLinearizable]
	lin.FirstAnomaly.Key = evilScript
	lin.FirstAnomaly.Index = fx.ops[len(fx.ops)-4].Index
	res.Checkers[checker.NameLinearizable] = lin
	if err := WriteJSON(filepath.Join(fx.dir, ResultsFile), res); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(fx.dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(fx.dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	assertInert(t, string(b))
	if !strings.Contains(string(b), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the hostile key is not shown (escaped)")
	}
}

func readResults(t *testing.T, dir string) Results {
	t.Helper()
	var res Results
	if err := ReadJSON(filepath.Join(dir, ResultsFile), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// assertInert parses page as HTML, as a browser would, and fails on any script, image, frame,
// object or foreignObject element, any on* attribute and any javascript: URL.
func assertInert(t *testing.T, page string) {
	t.Helper()
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Errorf("page contains <script")
	}
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		switch strings.ToLower(tok.Data) {
		case "script", "img", "iframe", "object", "embed", "foreignobject", "image", "use":
			t.Errorf("page has a <%s> element", tok.Data)
		}
		for _, a := range tok.Attr {
			k := strings.ToLower(a.Key)
			if strings.HasPrefix(k, "on") {
				t.Errorf("<%s> has event attribute %s=%q", tok.Data, a.Key, a.Val)
			}
			if strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:") {
				t.Errorf("<%s %s> is a javascript: URL", tok.Data, a.Key)
			}
		}
	}
}

func TestSetElements(t *testing.T) {
	for _, d := range []any{
		map[string]any{"lost": 3, "lost_examples": []int{4, 5}, "unexpected": 0},
		map[string]any{"lost": []int{4, 5, 6}, "unexpected": []int{}},
	} {
		s, ok := setElements(checker.NameSet, checker.Result{Valid: checker.Invalid, Details: d})
		if !ok || s.LostN != 3 || s.UnexpectedN != 0 || len(s.Lost) < 2 || s.Lost[0] != "4" || len(s.Unexpected) != 0 {
			t.Errorf("setElements(%v) = %+v, %v", d, s, ok)
		}
	}
	if _, ok := setElements(checker.NameStats, checker.Result{Details: map[string]any{"ok": 1}}); ok {
		t.Errorf("stats details taken for a set")
	}
}
