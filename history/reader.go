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
	br := bufio.NewReaderSize(r, 1<<20)
	ops := make([]Op, 0, hint)
	d := newDecoder()
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
			return ops, fmt.Errorf("line %d: %w", line, err)
		}
		last := err == io.EOF
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) > 0 {
			// Decode in place: a local Op would escape to the heap on every line.
			ops = append(ops, Op{})
			op := &ops[len(ops)-1]
			if derr := d.decode(trimmed, op); derr != nil {
				ops = ops[:len(ops)-1]
				if last {
					return ops, nil // truncated final line
				}
				return ops, fmt.Errorf("line %d: %v", line, derr)
			}
			if !op.Type.Valid() {
				ops = ops[:len(ops)-1]
				return ops, fmt.Errorf("line %d: unknown type %q", line, op.Type)
			}
		}
		if last {
			return ops, nil
		}
	}
}
