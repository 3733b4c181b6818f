// Package conformance sends one script of HTTP requests to two clusters — the project's agent and
// real Consul — and compares the answers: status codes, bodies with index values, node ids and
// addresses normalised away, and the X-Consul-* headers. The agent exists to stand in for Consul,
// so every difference is either fixed or listed with its reason (docs/consul-differences.md).
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Step is one request of the script.
type Step struct {
	Name   string
	Method string
	Path   string // with the query string
	Body   string
	Node   int  // which node receives it, in the order the caller gives (the test: 0 the leader, 1 a follower)
	Status bool // compare the status code only (the body's shape is not comparable)
	// Capture names the "ID" of this step's JSON answer; later steps write {name} in Path or Body
	// to use it (session IDs differ between the clusters).
	Capture string
}

// Script is the conformance script. Steps run in order; later steps depend on earlier writes.
func Script() []Step {
	big := strings.Repeat("x", 512*1024+1)
	return []Step{
		{Name: "kv put", Method: "PUT", Path: "/v1/kv/conf/a", Body: "1"},
		{Name: "kv get", Method: "GET", Path: "/v1/kv/conf/a"},
		{Name: "kv get raw", Method: "GET", Path: "/v1/kv/conf/a?raw"},
		{Name: "kv get missing", Method: "GET", Path: "/v1/kv/conf/missing"},
		{Name: "kv put flags", Method: "PUT", Path: "/v1/kv/conf/b?flags=42", Body: "x"},
		{Name: "kv get flags", Method: "GET", Path: "/v1/kv/conf/b"},
		{Name: "kv cas 0 on existing", Method: "PUT", Path: "/v1/kv/conf/a?cas=0", Body: "2"},
		{Name: "kv cas 0 on new", Method: "PUT", Path: "/v1/kv/conf/c?cas=0", Body: "3"},
		{Name: "kv cas wrong index", Method: "PUT", Path: "/v1/kv/conf/a?cas=1", Body: "2"},
		{Name: "kv recurse", Method: "GET", Path: "/v1/kv/conf/?recurse"},
		{Name: "kv keys", Method: "GET", Path: "/v1/kv/conf/?keys"},
		{Name: "kv keys separator", Method: "GET", Path: "/v1/kv/?keys&separator=/"},
		{Name: "kv consistent", Method: "GET", Path: "/v1/kv/conf/a?consistent"},
		{Name: "kv stale", Method: "GET", Path: "/v1/kv/conf/a?stale"},
		{Name: "kv stale and consistent", Method: "GET", Path: "/v1/kv/conf/a?stale&consistent"},
		{Name: "kv via follower put", Method: "PUT", Path: "/v1/kv/conf/f", Body: "from-follower", Node: 1},
		{Name: "kv via follower get", Method: "GET", Path: "/v1/kv/conf/f", Node: 1},
		{Name: "kv blocking, index 1", Method: "GET", Path: "/v1/kv/conf/a?index=1&wait=1s"},
		{Name: "kv blocking, negative wait", Method: "GET", Path: "/v1/kv/conf/a?index=1&wait=-1s"},
		{Name: "kv bad cas", Method: "PUT", Path: "/v1/kv/conf/a?cas=abc", Body: "1"},
		{Name: "kv bad flags", Method: "PUT", Path: "/v1/kv/conf/a?flags=abc", Body: "1"},
		{Name: "kv other datacenter", Method: "GET", Path: "/v1/kv/conf/a?dc=elsewhere"},
		{Name: "kv byte key put", Method: "PUT", Path: "/v1/kv/%FF", Body: "ff"},
		{Name: "kv byte key get", Method: "GET", Path: "/v1/kv/%FF?raw"},
		{Name: "kv value too large", Method: "PUT", Path: "/v1/kv/conf/big", Body: big},
		{Name: "kv no key", Method: "PUT", Path: "/v1/kv/", Body: "x"},
		{Name: "kv delete", Method: "DELETE", Path: "/v1/kv/conf/b"},
		{Name: "kv get deleted", Method: "GET", Path: "/v1/kv/conf/b"},
		{Name: "kv delete cas wrong", Method: "DELETE", Path: "/v1/kv/conf/c?cas=1"},
		{Name: "kv bad method", Method: "POST", Path: "/v1/kv/conf/a", Body: "x"},
		{Name: "txn set and get", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"set","Key":"conf/t","Value":"dA=="}},{"KV":{"Verb":"get","Key":"conf/t"}}]`},
		{Name: "txn get-or-empty missing", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"get-or-empty","Key":"conf/none"}}]`},
		{Name: "txn get missing", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"get","Key":"conf/none"}}]`},
		{Name: "txn check-index fails", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"check-index","Key":"conf/t","Index":1}}]`},
		{Name: "txn cas fails", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"cas","Key":"conf/t","Value":"dQ==","Index":1}}]`},
		{Name: "txn delete-tree", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"delete-tree","Key":"conf/t"}}]`},
		{Name: "txn unknown verb", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"frobnicate","Key":"conf/t"}}]`},
		{Name: "txn bad json", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":`},
		{Name: "txn empty", Method: "PUT", Path: "/v1/txn", Body: `[]`},
		{Name: "kv delete recurse", Method: "DELETE", Path: "/v1/kv/conf?recurse"},
		{Name: "kv recurse after delete", Method: "GET", Path: "/v1/kv/conf?recurse"},
		{Name: "status leader", Method: "GET", Path: "/v1/status/leader"},
		{Name: "status peers", Method: "GET", Path: "/v1/status/peers"},
		{Name: "operator raft configuration", Method: "GET", Path: "/v1/operator/raft/configuration", Status: true}, // who leads differs
		{Name: "agent self", Method: "GET", Path: "/v1/agent/self", Status: true},
		{Name: "agent members", Method: "GET", Path: "/v1/agent/members", Status: true},
		{Name: "session list", Method: "GET", Path: "/v1/session/list"},
		{Name: "catalog nodes", Method: "GET", Path: "/v1/catalog/nodes", Status: true},
		{Name: "health node", Method: "GET", Path: "/v1/health/node/{node0}", Status: true},
		{Name: "health node missing", Method: "GET", Path: "/v1/health/node/nowhere"},
		// Sessions and locks (the lock workload's and api.Lock's calls, and their errors).
		{Name: "session create defaults", Method: "PUT", Path: "/v1/session/create", Capture: "s1"},
		{Name: "session create ttl delete", Method: "PUT", Path: "/v1/session/create", Body: `{"Name":"conf","TTL":"30s","Behavior":"delete","LockDelay":"1s","Checks":[]}`, Capture: "s2", Node: 1},
		{Name: "session create numeric lock-delay", Method: "PUT", Path: "/v1/session/create", Body: `{"LockDelay":5,"NodeChecks":["serfHealth"]}`, Capture: "s3"},
		{Name: "session info defaults", Method: "GET", Path: "/v1/session/info/{s1}"},
		{Name: "session info ttl delete", Method: "GET", Path: "/v1/session/info/{s2}"},
		{Name: "session info numeric lock-delay", Method: "GET", Path: "/v1/session/info/{s3}"},
		{Name: "session info missing", Method: "GET", Path: "/v1/session/info/00000000-0000-0000-0000-000000000000"},
		{Name: "session node", Method: "GET", Path: "/v1/session/node/{node0}"},
		{Name: "session renew", Method: "PUT", Path: "/v1/session/renew/{s2}"},
		{Name: "session renew missing", Method: "PUT", Path: "/v1/session/renew/00000000-0000-0000-0000-000000000000"},
		{Name: "session create ttl too short", Method: "PUT", Path: "/v1/session/create", Body: `{"TTL":"1s"}`},
		{Name: "session create bad ttl", Method: "PUT", Path: "/v1/session/create", Body: `{"TTL":"soon"}`},
		{Name: "session create bad behavior", Method: "PUT", Path: "/v1/session/create", Body: `{"Behavior":"explode"}`},
		{Name: "session create unknown field", Method: "PUT", Path: "/v1/session/create", Body: `{"Bogus":1}`},
		{Name: "session create missing node", Method: "PUT", Path: "/v1/session/create", Body: `{"Node":"nowhere"}`},
		{Name: "session create missing check", Method: "PUT", Path: "/v1/session/create", Body: `{"NodeChecks":["nope"]}`},
		{Name: "session create bad method", Method: "GET", Path: "/v1/session/create"},
		{Name: "session destroy no id", Method: "PUT", Path: "/v1/session/destroy/"},
		{Name: "kv acquire", Method: "PUT", Path: "/v1/kv/conf/lock?acquire={s1}", Body: "held"},
		{Name: "kv acquire held", Method: "PUT", Path: "/v1/kv/conf/lock?acquire={s2}", Body: "other", Node: 1},
		{Name: "kv acquire again by holder", Method: "PUT", Path: "/v1/kv/conf/lock?acquire={s1}&flags=7", Body: "held2"},
		{Name: "kv get lock", Method: "GET", Path: "/v1/kv/conf/lock"},
		{Name: "kv acquire unknown session", Method: "PUT", Path: "/v1/kv/conf/lock?acquire=00000000-0000-0000-0000-000000000000", Body: "x"},
		{Name: "kv release by other", Method: "PUT", Path: "/v1/kv/conf/lock?release={s2}"},
		{Name: "kv release", Method: "PUT", Path: "/v1/kv/conf/lock?release={s1}"},
		{Name: "kv get released", Method: "GET", Path: "/v1/kv/conf/lock"},
		{Name: "txn lock", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"lock","Key":"conf/lock2","Value":"dg==","Session":"{s2}"}}]`},
		{Name: "txn lock held", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"lock","Key":"conf/lock2","Value":"dg==","Session":"{s1}"}}]`},
		{Name: "txn check-session and set", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"check-session","Key":"conf/lock2","Session":"{s2}"}},{"KV":{"Verb":"set","Key":"conf/fenced","Value":"dg=="}}]`},
		{Name: "txn check-session fails", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"check-session","Key":"conf/lock2","Session":"{s1}"}},{"KV":{"Verb":"set","Key":"conf/fenced","Value":"dw=="}}]`},
		{Name: "txn unlock by other", Method: "PUT", Path: "/v1/txn", Body: `[{"KV":{"Verb":"unlock","Key":"conf/lock2","Session":"{s1}"}}]`},
		{Name: "session destroy delete behavior", Method: "PUT", Path: "/v1/session/destroy/{s2}"},
		{Name: "kv get after delete behavior", Method: "GET", Path: "/v1/kv/conf/lock2"},
		{Name: "kv acquire in lock-delay", Method: "PUT", Path: "/v1/kv/conf/lock2?acquire={s1}", Body: "x"},
		{Name: "session destroy", Method: "PUT", Path: "/v1/session/destroy/{s1}"},
		{Name: "session destroy again", Method: "PUT", Path: "/v1/session/destroy/{s1}"},
		{Name: "session destroy numeric", Method: "PUT", Path: "/v1/session/destroy/{s3}"},
		{Name: "session list after", Method: "GET", Path: "/v1/session/list"},
		{Name: "kv delete locks", Method: "DELETE", Path: "/v1/kv/conf?recurse"},
		{Name: "unknown endpoint", Method: "GET", Path: "/v1/nothing-here"},
	}
}

// Answer is what one step got, normalised for comparison.
type Answer struct {
	Status  int
	Body    string            // normalised
	Headers map[string]string // X-Consul-* and Content-Type, values normalised
	Index   uint64            // X-Consul-Index, 0 when absent
	Err     string            // transport error
}

// Normaliser replaces what legitimately differs between two clusters: node addresses (any node's
// IP becomes "<node>": which server leads is not part of the comparison), UUIDs, index numbers and
// times.
type Normaliser struct {
	IPs []string
	// Names are the nodes' names in the order of the addresses given to Do (the test: leader
	// first); each becomes "<node0>", "<node1>", … in answers, and {node0}, {node1}, … in a step's
	// Path or Body is that node's name.
	Names []string
}

var (
	uuidRE    = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	indexRE   = regexp.MustCompile(`(modify index|index) \d+`) // index numbers inside error texts
	indexKeys = map[string]bool{"CreateIndex": true, "ModifyIndex": true, "Index": true, "LastIndex": true, "LastContact": true}
)

func (n Normaliser) text(s string) string {
	for _, ip := range n.IPs {
		s = strings.ReplaceAll(s, ip, "<node>")
	}
	for i, name := range n.Names {
		s = strings.ReplaceAll(s, `"`+name+`"`, fmt.Sprintf(`"<node%d>"`, i))
	}
	s = indexRE.ReplaceAllString(s, "$1 #")
	return uuidRE.ReplaceAllString(s, "<uuid>")
}

// body normalises a JSON body (index fields become "#", maps are printed with sorted keys) or, for
// anything else, the trimmed text.
func (n Normaliser) body(b []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if len(bytes.TrimSpace(b)) > 0 && dec.Decode(&v) == nil {
		v = scrub(v)
		out, _ := json.Marshal(v)
		return n.text(string(out))
	}
	return n.text(strings.TrimSpace(string(b)))
}

func scrub(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if indexKeys[k] {
				t[k] = "#"
				continue
			}
			t[k] = scrub(x)
		}
	case []any:
		for i, x := range t {
			t[i] = scrub(x)
		}
		// Lists of things with generated IDs (sessions) come in ID order, which is random: order
		// them by their content with the IDs taken out.
		withID := len(t) > 1
		for _, x := range t {
			m, ok := x.(map[string]any)
			withID = withID && ok && m["ID"] != nil
		}
		if withID {
			key := func(x any) string { b, _ := json.Marshal(x); return uuidRE.ReplaceAllString(string(b), "") }
			sort.SliceStable(t, func(i, j int) bool { return key(t[i]) < key(t[j]) })
		}
	}
	return v
}

// comparedHeaders are the headers whose presence (and, where stable, value) is compared.
var comparedHeaders = []string{"X-Consul-Index", "X-Consul-Knownleader", "X-Consul-Lastcontact", "X-Consul-Effective-Consistency", "Content-Type"}

// Do runs the script against the nodes' HTTP addresses (host:port) and returns one answer per step.
func Do(ctx context.Context, nodes []string, n Normaliser) []Answer {
	client := &http.Client{Timeout: 10 * time.Second}
	var out []Answer
	vars := map[string]string{}
	for i, name := range n.Names {
		vars[fmt.Sprintf("node%d", i)] = name
	}
	for _, s := range Script() {
		for name, v := range vars {
			s.Path = strings.ReplaceAll(s.Path, "{"+name+"}", v)
			s.Body = strings.ReplaceAll(s.Body, "{"+name+"}", v)
		}
		a, raw := do(ctx, client, nodes[s.Node], s, n)
		if s.Capture != "" {
			var created struct{ ID string }
			json.Unmarshal(raw, &created)
			vars[s.Capture] = created.ID
		}
		out = append(out, a)
	}
	return out
}

// do runs one step; it returns the answer and the raw body.
func do(ctx context.Context, client *http.Client, addr string, s Step, n Normaliser) (Answer, []byte) {
	var body io.Reader
	if s.Body != "" {
		body = strings.NewReader(s.Body)
	}
	req, err := http.NewRequestWithContext(ctx, s.Method, "http://"+addr+s.Path, body)
	if err != nil {
		return Answer{Err: err.Error()}, nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{Err: n.text(err.Error())}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := Answer{Status: resp.StatusCode, Body: n.body(b), Headers: map[string]string{}}
	for _, h := range comparedHeaders {
		v := resp.Header.Get(h)
		if v == "" {
			continue
		}
		switch h {
		case "X-Consul-Index":
			a.Index, _ = strconv.ParseUint(v, 10, 64)
			v = "#"
		case "X-Consul-Lastcontact":
			v = "#"
		case "Content-Type":
			v, _, _ = strings.Cut(v, ";")
		}
		a.Headers[h] = v
	}
	if s.Status {
		a.Body = ""
	}
	return a, b
}

// Diff describes how two answers to a step differ ("" when they agree).
func Diff(a, b Answer) string {
	var d []string
	if a.Err != b.Err {
		d = append(d, fmt.Sprintf("error %q vs %q", a.Err, b.Err))
	}
	if a.Status != b.Status {
		d = append(d, fmt.Sprintf("status %d vs %d", a.Status, b.Status))
	}
	if a.Body != b.Body {
		d = append(d, fmt.Sprintf("body %s vs %s", clip(a.Body), clip(b.Body)))
	}
	var hs []string
	for h := range a.Headers {
		hs = append(hs, h)
	}
	for h := range b.Headers {
		if _, ok := a.Headers[h]; !ok {
			hs = append(hs, h)
		}
	}
	sort.Strings(hs)
	for _, h := range hs {
		if a.Headers[h] != b.Headers[h] {
			d = append(d, fmt.Sprintf("%s %q vs %q", h, a.Headers[h], b.Headers[h]))
		}
	}
	return strings.Join(d, "; ")
}

func clip(s string) string {
	if s == "" {
		return "(empty)"
	}
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
