package harness

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/raftcheck/harness/results"
)

// runIDs lists the run ids recorded in every test.json under store (once each: a test's
// "latest" link shows a run folder twice). It is an error when there is none, or a test.json
// without a run id: a run that happened must be checked, and an id "" matches nothing.
func runIDs(store string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(store, "*", "*", results.TestFile))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no run folder with a %s under %s: the run left nothing to check", results.TestFile, store)
	}
	var ids []string
	for _, f := range files {
		var ti results.TestInfo
		if err := results.ReadJSON(f, &ti); err != nil {
			return nil, err
		}
		if ti.RunID == "" {
			return nil, fmt.Errorf("%s has no run_id: its containers cannot be looked for", f)
		}
		if !slices.Contains(ids, ti.RunID) {
			ids = append(ids, ti.RunID)
		}
	}
	return ids, nil
}

// TestRunIDsNeedsARun: the leftover check cannot pass on a store where no run left a test.json,
// or on a test.json without a run id.
func TestRunIDsNeedsARun(t *testing.T) {
	store := t.TempDir()
	if ids, err := runIDs(store); err == nil {
		t.Fatalf("empty store: ids %v, want an error", ids)
	}
	dir, err := results.NewRunDir(store, "t", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(filepath.Join(dir, results.TestFile), results.TestInfo{}); err != nil {
		t.Fatal(err)
	}
	if ids, err := runIDs(store); err == nil {
		t.Fatalf("test.json without run_id: ids %v, want an error", ids)
	}
	if err := results.WriteJSON(filepath.Join(dir, results.TestFile), results.TestInfo{RunID: "abc"}); err != nil {
		t.Fatal(err)
	}
	if err := results.MarkLatest(store, dir); err != nil {
		t.Fatal(err)
	}
	if ids, err := runIDs(store); err != nil || !slices.Equal(ids, []string{"abc"}) {
		t.Fatalf("ids %v, %v; want [abc]", ids, err)
	}
}
