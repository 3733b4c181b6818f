package checker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestVisualizationNameRecorded: the register checker records the name of the file it wrote in
// the key's anomaly (also the result's first anomaly), so nobody has to re-derive it from the
// key; a key that is not file-safe gets a hashed name only the checker knows.
func TestVisualizationNameRecorded(t *testing.T) {
	dir := t.TempDir()
	h := new(hb).
		inv(1, 0, "write", "a/b", 1).ok(2, 0, "write", "a/b", 1).
		inv(3, 1, "read", "a/b", nil).ok(4, 1, "read", "a/b", 2)
	res := Register{VisualizeDir: dir}.Check(context.Background(), h.ops)
	d := res.Details.(*RegisterDetails)
	if res.Valid != Invalid || len(d.Files) != 1 {
		t.Fatalf("verdict %v, files %v", res.Valid, d.Files)
	}
	name := filepath.Base(d.Files[0])
	if a := d.PerKey["a/b"].Anomaly; a == nil || a.Visualization != name {
		t.Fatalf("key anomaly %+v does not name %s", a, name)
	}
	if res.FirstAnomaly == nil || res.FirstAnomaly.Visualization != name {
		t.Fatalf("first anomaly %+v does not name %s", res.FirstAnomaly, name)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	// It survives results.json.
	b, _ := json.Marshal(res)
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.FirstAnomaly.Visualization != name {
		t.Fatalf("round trip: %v %+v", err, back.FirstAnomaly)
	}
	// Without a folder nothing is written and nothing is named.
	res = Register{}.Check(context.Background(), h.ops)
	if res.FirstAnomaly == nil || res.FirstAnomaly.Visualization != "" {
		t.Fatalf("no folder, yet anomaly %+v", res.FirstAnomaly)
	}
}
