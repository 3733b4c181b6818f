// Package results owns the run folder: its layout, test.json, results.json, the latest links,
// the HTML report and the index that `harness serve` shows.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Files in a run folder (DESIGN.md, "Run folder").
const (
	TestFile    = "test.json"
	HistoryFile = "history.jsonl"
	ResultsFile = "results.json"
	ReportFile  = "report.html"
	NodesDir    = "nodes"
	LatestLink  = "latest"
	timeLayout  = "20060102T150405"
)

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidTestName reports whether name can be a folder name in the store.
func ValidTestName(name string) error {
	if !safeName.MatchString(name) {
		return fmt.Errorf("test name %q: use letters, digits, '.', '_' and '-' (at most 128, not starting with a symbol)", name)
	}
	return nil
}

// NewRunDir creates <store>/<test>/<YYYYMMDDTHHMMSS>/ (adding a suffix when that second is
// taken) with its nodes/ folder, and returns its path.
func NewRunDir(store, test string, start time.Time) (string, error) {
	if err := ValidTestName(test); err != nil {
		return "", err
	}
	base := filepath.Join(store, test, start.UTC().Format(timeLayout))
	dir := base
	for i := 1; ; i++ {
		err := os.MkdirAll(filepath.Dir(dir), 0o755)
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", fmt.Errorf("create run folder: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Mkdir(filepath.Join(dir, NodesDir), 0o755); err != nil {
		return "", fmt.Errorf("create run folder: %w", err)
	}
	return dir, nil
}

// MarkLatest points <store>/latest and <store>/<test>/latest at dir (relative links).
func MarkLatest(store, dir string) error {
	testDir := filepath.Dir(dir)
	if err := relink(filepath.Join(testDir, LatestLink), filepath.Base(dir)); err != nil {
		return err
	}
	rel, err := filepath.Rel(store, dir)
	if err != nil {
		return fmt.Errorf("latest link: %w", err)
	}
	return relink(filepath.Join(store, LatestLink), rel)
}

// relink atomically replaces the symlink at path with one to target.
func relink(path, target string) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("latest link: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("latest link: %w", err)
	}
	return nil
}

// WriteJSON writes v as indented JSON to path, atomically (temp file and rename).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// ReadJSON decodes the JSON file at path into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
