// Package testenv is the tests' one policy for what the machine must provide.
//
// A test that needs a Docker Engine calls RequireDocker (or, when it already tried to connect,
// DockerUnavailable). With -short it is skipped; without -short an unreachable engine FAILS the
// test with a message that says how to provide one, so that `go test ./...` on a machine without
// Docker never passes by skipping what it did not run.
package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Hint says how to give the tests an engine, or how to leave out the tests that need one.
const Hint = "start the Docker daemon (`sudo systemctl start docker`, `sudo dockerd &`, or Docker Desktop), " +
	"or set DOCKER_HOST to a running engine (e.g. DOCKER_HOST=unix:///run/docker.sock or tcp://host:2375); " +
	"`go test -short ./...` skips the tests that need Docker"

var (
	pingOnce sync.Once
	pingErr  error
)

// RequireDocker skips t under -short; otherwise it fails t unless the Docker Engine named by
// the environment (DOCKER_HOST, default the local socket) answers a ping within 5 s. The ping
// is done once per test binary.
func RequireDocker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs a Docker Engine")
	}
	pingOnce.Do(func() { pingErr = ping() })
	if pingErr != nil {
		DockerUnavailable(t, pingErr)
	}
}

// DockerUnavailable ends a test that needs Docker and could not reach it (err): skipped under
// -short, failed otherwise, naming err and Hint.
func DockerUnavailable(t testing.TB, err error) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: needs a Docker Engine (%v)", err)
	}
	t.Fatalf("this test needs a Docker Engine and none answers: %v\n%s", err, Hint)
}

func ping() error {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client from environment: %w", err)
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach the Docker Engine at %s: %w", api.DaemonHost(), err)
	}
	return nil
}
