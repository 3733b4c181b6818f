package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileDurably replaces path with data so that a power loss leaves either the old file or
// the new one, never an empty or partial one: a temporary file is written and fsynced, renamed
// over path, and the directory fsynced. (os.WriteFile alone leaves a zero-length node-id after
// a power loss within the kernel's writeback delay: the agent then refused to start.)
func writeFileDurably(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
