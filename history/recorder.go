package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Recorder appends operations to a history file as they happen. It is safe for concurrent use;
// every line is written and flushed before the call returns, so a killed harness loses at most
// the line being written.
type Recorder struct {
	mu    sync.Mutex
	start time.Time
	w     *bufio.Writer
	f     io.Closer
	next  int64
	err   error
	buf   []byte // reused line buffer, guarded by mu
	watch func(Op)
}

// Watch registers fn to be called with every op after it is written, in history order (under
// the recorder's lock: fn must be quick and must not call the Recorder). Progress displays use it.
func (r *Recorder) Watch(fn func(Op)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watch = fn
}

// Create opens (truncating) path and returns a Recorder whose clock starts now.
func Create(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create history: %w", err)
	}
	r := NewRecorder(f)
	r.f = f
	return r, nil
}

// NewRecorder returns a Recorder writing to w whose clock starts now.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{start: time.Now(), w: bufio.NewWriterSize(w, 64<<10)}
}

// Start is the instant that Op.Time is measured from.
func (r *Recorder) Start() time.Time { return r.start }

// Since returns the history time (ns since start) of t.
func (r *Recorder) Since(t time.Time) int64 { return int64(t.Sub(r.start)) }

// Invoke records the invocation of f on key by process with value, and returns the op written
// (with Index and Time filled in) so the completion can refer to it.
func (r *Recorder) Invoke(p Process, f, key string, value json.RawMessage) Op {
	return r.Append(Op{Process: p, Type: Invoke, F: f, Key: key, Value: value})
}

// Complete records the completion of inv with type t (OK, Fail or Info).
func (r *Recorder) Complete(inv Op, t Type, value json.RawMessage, node, errText string) Op {
	return r.Append(Op{Process: inv.Process, Type: t, F: inv.F, Key: inv.Key, Value: value, Node: node, Error: errText})
}

// Nemesis records a nemesis event: f is the fault (partition, kill, heal, …), value its targets.
func (r *Recorder) Nemesis(f string, value any) Op {
	return r.Append(Op{Process: NemesisProcess, Type: Info, F: f, Value: MustValue(value)})
}

// Append stamps op with the next index and the current time and writes it. Write errors are
// remembered and reported by Err and Close.
func (r *Recorder) Append(op Op) Op {
	if op.Value == nil {
		op.Value = json.RawMessage("null")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = r.next
	op.Time = int64(time.Since(r.start))
	r.next++
	if r.watch != nil {
		defer r.watch(op)
	}
	if r.err != nil {
		return op
	}
	b, err := appendOp(r.buf[:0], op)
	if err == nil {
		b = append(b, '\n')
		_, err = r.w.Write(b)
		r.buf = b
	}
	if err == nil {
		err = r.w.Flush()
	}
	if err != nil {
		r.err = fmt.Errorf("write history: %w", err)
	}
	return op
}

// Err returns the first write error, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close flushes and closes the underlying file (when opened by Create).
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	if r.f != nil {
		if err := r.f.Close(); err != nil && r.err == nil {
			r.err = err
		}
		r.f = nil
	}
	return r.err
}
