package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/nemesis"
	"github.com/raftcheck/harness/powerfs"
	"github.com/raftcheck/harness/results"
)

// A harness killed mid-run leaves its power-loss filesystems mounted; clean unmounts them and
// removes their folders, and leaves mounts outside the runs' root alone.
func TestCleanPowerUnmountsLeftovers(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if testing.Short() {
			t.Skip("-short: needs /dev/fuse")
		}
		t.Fatalf("the power fault needs /dev/fuse: %v", err)
	}
	root := t.TempDir()
	fss, err := mountPower("deadbeef", []string{"n1", "n2"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removePower("deadbeef", fss) })
	// A crashed run's mount under root: made like mountPower's, then abandoned without unmount.
	dir := filepath.Join(root, "cafe0001", "n1")
	left, err := powerfs.Mount(powerfs.Options{Dir: filepath.Join(dir, "backing"), Mountpoint: filepath.Join(dir, "mnt")})
	if err != nil {
		t.Fatal(err)
	}
	removed, err := cleanPowerUnder(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Name != left.Mountpoint() || removed[0].RunID != "cafe0001" || removed[0].Kind != "mount" {
		t.Fatalf("removed %+v, want the one mount under %s", removed, root)
	}
	mps, err := powerfs.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(mps, left.Mountpoint()) {
		t.Errorf("%s still mounted", left.Mountpoint())
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", root, err)
	}
	for _, f := range fss {
		if !slices.Contains(mps, f.Mountpoint()) {
			t.Errorf("clean of another root unmounted %s", f.Mountpoint())
		}
	}
	_ = left.Close() // its server still runs in this process; stop it
}

func TestSoakMatrixNemesisSpecs(t *testing.T) {
	m, err := ParseMatrix("nemesis=kill,pause|kill+pause|all|none;workload=register;read-mode=consistent;nodes=3")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range m.configs(Defaults()) {
		got = append(got, fmt.Sprint(o.Nemesis, o.NemesisTogether))
	}
	want := []string{"[kill pause] false", "[kill pause] true", fmt.Sprint(nemesis.Faults, " true"), "[] false"}
	if !slices.Equal(got, want) {
		t.Fatalf("configs %q, want %q", got, want)
	}
	if _, err := ParseMatrix("nemesis=kill+pause,loss"); err == nil {
		t.Error("a choice mixing , and + should be refused")
	}
}

// A soak or selftest run's reproduce command is rebuilt from its options: overlapping faults
// come back as a+b, the power writeback as a duration.
func TestReproduceOverlappingFaults(t *testing.T) {
	o := Defaults()
	o.Nemesis, o.NemesisTogether, o.PowerWriteback = []string{"partition", "kill"}, true, 30*time.Second
	cmd := results.ReproduceCommand(results.TestInfo{Options: optionsJSON(o), Seed: 7})
	for _, want := range []string{"--nemesis=partition+kill", "--power-writeback=30s"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("%s lacks %s", cmd, want)
		}
	}
	if strings.Contains(cmd, "together") {
		t.Errorf("%s names a flag that does not exist", cmd)
	}
}
