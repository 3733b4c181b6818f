package workloads

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/raftcheck/harness/history"
)

// client is one worker's connection to one endpoint: its own transport, so keep-alive
// connections are not shared between workers and a fault on one does not stall the others.
type client struct {
	ep        Endpoint
	kv        *api.KV
	transport *http.Transport
}

func newClient(ep Endpoint) (*client, error) {
	tr := &http.Transport{
		Proxy:               nil, // the cluster is reached directly, never through $HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	c, err := api.NewClient(&api.Config{
		Address:    ep.Addr,
		Scheme:     "http",
		Transport:  tr,
		HttpClient: &http.Client{Transport: tr},
	})
	if err != nil {
		return nil, fmt.Errorf("consul client for %s (%s): %w", ep.Name, ep.Addr, err)
	}
	return &client{ep: ep, kv: c.KV(), transport: tr}, nil
}

func (c *client) close() { c.transport.CloseIdleConnections() }

// queryOptions returns the read options for mode, bound to ctx.
func queryOptions(ctx context.Context, mode string) *api.QueryOptions {
	q := &api.QueryOptions{}
	switch mode {
	case ReadConsistent:
		q.RequireConsistent = true
	case ReadStale:
		q.AllowStale = true
	}
	return q.WithContext(ctx)
}

// writeOutcome classifies a failed write: fail when it certainly did not happen (a 4xx answer,
// or a connection that was refused so nothing was sent), info otherwise (timeouts, lost
// connections, 5xx such as "No cluster leader", which a leader may answer after appending).
func writeOutcome(err error) history.Type {
	var se api.StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 {
		return history.Fail
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return history.Fail
	}
	return history.Info
}

// errText shortens an error for the history's error field.
func errText(err error) string {
	var se api.StatusError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return fmt.Sprintf("http %d: %s", se.Code, truncate(se.Body, 80))
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return truncate(err.Error(), 120)
}

// truncate trims s and shortens it to n bytes (history.Truncate: on a character boundary, saying
// how much was cut).
func truncate(s string, n int) string { return history.Truncate(strings.TrimSpace(s), n) }

// decodeInt parses a stored value; registers and set elements are decimal strings.
func decodeInt(b []byte) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not an integer", truncate(string(b), 20))
	}
	return v, nil
}

// opContext bounds one operation by timeout. It does not inherit ctx's cancellation, so an
// operation in flight when the run ends completes normally instead of being recorded as info.
func opContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// processes hands out process numbers: worker w starts as w; after an info completion it takes
// the next unused number, as Jepsen does.
type processes struct{ next atomic.Int64 }

// block reserves n consecutive numbers and returns the first.
func (p *processes) block(n int) history.Process {
	return history.Process(p.next.Add(int64(n)) - int64(n))
}

func (p *processes) fresh() history.Process { return history.Process(p.next.Add(1) - 1) }

// limiter paces invocations across all workers to a total rate. A zero rate never waits.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return &limiter{}
	}
	return &limiter{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the caller's slot, or returns ctx's error if ctx ends first.
func (l *limiter) wait(ctx context.Context) error {
	if l.interval == 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	slot := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runWorkers starts cfg.Concurrency workers, each with its own client to its endpoint
// (round-robin) and its first process number (w on a fresh workload), and waits for all of them.
func runWorkers(ctx context.Context, cfg Config, procs *processes, work func(ctx context.Context, w int, p history.Process, c *client)) error {
	clients := make([]*client, cfg.Concurrency)
	for w := range clients {
		c, err := newClient(cfg.Endpoints[w%len(cfg.Endpoints)])
		if err != nil {
			return err
		}
		clients[w] = c
	}
	base := procs.block(cfg.Concurrency)
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			work(ctx, w, base+history.Process(w), c)
		}()
	}
	wg.Wait()
	return nil
}
