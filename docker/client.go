// Package docker is the harness's only user of the Docker SDK: it builds the agent image,
// creates one bridge network per run, runs node containers with static IPs, injects process
// and network faults into them, and removes everything a run left behind, found by label.
//
// Every container and network it creates carries the label harness.run=<run id>; containers
// also carry harness.node=<node name>. Agent images carry harness.run=image-cache: they are
// shared by runs and kept (Clean with images=true removes them).
//
// The engine may be old: the package works on API 1.41 (Docker 20.10) and negotiates newer.
package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/docker/docker/client"
)

// Labels the package puts on what it creates.
const (
	LabelRun  = "harness.run"  // run id, on containers, networks and images
	LabelNode = "harness.node" // node name, on containers
	LabelRole = "harness.role" // "node" or "netfault-helper", on containers
	// LabelOwner is the value of the environment variable HARNESS_OWNER, on containers and
	// networks, when it is set: a CI job sets it so that its leftover check counts only what its
	// own tests started, not the runs of someone else using the same engine.
	LabelOwner = "harness.owner"

	// ImageCacheRun is the harness.run value of agent images: they outlive runs.
	ImageCacheRun = "image-cache"
)

// withOwner adds LabelOwner to labels when HARNESS_OWNER is set, and returns labels.
func withOwner(labels map[string]string) map[string]string {
	if owner := os.Getenv("HARNESS_OWNER"); owner != "" {
		labels[LabelOwner] = owner
	}
	return labels
}

// ErrNoEngine means the Docker Engine could not be reached; errors.Is finds it in the error
// Connect returns.
var ErrNoEngine = errors.New("docker engine unreachable")

// engineError explains an unreachable engine in one sentence and keeps the cause.
type engineError struct {
	host  string
	cause error
}

func (e *engineError) Error() string {
	if errors.Is(e.cause, os.ErrPermission) {
		return fmt.Sprintf("cannot reach the Docker Engine at %s: permission denied (run as root or join the docker group; set DOCKER_HOST to use another)", e.host)
	}
	return fmt.Sprintf("cannot reach the Docker Engine at %s: is the daemon running? (set DOCKER_HOST to use another)", e.host)
}

func (e *engineError) Unwrap() []error { return []error{ErrNoEngine, e.cause} }

// Client talks to one Docker Engine. It is safe for concurrent use.
type Client struct {
	api *client.Client

	mu     sync.Mutex
	helper string                // image of netfault helper containers
	images map[string]imageCache // binary path → last EnsureImage result
}

// pingTimeout bounds Connect's check, so a wedged engine fails fast instead of hanging.
const pingTimeout = 5 * time.Second

// Connect reaches the engine named by the environment (DOCKER_HOST, DOCKER_API_VERSION,
// DOCKER_CERT_PATH, DOCKER_TLS_VERIFY; default the local socket) and checks that it answers.
// An engine that does not answer gives an error wrapping ErrNoEngine.
func Connect(ctx context.Context) (*Client, error) {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client from environment: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := api.Ping(pctx); err != nil {
		host := api.DaemonHost()
		_ = api.Close()
		return nil, &engineError{host: host, cause: err}
	}
	return &Client{api: api, images: map[string]imageCache{}}, nil
}

// Close releases the client's connections; containers keep running.
func (c *Client) Close() error { return c.api.Close() }

// SetHelperImage names the image whose entrypoint runs `net ARGS…` in helper containers (see
// Node.NetFault); EnsureHelperImage sets it.
func (c *Client) SetHelperImage(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.helper = ref
}

// HelperImage returns the image used for netfault helper containers, "" if none is known.
func (c *Client) HelperImage() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.helper
}

// validName matches run ids and node names: they become parts of container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

func checkName(what, s string) error {
	if !validName.MatchString(s) {
		return fmt.Errorf("%s %q: want 1-63 characters of [a-zA-Z0-9_.-], starting with a letter or digit", what, s)
	}
	return nil
}
