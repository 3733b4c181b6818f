package harness

import (
	"path/filepath"

	"github.com/raftcheck/harness/results"
)

// runIDs lists the run ids recorded in every test.json under store.
func runIDs(store string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(store, "*", "*", results.TestFile))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range files {
		var ti results.TestInfo
		if err := results.ReadJSON(f, &ti); err != nil {
			return nil, err
		}
		ids = append(ids, ti.RunID)
	}
	return ids, nil
}
