// Command etcdbench measures the project's agent against etcd (3.4 as Debian packages it) in one
// run: consistent writes and linearizable reads, 3 servers of each on loopback, concurrent
// clients spread over the three servers, several alternating rounds, medians and the ratio
// agent/etcd. Both clusters run at once, so each pair of measurements sees the same machine load.
//
//	go run ./scripts/etcdbench --rounds 5 --duration 10s --clients 16
//
// The agent is built from ./cmd/agent and started with the flags the harness gives it
// (targets.Target.Args), but on 127.0.0.1 with distinct ports; its load goes through
// github.com/hashicorp/consul/api (kv.Put; kv.Get with RequireConsistent). etcd is loaded through
// its v3 JSON gateway (POST /v3/kv/put and /v3/kv/range, linearizable by default) with one
// keep-alive http.Client per client goroutine, so the module does not depend on etcd's Go client.
// Every process is stopped and every temporary directory removed at the end, on error and on
// Ctrl-C.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/raftcheck/harness/targets"
)

const (
	nodes = 3
	keys  = 1000 // distinct keys, as agent/bench_test.go
)

func main() {
	rounds := flag.Int("rounds", 5, "measurements per system and operation, alternating the systems")
	duration := flag.Duration("duration", 10*time.Second, "length of one measurement")
	clients := flag.Int("clients", 16, "concurrent clients, spread over the three servers of each system")
	etcdBin := flag.String("etcd", "etcd", "etcd binary")
	agentExtra := flag.String("agent-flags", "", "extra agent flags, space-separated, after the harness's (they win), "+
		"e.g. Consul's raft_multiplier=1 timing: -raft-heartbeat-timeout=1s -raft-election-timeout=1s -raft-leader-lease-timeout=500ms")
	grpc := flag.Bool("grpc", true, "also measure etcd through its native gRPC API (etcd-grpc), alternating with the others")
	gateway := flag.Bool("gateway-check", false, "after the rounds, measure etcd's serializable reads once "+
		"(no ReadIndex round: the JSON gateway's own ceiling)")
	flag.Parse()
	if *rounds < 1 || *duration <= 0 || *clients < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "etcdbench: --rounds and --clients must be ≥ 1, --duration > 0, and no arguments")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *rounds, *duration, *clients, *etcdBin, strings.Fields(*agentExtra), *grpc, *gateway)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcdbench: %v\n", err)
		os.Exit(1)
	}
}

// procs are the started servers; stopAll ends them (SIGTERM, then SIGKILL after 5 s).
type procs struct {
	mu    sync.Mutex
	cmds  []*exec.Cmd
	dones []chan struct{}
}

func (p *procs) start(dir, name, bin string, args ...string) error {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us, not them
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmds, p.dones = append(p.cmds, cmd), append(p.dones, done)
	p.mu.Unlock()
	return nil
}

func (p *procs) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for i, d := range p.dones {
		select {
		case <-d:
		case <-time.After(5 * time.Second):
			_ = p.cmds[i].Process.Kill()
			<-d
		}
	}
}

func run(ctx context.Context, rounds int, d time.Duration, clients int, etcdBin string, agentExtra []string, grpc, gateway bool) (err error) {
	etcdPath, err := exec.LookPath(etcdBin)
	if err != nil {
		return fmt.Errorf("etcd not found (Debian: apt-get install etcd-server): %w", err)
	}
	ver, err := exec.Command(etcdPath, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", etcdPath, err)
	}
	root, err := os.MkdirTemp("", "etcdbench-")
	if err != nil {
		return err
	}
	var ps procs
	defer func() {
		ps.stopAll()
		if err != nil && ctx.Err() == nil {
			// Keep the server logs for the error message's sake: print their tails.
			for _, f := range []string{"n1", "n2", "n3", "e1", "e2", "e3"} {
				if b, rerr := os.ReadFile(filepath.Join(root, f+".log")); rerr == nil && len(b) > 0 {
					fmt.Fprintf(os.Stderr, "--- %s.log (tail)\n%s\n", f, tail(b, 1500))
				}
			}
		}
		os.RemoveAll(root)
	}()

	agentBin := filepath.Join(root, "agent")
	build := exec.CommandContext(ctx, "go", "build", "-o", agentBin, "./cmd/agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/agent (run from the module root): %w", err)
	}
	ports, err := freePorts(nodes*3 + nodes*2)
	if err != nil {
		return err
	}
	agentAddrs, agentArgs, err := startAgents(&ps, root, agentBin, ports[:nodes*3], agentExtra)
	if err != nil {
		return err
	}
	etcdAddrs, etcdArgs, err := startEtcd(&ps, root, etcdPath, ports[nodes*3:])
	if err != nil {
		return err
	}

	fmt.Printf("etcdbench %s UTC: %d rounds × %s, %d clients over %d servers each, %d keys\n",
		time.Now().UTC().Format("2006-01-02 15:04"), rounds, d, clients, nodes, keys)
	fmt.Printf("etcd: %s\n", strings.Join(strings.Fields(strings.SplitN(string(ver), "\n", 2)[0]), " "))
	fmt.Printf("etcd n1 flags: %s\n", strings.Join(etcdArgs, " "))
	fmt.Printf("agent n1 flags: %s\n", strings.Join(agentArgs, " "))
	fmt.Printf("load average at start: %s\n", loadavg())

	agent := &agentSys{addrs: agentAddrs}
	etcd := &etcdSys{addrs: etcdAddrs}
	systems := []system{agent, etcd}
	if grpc {
		systems = append(systems, &etcdSys{addrs: etcdAddrs, grpc: true})
	}
	for i, s := range systems {
		if i == 2 {
			break // the same etcd cluster: written once
		}
		if err := s.ready(ctx, 60*time.Second); err != nil {
			return fmt.Errorf("%s not ready: %w", s.name(), err)
		}
		if err := s.fill(ctx); err != nil {
			return fmt.Errorf("%s: writing the %d keys: %w", s.name(), keys, err)
		}
		fmt.Fprintf(os.Stderr, "etcdbench: %s ready, %d keys written\n", s.name(), keys)
	}

	res := map[string]map[string][]result{} // op → system → rounds
	for _, op := range []string{"write", "read"} {
		res[op] = map[string][]result{}
	}
	for r := 1; r <= rounds; r++ {
		order := slices.Clone(systems)
		if r%2 == 0 { // who goes first alternates too
			slices.Reverse(order)
		}
		for _, op := range []string{"write", "read"} {
			for _, s := range order {
				m, err := measure(ctx, s, op, clients, d)
				if err != nil {
					return fmt.Errorf("round %d %s %s: %w", r, s.name(), op, err)
				}
				fmt.Fprintf(os.Stderr, "etcdbench: round %d %-5s %-5s %7.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  errors %d\n",
					r, op, s.name(), m.opsPer, ms(m.p50), ms(m.p99), m.errors)
				res[op][s.name()] = append(res[op][s.name()], m)
			}
		}
	}
	if gateway {
		m, err := measure(ctx, etcd, "sread", clients, d)
		if err != nil {
			return fmt.Errorf("etcd serializable reads: %w", err)
		}
		fmt.Printf("etcd serializable reads (gateway check, once): %.0f ops/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
			m.opsPer, ms(m.p50), ms(m.p99), m.errors)
	}
	fmt.Printf("load average at end: %s\n\n", loadavg())
	var names []string
	for _, s := range systems {
		names = append(names, s.name())
	}
	printTable(res, names, rounds)
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// freePorts reserves n distinct loopback ports by listening on port 0, then releases them.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// startAgents starts three agents with the harness's flags for the agent (targets.Args), moved to
// loopback: every flag that names an address, port or the data dir is replaced.
func startAgents(ps *procs, root, bin string, ports []int, extra []string) (addrs, n1args []string, err error) {
	ip := netip.MustParseAddr("127.0.0.1")
	spec := targets.ClusterSpec{Bootstrap: targets.BootstrapExpect, IPs: []netip.Addr{ip, ip, ip}}
	hp, serf, server := ports[0:nodes], ports[nodes:2*nodes], ports[2*nodes:3*nodes]
	for i := range nodes {
		var args []string
		for _, a := range (targets.Target{Kind: targets.Agent}).Args(spec, i) {
			if a == "agent" || hasAnyPrefix(a, "-bind=", "-client=", "-data-dir=", "-retry-join=") {
				continue
			}
			args = append(args, a)
		}
		dir := filepath.Join(root, targets.NodeName(i))
		args = append(args, "-bind=127.0.0.1", "-client=127.0.0.1", "-data-dir="+dir,
			"-http-port="+strconv.Itoa(hp[i]), "-serf-lan-port="+strconv.Itoa(serf[i]),
			"-server-port="+strconv.Itoa(server[i]))
		for j := range nodes {
			if j != i {
				args = append(args, "-retry-join=127.0.0.1:"+strconv.Itoa(serf[j]))
			}
		}
		args = append(args, extra...)
		if err := ps.start(root, targets.NodeName(i), bin, append([]string{"agent"}, args...)...); err != nil {
			return nil, nil, err
		}
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(hp[i]))
		if i == 0 {
			n1args = args
		}
	}
	return addrs, n1args, nil
}

func hasAnyPrefix(s string, ps ...string) bool {
	return slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(s, p) })
}

// startEtcd starts three etcd members with their defaults (fsync on, 100 ms heartbeat, 1 s
// election) on loopback.
func startEtcd(ps *procs, root, bin string, ports []int) (addrs, e1args []string, err error) {
	client, peer := ports[0:nodes], ports[nodes:2*nodes]
	var cluster []string
	for i := range nodes {
		cluster = append(cluster, fmt.Sprintf("e%d=http://127.0.0.1:%d", i+1, peer[i]))
	}
	for i := range nodes {
		name := fmt.Sprintf("e%d", i+1)
		c, p := fmt.Sprintf("http://127.0.0.1:%d", client[i]), fmt.Sprintf("http://127.0.0.1:%d", peer[i])
		args := []string{"--name=" + name, "--data-dir=" + filepath.Join(root, name+".etcd"),
			"--listen-client-urls=" + c, "--advertise-client-urls=" + c,
			"--listen-peer-urls=" + p, "--initial-advertise-peer-urls=" + p,
			"--initial-cluster=" + strings.Join(cluster, ","),
			"--initial-cluster-token=etcdbench", "--initial-cluster-state=new", "--logger=zap"}
		if err := ps.start(root, name, bin, args...); err != nil {
			return nil, nil, err
		}
		addrs = append(addrs, c)
		if i == 0 {
			e1args = args
		}
	}
	return addrs, e1args, nil
}

// A system is one cluster and how a client talks to it.
type system interface {
	name() string
	ready(ctx context.Context, within time.Duration) error
	fill(ctx context.Context) error
	// client returns client w's operation: op is "write" or "read" (etcd also "sread"), key is 0…keys-1.
	client(w int) func(ctx context.Context, op string, key, n int) error
}

func key(k int) string { return "bench/" + strconv.Itoa(k) }

type agentSys struct{ addrs []string }

func (*agentSys) name() string { return "agent" }

func (s *agentSys) kv(w int) *api.KV {
	cl, err := api.NewClient(&api.Config{Address: s.addrs[w%len(s.addrs)],
		Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}})
	if err != nil {
		panic(err) // only an invalid configuration, which this is not
	}
	return cl.KV()
}

func (s *agentSys) ready(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		last = func() error {
			for i, a := range s.addrs {
				cl, err := api.NewClient(&api.Config{Address: a})
				if err != nil {
					return err
				}
				l, err := cl.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
				if err != nil {
					return err
				}
				if l == "" {
					return fmt.Errorf("n%d knows no leader", i+1)
				}
			}
			_, err := s.kv(0).Put(&api.KVPair{Key: "bench/ready", Value: []byte("1")}, (&api.WriteOptions{}).WithContext(ctx))
			return err
		}()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *agentSys) fill(ctx context.Context) error { return fill(ctx, s) }

func (s *agentSys) client(w int) func(ctx context.Context, op string, k, n int) error {
	kv := s.kv(w)
	return func(ctx context.Context, op string, k, n int) error {
		if op == "write" {
			_, err := kv.Put(&api.KVPair{Key: key(k), Value: []byte("v" + strconv.Itoa(n))}, (&api.WriteOptions{}).WithContext(ctx))
			return err
		}
		p, _, err := kv.Get(key(k), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
		if err == nil && p == nil {
			err = fmt.Errorf("%s: not found", key(k))
		}
		return err
	}
}

// etcdSys is etcd through its JSON gateway or, with grpc, through its native gRPC API (the
// protocol of etcd's own clients), spoken by hand: unencrypted HTTP/2, gRPC framing, protobuf.
type etcdSys struct {
	addrs []string
	grpc  bool
}

func (s *etcdSys) name() string {
	if s.grpc {
		return "etcd-grpc"
	}
	return "etcd"
}

func (s *etcdSys) ready(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		last = func() error {
			for i := range s.addrs {
				if err := s.client(i)(ctx, "write", 0, 0); err != nil {
					return fmt.Errorf("e%d: %w", i+1, err)
				}
			}
			return nil
		}()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *etcdSys) fill(ctx context.Context) error { return fill(ctx, s) }

func (s *etcdSys) client(w int) func(ctx context.Context, op string, k, n int) error {
	if s.grpc {
		return s.grpcClient(w)
	}
	base := s.addrs[w%len(s.addrs)]
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	b64 := base64.StdEncoding.EncodeToString
	return func(ctx context.Context, op string, k, n int) error {
		var path string
		var body []byte
		if op == "write" {
			path = "/v3/kv/put"
			body, _ = json.Marshal(map[string]string{"key": b64([]byte(key(k))), "value": b64([]byte("v" + strconv.Itoa(n)))})
		} else {
			// serializable defaults to false: a linearizable read; "sread" is the serializable
			// (local, no ReadIndex) read of --gateway-check.
			path = "/v3/kv/range"
			body, _ = json.Marshal(map[string]any{"key": b64([]byte(key(k))), "serializable": op == "sread"})
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(rb))
		}
		if op != "write" {
			var rr struct {
				Kvs []json.RawMessage `json:"kvs"`
			}
			if err := json.Unmarshal(rb, &rr); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(rr.Kvs) != 1 {
				return fmt.Errorf("%s: %s: %d values", path, key(k), len(rr.Kvs))
			}
		}
		return nil
	}
}

// grpcClient is one HTTP/2 connection to a member, carrying etcdserverpb.KV/Put and
// etcdserverpb.KV/Range calls (a Range without serializable=true is linearizable).
func (s *etcdSys) grpcClient(w int) func(ctx context.Context, op string, k, n int) error {
	base := s.addrs[w%len(s.addrs)]
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	return func(ctx context.Context, op string, k, n int) error {
		method := "/etcdserverpb.KV/Range"
		msg := pbBytes(nil, 1, []byte(key(k))) // RangeRequest.key
		switch op {
		case "write":
			method = "/etcdserverpb.KV/Put"
			msg = pbBytes(msg, 2, []byte("v"+strconv.Itoa(n))) // PutRequest.value
		case "sread":
			msg = append(msg, 7<<3, 1) // RangeRequest.serializable = true
		}
		frame := make([]byte, 5, 5+len(msg)) // uncompressed, big-endian length
		frame[1], frame[2], frame[3], frame[4] = byte(len(msg)>>24), byte(len(msg)>>16), byte(len(msg)>>8), byte(len(msg))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+method, bytes.NewReader(append(frame, msg...)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		st := resp.Trailer.Get("Grpc-Status")
		if st == "" {
			st = resp.Header.Get("Grpc-Status") // a trailers-only answer
		}
		if resp.StatusCode != http.StatusOK || st != "0" {
			return fmt.Errorf("%s: HTTP %s, grpc-status %q: %s", method, resp.Status, st,
				resp.Trailer.Get("Grpc-Message")+resp.Header.Get("Grpc-Message"))
		}
		if len(rb) < 5 || int(rb[1])<<24|int(rb[2])<<16|int(rb[3])<<8|int(rb[4]) != len(rb)-5 {
			return fmt.Errorf("%s: bad gRPC frame of %d bytes", method, len(rb))
		}
		if op != "write" {
			kvs, err := pbCount(rb[5:], 2) // RangeResponse.kvs
			if err != nil {
				return fmt.Errorf("%s: %w", method, err)
			}
			if kvs != 1 {
				return fmt.Errorf("%s: %s: %d values", method, key(k), kvs)
			}
		}
		return nil
	}
}

// pbBytes appends a length-delimited protobuf field.
func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// pbCount counts the top-level occurrences of field in a protobuf message.
func pbCount(b []byte, field int) (int, error) {
	count := 0
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errors.New("bad protobuf tag")
		}
		b = b[n:]
		if int(tag>>3) == field {
			count++
		}
		switch tag & 7 {
		case 0:
			_, n = binary.Uvarint(b)
			if n <= 0 {
				return 0, errors.New("bad protobuf varint")
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return 0, errors.New("short protobuf fixed64")
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return 0, errors.New("bad protobuf length")
			}
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return 0, errors.New("short protobuf fixed32")
			}
			b = b[4:]
		default:
			return 0, fmt.Errorf("protobuf wire type %d", tag&7)
		}
	}
	return count, nil
}

// fill writes every key once, so that reads always find a value.
func fill(ctx context.Context, s system) error {
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.client(w)
			for k := w; k < keys; k += len(errs) {
				if err := c(ctx, "write", k, 0); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

type result struct {
	opsPer   float64
	p50, p99 time.Duration
	errors   int
}

// measure runs clients goroutines, client w on server w mod 3, each doing op back to back for d;
// an operation cut off by the end of d is not counted, nor is a failed one (errors are counted
// apart and shown). No success at all, or more errors than successes, is a failure.
func measure(ctx context.Context, s system, op string, clients int, d time.Duration) (result, error) {
	mctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, clients)
	errCount := make([]int, clients)
	firstErr := make([]error, clients)
	cs := make([]func(context.Context, string, int, int) error, clients)
	for w := range cs {
		cs[w] = s.client(w)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				k := (w + n*clients) % keys
				t0 := time.Now()
				err := cs[w](mctx, op, k, n)
				if mctx.Err() != nil {
					return
				}
				if err != nil {
					errCount[w]++
					if firstErr[w] == nil {
						firstErr[w] = err
					}
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r := result{}
	for _, e := range errCount {
		r.errors += e
	}
	if len(all) == 0 || r.errors > len(all) {
		return r, fmt.Errorf("%d ok, %d errors, first: %v", len(all), r.errors, errors.Join(firstErr...))
	}
	for _, e := range firstErr {
		if e != nil { // a leader change under load, typically: counted, shown, not fatal
			fmt.Fprintf(os.Stderr, "etcdbench: %s %s: %d errors, e.g. %v\n", s.name(), op, r.errors, e)
			break
		}
	}
	slices.Sort(all)
	r.opsPer = float64(len(all)) / elapsed.Seconds()
	r.p50, r.p99 = all[(len(all)-1)*50/100], all[(len(all)-1)*99/100]
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(res map[string]map[string][]result, names []string, rounds int) {
	for _, op := range []string{"write", "read"} {
		title := map[string]string{"write": "consistent writes/s", "read": "linearizable reads/s"}[op]
		fmt.Printf("%s\n", title)
		fmt.Printf("| | rounds | median | p50 ms (median) | p99 ms (median) | errors |\n|---|---|---|---|---|---|\n")
		med := map[string]float64{}
		for _, sys := range names {
			var ops, p50, p99 []float64
			var rs []string
			errs := 0
			for _, m := range res[op][sys] {
				ops, p50, p99 = append(ops, m.opsPer), append(p50, ms(m.p50)), append(p99, ms(m.p99))
				rs = append(rs, fmt.Sprintf("%.0f", m.opsPer))
				errs += m.errors
			}
			med[sys] = median(ops)
			fmt.Printf("| %s | %s | %.0f | %.2f | %.2f | %d |\n", sys, strings.Join(rs, ", "), med[sys], median(p50), median(p99), errs)
		}
		for _, peer := range names[1:] {
			var ratios []float64
			var rs []string
			for i := range rounds {
				x := res[op]["agent"][i].opsPer / res[op][peer][i].opsPer
				ratios = append(ratios, x)
				rs = append(rs, fmt.Sprintf("%.2f", x))
			}
			fmt.Printf("| agent / %s | %s | **%.2f×** (median of round ratios %.2f×) | | | |\n",
				peer, strings.Join(rs, ", "), med["agent"]/med[peer], median(ratios))
		}
		fmt.Println()
	}
}
