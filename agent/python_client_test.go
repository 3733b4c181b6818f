package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pythonWithConsul returns a Python 3 interpreter that can import python-consul: $PYTHON if set,
// else python3 on PATH, else Debian's /usr/bin/python3 (where python3-consul installs it, which a
// python3 earlier on PATH, e.g. pyenv's, may not see). It returns "" and why when there is none.
func pythonWithConsul() (string, string) {
	var cands []string
	if p := os.Getenv("PYTHON"); p != "" {
		cands = append(cands, p)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/python3")
	why := "no python3 found"
	for _, p := range cands {
		out, err := exec.Command(p, "-c", "import consul.base, consul.std").CombinedOutput()
		if err == nil {
			return p, ""
		}
		why = p + " cannot import consul: " + string(out)
	}
	return "", why
}

// Patroni's use of python-consul (the second client of issue 11) against a follower of a
// 3-server cluster, so every write and every session call is forwarded to the leader: the
// script testdata/patroni_session.py asserts each outcome Patroni relies on (see its header).
func TestPythonConsulPatroniSessions(t *testing.T) {
	py, why := pythonWithConsul()
	if py == "" {
		if testing.Short() {
			t.Skip("python-consul missing: " + why)
		}
		t.Fatalf("this test needs python3 with python-consul: %s\ninstall it with "+
			"'apt-get install -y python3-consul' (Debian; .ci/run does this), or set PYTHON to an "+
			"interpreter that has the consul module (pip install python-consul)", why)
	}
	if testing.Short() {
		t.Skip("slow: starts a cluster and waits for sessions to expire")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "patroni_session.py"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startExpect3(t, func(cfg *Config) { cfg.SessionTTLMin = time.Second })
	f := follower(c)
	cl := client(t, f)
	waitFor(t, 10*time.Second, "the catalog has every node", func() bool {
		nodes, _, err := cl.Catalog().Nodes(nil)
		return err == nil && len(nodes) == 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, py, script, f.HTTPAddr()).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s %s: %v (after %s)\n%s", py, script, f.HTTPAddr(), err, time.Since(start).Round(time.Millisecond), out)
	}
	t.Logf("python-consul (%s) against follower %s in %s:\n%s", py, f.cfg.NodeName, time.Since(start).Round(time.Millisecond), out)
}
