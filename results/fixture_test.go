package results

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
	"github.com/raftcheck/harness/history"
)

// Hostile strings that must never execute in a page.
const (
	evilScript = `<script>alert(1)</script>`
	evilImg    = `"><img src=x onerror=alert(1)>`
	evilSVG    = `</svg><script>alert(2)</script>`
)

// hist builds a history line by line, numbering indexes.
type hist struct{ ops []history.Op }

func (h *hist) add(t float64, p history.Process, typ history.Type, f, key string, v any, extra ...string) int64 {
	op := history.Op{Index: int64(len(h.ops)), Time: int64(t * 1e9), Process: p, Type: typ, F: f, Key: key, Value: history.MustValue(v)}
	if len(extra) > 0 {
		op.Node = extra[0]
	}
	if len(extra) > 1 {
		op.Error = extra[1]
	}
	h.ops = append(h.ops, op)
	return op.Index
}

func (h *hist) fault(t float64, f, event string, targets ...string) {
	h.add(t, history.NemesisProcess, history.Info, f, "", history.NemesisEvent{Event: event, Targets: targets})
}

func (h *hist) write(t *testing.T, path string) {
	t.Helper()
	var buf bytes.Buffer
	for _, op := range h.ops {
		b, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixture describes the synthetic run: an invalid register key "r1" (a read of a value never
// written), two fault windows, background traffic on other keys, and hostile strings in keys,
// errors, node names, fault kinds and options.
type fixture struct {
	dir          string
	anomalyIndex int64
	ops          []history.Op
}

// makeRun writes a run folder under <store>/<test>/<stamp>/ and returns it.
func makeRun(t *testing.T, store, test, stamp string, hostile bool) fixture {
	t.Helper()
	dir := filepath.Join(store, test, stamp)
	if err := os.MkdirAll(filepath.Join(dir, NodesDir), 0o755); err != nil {
		t.Fatal(err)
	}
	var h hist
	h.add(0, history.NemesisProcess, history.Info, history.FPhase, "", history.NemesisEvent{Event: history.PhaseWorkload})
	// Background traffic: three processes on keys k0..k2, one op every 20 ms each.
	for i := 0; i < 300; i++ {
		p := history.Process(10 + i%3)
		t0 := 0.02 * float64(i)
		key := []string{"k0", "k1", "k2"}[i%3]
		h.add(t0, p, history.Invoke, "write", key, i)
		lat := 0.002 + 0.001*float64(i%7)
		switch {
		case i%50 == 7:
			h.add(t0+0.5, p, history.Info, "write", key, i, "n2", "timeout")
		case i%40 == 3:
			h.add(t0+lat, p, history.Fail, "write", key, i, "n1", "no leader")
		default:
			h.add(t0+lat, p, history.OK, "write", key, i, "n1")
		}
	}
	h.fault(1.0, "partition", history.EventStart, "n1", "n2")
	// The anomaly on r1: write(1) ok, then a read that returns 2, which nobody wrote.
	h.add(1.1, 0, history.Invoke, "write", "r1", 1)
	h.add(1.2, 0, history.OK, "write", "r1", 1, "n1")
	h.add(1.25, 2, history.Invoke, "write", "r1", 3)
	h.add(1.3, 1, history.Invoke, "read", "r1", nil)
	anomaly := h.add(1.4, 1, history.OK, "read", "r1", 2, "n3")
	h.add(1.5, 2, history.Fail, "write", "r1", 3, "n2", "leader lost")
	h.add(2.0, 0, history.Invoke, "read", "r1", nil) // outside the window: not in the excerpt
	h.add(2.1, 0, history.OK, "read", "r1", 1, "n1")
	h.fault(3.0, "partition", history.EventEnd, "n1", "n2")
	kind := "kill"
	if hostile {
		kind = evilSVG
		h.add(3.1, 5, history.Invoke, "write", evilScript, 9)
		h.add(3.2, 5, history.Fail, "write", evilScript, 9, evilImg, evilImg)
	}
	h.fault(4.0, kind, history.EventStart, "n3")
	h.fault(5.0, kind, history.EventEnd, "n3")
	h.add(6.0, history.NemesisProcess, history.Info, history.FPhase, "", history.NemesisEvent{Event: history.PhaseDone})
	h.write(t, filepath.Join(dir, HistoryFile))

	name := test
	if hostile {
		name = evilSVG + evilImg
	}
	options := map[string]any{"name": name, "nodes": 3, "time_limit": int64(6 * time.Second), "workload": "register",
		"nemesis": []string{"partition", kind}, "seed": 42}
	test1 := map[string]any{"options": options, "seed": 42, "run_id": "abcd1234", "start": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"git_revision": "0123456789abcdef", "command_line": []string{"/usr/bin/harness", "run", "--nemesis", "partition,kill", "--seed", "7", "--time-limit=6s"}}
	if err := WriteJSON(filepath.Join(dir, TestFile), test1); err != nil {
		t.Fatal(err)
	}
	reason := `key "r1": read 2, which no write could have produced`
	if hostile {
		reason += evilImg + evilScript
	}
	res := Results{
		Valid: checker.Invalid,
		Checkers: map[string]checker.Result{
			checker.NameLinearizable: {Valid: checker.Invalid, Error: reason,
				Details: map[string]any{"invalid_keys": []string{"r1"}, "files": []string{"linear-r1.html"}},
				FirstAnomaly: &checker.Anomaly{Index: anomaly, Time: 1.4e9, Key: "r1", Process: 1, Description: reason,
					Visualization: "linear-r1.html"}},
			checker.NameStats:    {Valid: checker.Valid, Details: map[string]any{"ok": 280}},
			checker.NameLiveness: {Valid: checker.Valid, Details: map[string]any{"recovery_seconds": 1.7, "leader": "n2"}},
		},
		Phases: []Phase{{Name: "setup", Seconds: 2.5}, {Name: "workload", Seconds: 6}, {Name: "check", Seconds: 0.1}},
		Ops:    len(h.ops),
	}
	if err := WriteJSON(filepath.Join(dir, ResultsFile), res); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		log := "agent " + n + " started\n"
		if hostile {
			log += evilScript + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, NodesDir, n+".log"), []byte(log), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "linear-r1.html"), []byte("<!doctype html><title>porcupine</title><p>visualisation"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, anomalyIndex: anomaly, ops: h.ops}
}
