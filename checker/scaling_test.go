package checker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/anishathalye/porcupine"
	"github.com/raftcheck/harness/history"
)

// TestCheckerScaling measures read+check time (history.ScanFile through the register checker's
// accumulator, as harness check does) and peak heap against history size (10k, 100k, 1M
// operations; median of 3) and draws the plot of docs/checker-scaling.svg. It is a measurement,
// not an assertion: it runs only when HARNESS_SCALING_OUT names the folder for the SVG and table.
//
//	HARNESS_SCALING_OUT=$PWD/docs go test -run TestCheckerScaling -v ./checker
func TestCheckerScaling(t *testing.T) {
	out := os.Getenv("HARNESS_SCALING_OUT")
	if out == "" {
		t.Skip("set HARNESS_SCALING_OUT=DIR to measure and plot")
	}
	sizes := []int{10_000, 100_000, 1_000_000}
	var secs, heap plotter.XYs
	var table strings.Builder
	table.WriteString("| ops | median read+check s | runs s | peak heap MiB |\n|---|---|---|---|\n")
	for _, n := range sizes {
		path := filepath.Join(t.TempDir(), "history.jsonl")
		writeHistory(t, path, GenerateRegisterHistory(1, n, 100, 20, 0.01))
		var runs []float64
		var peak uint64
		for range 3 {
			runtime.GC()
			stop, peakOf := sampleHeap()
			start := time.Now()
			acc := Register{}.Accumulate() // as harness check does: the history streams through
			if err := history.ScanFile(path, func(op *history.Op) error { acc.Add(op); return nil }); err != nil {
				t.Fatal(err)
			}
			if res := acc.Result(context.Background()); res.Valid != Valid {
				t.Fatalf("generated history is %v: %s", res.Valid, res.Error)
			}
			runs = append(runs, time.Since(start).Seconds())
			stop()
			peak = max(peak, peakOf())
		}
		sorted := slices.Clone(runs)
		slices.Sort(sorted)
		med := sorted[1]
		secs = append(secs, plotter.XY{X: float64(n), Y: med})
		heap = append(heap, plotter.XY{X: float64(n), Y: float64(peak) / (1 << 20)})
		fmt.Fprintf(&table, "| %d | %.3f | %.3f %.3f %.3f | %.0f |\n", n, med, runs[0], runs[1], runs[2], float64(peak)/(1<<20))
	}
	t.Logf("\n%s", table.String())
	if err := os.WriteFile(filepath.Join(out, "checker-scaling.md"), []byte(table.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := plot.New()
	p.Title.Text = "Checker: read history.jsonl + check, 100 keys, 20 workers, 1% info"
	p.X.Label.Text = "operations"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	p.Y.Label.Text = "seconds (median of 3) / peak heap GiB"
	gib := make(plotter.XYs, len(heap))
	for i, h := range heap {
		gib[i] = plotter.XY{X: h.X, Y: h.Y / 1024}
	}
	if err := plotutil.AddLinePoints(p, "seconds", secs, "peak heap (GiB)", gib); err != nil {
		t.Fatal(err)
	}
	if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(out, "checker-scaling.svg")); err != nil {
		t.Fatal(err)
	}
}

// writeHistory writes ops as JSONL with their own index and time (a Recorder would restamp them).
func writeHistory(t testing.TB, path string, ops []history.Op) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, op := range ops {
		line, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// sampleHeap samples the live heap every 5 ms until stop is called.
func sampleHeap() (stop func(), peak func() uint64) {
	var p atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.Load() {
				p.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() { close(done) }, p.Load
}

// TestWriteGeneratedHistory writes a generated register history for measuring `harness check`:
// 1,000,000 ops over 100 keys by 20 workers, 1% of writes and cas info (HARNESS_GEN_OPS etc. to
// change; HARNESS_GEN_STALE=1 makes one read in the middle stale; HARNESS_GEN_HOT=1 writes GenerateHotKeyHistory instead: one key, 50/30/20 % reads,
// writes, cas, 0.1–5 ms latencies). It runs only when HARNESS_GEN_HISTORY names the file.
//
//	HARNESS_GEN_HISTORY=/tmp/h1m/history.jsonl go test -run TestWriteGeneratedHistory ./checker
//	HARNESS_GEN_HOT=1 HARNESS_GEN_OPS=100000 HARNESS_GEN_WORKERS=32 HARNESS_GEN_HISTORY=/tmp/hot/history.jsonl go test -run TestWriteGeneratedHistory ./checker
func TestWriteGeneratedHistory(t *testing.T) {
	path := os.Getenv("HARNESS_GEN_HISTORY")
	if path == "" {
		t.Skip("set HARNESS_GEN_HISTORY=FILE to write a generated history")
	}
	n, keys, workers := envInt("HARNESS_GEN_OPS", 1_000_000), envInt("HARNESS_GEN_KEYS", 100), envInt("HARNESS_GEN_WORKERS", 20)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ops := GenerateRegisterHistory(1, n, keys, workers, 0.01)
	if os.Getenv("HARNESS_GEN_HOT") != "" {
		ops = GenerateHotKeyHistory(1, n, workers)
	}
	if os.Getenv("HARNESS_GEN_STALE") != "" && !InjectStaleRead(ops, len(ops)/2) {
		t.Fatal("no read to make stale")
	}
	writeHistory(t, path, ops)
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v <= 0 {
		return def
	}
	return v
}

// TestPorcupineOnFile is the yardstick of `harness check`: porcupine alone (plain key-value
// register model with Partition and Hash, as BenchmarkPorcupineAlone1M) on the history in the
// file HARNESS_PORCUPINE_HISTORY, read and converted before the clock starts. It logs the
// seconds and the peak Go heap of the check alone. With HARNESS_PORCUPINE_REGISTER_MIB=N it runs
// the register checker instead, porcupine only, with a memory limit of N MiB.
//
//	HARNESS_PORCUPINE_HISTORY=/tmp/h1m/history.jsonl go test -run TestPorcupineOnFile -v ./checker
func TestPorcupineOnFile(t *testing.T) {
	path := os.Getenv("HARNESS_PORCUPINE_HISTORY")
	if path == "" {
		t.Skip("set HARNESS_PORCUPINE_HISTORY=FILE to time porcupine on it")
	}
	ops, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if limit := envInt("HARNESS_PORCUPINE_REGISTER_MIB", 0); limit > 0 {
		// The register checker with porcupine only, bounded: shows the memory bound at work.
		runtime.GC()
		stop, peakOf := sampleHeap()
		start := time.Now()
		res := Register{PorcupineOnly: true, MemoryLimit: int64(limit) << 20, Timeout: time.Minute}.Check(context.Background(), ops)
		stop()
		t.Logf("register checker, porcupine only, limit %d MiB: %v in %.3f s, peak heap %.0f MiB: %s", limit, res.Valid, time.Since(start).Seconds(), float64(peakOf())/(1<<20), res.Error)
		return
	}
	pops := plainPorcupineOps(ops)
	ops = nil
	runtime.GC()
	stop, peakOf := sampleHeap()
	cpu0 := cpuSeconds()
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(plainModel, pops, 0)
	secs := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	stop()
	t.Logf("porcupine: %v in %.3f s (%.3f s of CPU), peak heap %.0f MiB", res, secs, cpu, float64(peakOf())/(1<<20))
	fmt.Printf("porcupine_seconds %.3f cpu %.3f\n", secs, cpu)
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
