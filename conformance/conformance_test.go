package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/raftcheck/harness/harness"
	"github.com/raftcheck/harness/internal/testenv"
	"github.com/raftcheck/harness/targets"
)

// knownDifferences are the steps where the agent answers differently from Consul on purpose or
// until fixed; each is explained in docs/consul-differences.md under the same name.
var knownDifferences = map[string]bool{
	"kv bad cas":   true, // deliberate: 400 with a clear message, Consul 500 with a Go parse error
	"kv bad flags": true, // deliberate: as bad cas
}

// releaseDifferences are, per Consul release other than the default, the steps where that release
// answers differently from the default one (which the agent follows), measured by running this
// test with CONFORMANCE_TARGET=consul@X.Y.Z; docs/consul-differences.md explains each.
var releaseDifferences = map[string]map[string]bool{
	"1.20.1": {"txn unknown verb": true},
}

// conformanceTarget is the Consul the agent is compared with: CONFORMANCE_TARGET (a --target
// spec such as consul@1.15.7), else the default release.
func conformanceTarget(t *testing.T) (spec string, known map[string]bool) {
	spec = os.Getenv("CONFORMANCE_TARGET")
	if spec == "" {
		spec = "consul@" + targets.DefaultConsulVersion
	}
	tg, err := targets.Parse(spec)
	if err != nil || tg.Kind != targets.Consul {
		t.Fatalf("CONFORMANCE_TARGET=%q: want consul@X.Y.Z (%v)", spec, err)
	}
	known = map[string]bool{}
	for k := range knownDifferences {
		known[k] = true
	}
	for k := range releaseDifferences[tg.Version] {
		known[k] = true
	}
	return spec, known
}

// upCluster starts a 3-node cluster of target and returns its HTTP addresses and IPs.
func upCluster(t *testing.T, target string) (addrs, ips, names []string) {
	t.Helper()
	o := harness.Defaults()
	o.Target = target
	o.Name = "conformance"
	o.Store = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // may build Consul
	defer cancel()
	var log bytes.Buffer
	rec, err := harness.ClusterUp(ctx, o, &log)
	if err != nil {
		t.Fatalf("cluster up %s: %v\n%s", target, err, log.String())
	}
	t.Cleanup(func() {
		if _, err := harness.ClusterDown(context.Background(), o.Store, rec.ID); err != nil {
			t.Errorf("cluster down %s: %v", rec.ID, err)
		}
	})
	for _, n := range rec.Nodes {
		addrs = append(addrs, n.HTTPAddr)
		ip, _, _ := strings.Cut(n.HTTPAddr, ":")
		ips = append(ips, ip)
		names = append(names, n.Name)
	}
	return addrs, ips, names
}

// TestAgentAnswersLikeConsul runs the script against an agent cluster and a real Consul cluster
// and fails on any difference not listed in knownDifferences, on a listed difference that is
// gone (the list must stay true), and on an X-Consul-Index that goes backwards.
func TestAgentAnswersLikeConsul(t *testing.T) {
	testenv.RequireDocker(t)
	agentAddrs, agentIPs, agentNames := upCluster(t, "agent")
	target, knownDifferences := conformanceTarget(t)
	t.Logf("comparing the agent with %s", target)
	consulAddrs, consulIPs, consulNames := upCluster(t, target)
	// Steps go to the leader (Node 0) or to a follower (Node 1) of each cluster, so "via follower"
	// steps and error texts that say where a request ran (Consul words an error forwarded by a
	// follower differently) mean the same thing on both.
	agentAddrs, agentNames = leaderFirst(t, agentAddrs, agentNames)
	consulAddrs, consulNames = leaderFirst(t, consulAddrs, consulNames)
	ctx := context.Background()
	agent := Do(ctx, agentAddrs, Normaliser{IPs: agentIPs, Names: agentNames})
	consul := Do(ctx, consulAddrs, Normaliser{IPs: consulIPs, Names: consulNames})

	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\tagent\tconsul\tresult")
	for i, s := range Script() {
		a, c := agent[i], consul[i]
		d := Diff(a, c)
		result := "same"
		switch {
		case d != "" && knownDifferences[s.Name]:
			result = "listed difference: " + d
		case d != "":
			result = "DIFFERENT: " + d
			t.Errorf("%s (%s %s): agent and Consul differ, and the difference is not listed: %s", s.Name, s.Method, s.Path, d)
		case knownDifferences[s.Name]:
			result = "SAME, but listed as a difference"
			t.Errorf("%s: listed as a difference but the answers agree: remove it from knownDifferences and docs/consul-differences.md", s.Name)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", s.Name, a.Status, c.Status, result)
	}
	tw.Flush()
	t.Logf("conformance, agent vs Consul:\n%s", table.String())

	// X-Consul-Index is the index of what was read (a key, a table), so it is compared per path:
	// reading the same thing again must never report an older index.
	for _, run := range []struct {
		name    string
		answers []Answer
	}{{"agent", agent}, {"consul", consul}} {
		last := map[string]uint64{}
		for i, a := range run.answers {
			s := Script()[i]
			path, _, _ := strings.Cut(s.Path, "?")
			if s.Method != "GET" || a.Index == 0 {
				continue
			}
			if a.Index < last[path] {
				t.Errorf("%s: X-Consul-Index of %s went backwards at %q: %d after %d", run.name, path, s.Name, a.Index, last[path])
			}
			last[path] = max(last[path], a.Index)
		}
	}
}

// TestEveryListedDifferenceIsDocumented ties knownDifferences to docs/consul-differences.md.
func TestEveryListedDifferenceIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/consul-differences.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range knownDifferences {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("difference %q is not explained in docs/consul-differences.md", name)
		}
	}
	for release, steps := range releaseDifferences {
		for name := range steps {
			if !strings.Contains(string(doc), "| "+release+" | `"+name+"`") {
				t.Errorf("difference %q of Consul %s is not in the per-release table of docs/consul-differences.md", name, release)
			}
		}
	}
}

// leaderFirst orders a cluster's HTTP addresses with the current leader's first (GET
// /v1/status/leader names its Raft address; the nodes' HTTP and Raft addresses share the IP).
func leaderFirst(t *testing.T, addrs, names []string) ([]string, []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addrs[0] + "/v1/status/leader")
		if err == nil {
			var leader string
			json.NewDecoder(resp.Body).Decode(&leader)
			resp.Body.Close()
			ip, _, _ := strings.Cut(leader, ":")
			for i, a := range addrs {
				if h, _, _ := strings.Cut(a, ":"); ip != "" && h == ip {
					swap := func(l []string) []string {
						out := append([]string{l[i]}, l[:i]...)
						return append(out, l[i+1:]...)
					}
					return swap(addrs), swap(names)
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("no leader known at %s within 60 s", addrs[0])
	return nil, nil
}
