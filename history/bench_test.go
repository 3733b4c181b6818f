package history

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkRecorderAppend appends register ops to a real file, each line written and flushed
// before Append returns (ops/s = 1e9 / ns/op).
func BenchmarkRecorderAppend(b *testing.B) {
	r, err := Create(filepath.Join(b.TempDir(), "history.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	v := MustValue([2]int{4, 9})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv := r.Invoke(Process(i%20), "cas", "r2", v)
		r.Complete(inv, OK, v, "n2", "")
	}
	b.StopTimer()
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkRecorderAppendParallel is the same with concurrent workers.
func BenchmarkRecorderAppendParallel(b *testing.B) {
	r, err := Create(filepath.Join(b.TempDir(), "history.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	v := MustValue(7)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			inv := r.Invoke(3, "write", "r1", v)
			r.Complete(inv, OK, v, "n1", "")
		}
	})
	b.StopTimer()
	r.Close()
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "lines/s")
}

var readFiles sync.Map

func readFile(b *testing.B, lines int) string {
	if p, ok := readFiles.Load(lines); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "history-bench")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	r := NewRecorder(w)
	for i := 0; i < lines/2; i++ {
		key := fmt.Sprintf("r%d", i%100)
		switch i % 4 {
		case 0, 1:
			inv := r.Invoke(Process(i%20), "read", key, nil)
			r.Complete(inv, OK, MustValue(i), "n1", "")
		case 2:
			inv := r.Invoke(Process(i%20), "write", key, MustValue(i))
			r.Complete(inv, OK, inv.Value, "n1", "")
		default:
			inv := r.Invoke(Process(i%20), "cas", key, MustValue([2]int{i - 1, i}))
			r.Complete(inv, Fail, inv.Value, "n1", "")
		}
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	w.Flush()
	f.Close()
	readFiles.Store(lines, path)
	return path
}

func benchRead(b *testing.B, lines int) {
	path := readFile(b, lines)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ops, err := ReadFile(path)
		if err != nil || len(ops) != lines {
			b.Fatalf("read %d lines, %v", len(ops), err)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkRead100k reads a 100,000-line history file.
func BenchmarkRead100k(b *testing.B) { benchRead(b, 100_000) }

// BenchmarkRead1M reads a 1,000,000-line history file.
func BenchmarkRead1M(b *testing.B) { benchRead(b, 1_000_000) }
