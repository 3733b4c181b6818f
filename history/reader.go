package history

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// ReadFile reads a history.jsonl file; see Read.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	hint := 0
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		hint = int(st.Size()/80) + 16 // history lines are about 80–110 bytes
	}
	ops, err := read(f, hint)
	if err != nil {
		return ops, fmt.Errorf("%s: %w", path, err)
	}
	return ops, nil
}

// Read decodes a JSONL history. A truncated last line (no trailing newline and not valid JSON,
// as a crash leaves it) is dropped silently; any other bad line is an error naming its line
// number. Blank lines are skipped; unknown fields are ignored.
func Read(r io.Reader) ([]Op, error) { return read(r, 0) }

// read is Read with room for hint ops allocated up front.
func read(r io.Reader, hint int) ([]Op, error) {
	ops := make([]Op, 0, hint)
	// Decode in place: a local Op would escape to the heap on every line.
	slot := func() *Op {
		ops = append(ops, Op{})
		return &ops[len(ops)-1]
	}
	undo := func() { ops = ops[:len(ops)-1] }
	err := scan(r, newDecoder(), slot, undo, nil)
	return ops, err
}

// ScanFile calls fn with every op of a history.jsonl file, in order, without keeping the history
// in memory; see Scan.
func ScanFile(path string, fn func(*Op) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	if err := Scan(f, fn); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Scan decodes a JSONL history as Read does (same errors, same tolerance of a truncated last
// line) and calls fn with each op. The op and its Value are valid only during the call: fn must
// copy what it keeps. An error from fn stops the scan and is returned.
func Scan(r io.Reader, fn func(*Op) error) error {
	d := newDecoder()
	d.borrow = true
	var op Op
	return scan(r, d, func() *Op { return &op }, func() {}, fn)
}

// scan decodes each non-blank line into the op slot gives, then passes it to fn (when not nil);
// a line that does not decode is taken back with undo.
func scan(r io.Reader, d *decoder, slot func() *Op, undo func(), fn func(*Op) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: collect it whole.
			long := append([]byte(nil), b...)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("line %d: %w", line, err)
		}
		last := err == io.EOF
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) > 0 {
			op := slot()
			if derr := d.decode(trimmed, op); derr != nil {
				undo()
				if last {
					return nil // truncated final line
				}
				return fmt.Errorf("line %d: %v", line, derr)
			}
			if !op.Type.Valid() {
				undo()
				return fmt.Errorf("line %d: unknown type %q", line, op.Type)
			}
			if fn != nil {
				if err := fn(op); err != nil {
					return err
				}
			}
		}
		if last {
			return nil
		}
	}
}
