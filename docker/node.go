package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
)

// NodeSpec describes one node container.
type NodeSpec struct {
	Name  string     // node name: the container's hostname and DNS alias, label harness.node
	IP    netip.Addr // static address inside the run's network, e.g. Network.NodeIP(i)
	Image string     // image to run
	Cmd   []string   // arguments after the image's entrypoint
	Env   []string   // KEY=value
	RunID string     // label harness.run; part of the container name
	// DataDir, if set, is a host folder bind-mounted as the container's /data (the target's
	// data dir), e.g. a power-loss filesystem's mountpoint. Wipe keeps it: the caller empties it.
	DataDir string
}

// Node is one created container of a run.
type Node struct {
	c    *Client
	mu   sync.Mutex // guards id, spec and pastLogs, which Wipe and Replace replace
	id   string
	spec NodeSpec
	netw *Network
	// pastLogs holds the logs of containers this node had before a Wipe.
	pastLogs []byte
	name     string
	ip       netip.Addr
	runID    string
}

// Name returns the node's name (its hostname).
func (n *Node) Name() string { return n.name }

// IP returns the node's static address, kept across restarts.
func (n *Node) IP() netip.Addr { return n.ip }

// cid is the current container id.
func (n *Node) cid() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// ID returns the container id.
func (n *Node) ID() string { return n.cid() }

// CreateNode creates (does not start) the container "harness-<runID>-<name>" on net with a
// static IP and hostname = name. It gets CAP_NET_ADMIN (for nftables faults) and nothing
// else: not privileged, no restart policy, no auto-remove.
func (c *Client) CreateNode(ctx context.Context, net *Network, spec NodeSpec) (*Node, error) {
	if err := checkName("node name", spec.Name); err != nil {
		return nil, err
	}
	if err := checkName("run id", spec.RunID); err != nil {
		return nil, err
	}
	if err := net.checkNodeIP(spec.IP); err != nil {
		return nil, fmt.Errorf("create node %s: %w", spec.Name, err)
	}
	img := spec.Image
	if img == "" {
		return nil, fmt.Errorf("create node %s: no image given", spec.Name)
	}
	name := "harness-" + spec.RunID + "-" + spec.Name
	resp, err := c.api.ContainerCreate(ctx,
		&container.Config{
			Image:    img,
			Cmd:      spec.Cmd,
			Env:      spec.Env,
			Hostname: spec.Name,
			Labels:   withOwner(map[string]string{LabelRun: spec.RunID, LabelNode: spec.Name, LabelRole: "node"}),
		},
		&container.HostConfig{
			NetworkMode: container.NetworkMode(net.Name),
			CapAdd:      []string{"NET_ADMIN"},
			Mounts:      dataMounts(spec.DataDir),
		},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			net.Name: {
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: spec.IP.String()},
				Aliases:    []string{spec.Name},
			},
		}},
		nil, name)
	if err != nil {
		return nil, fmt.Errorf("create node %s: %w", spec.Name, err)
	}
	return &Node{c: c, id: resp.ID, name: spec.Name, ip: spec.IP, runID: spec.RunID, spec: spec, netw: net}, nil
}

// DataPath is where a node's DataDir appears in its container.
const DataPath = "/data"

// dataMounts binds dir (if any) as the container's DataPath. The bind is made when the container
// starts, so a filesystem mounted at dir later (again) is what the next start sees.
func dataMounts(dir string) []mount.Mount {
	if dir == "" {
		return nil
	}
	return []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: DataPath}}
}

// CreateNodes creates the nodes in parallel. On error it removes the ones it created.
func (c *Client) CreateNodes(ctx context.Context, net *Network, specs []NodeSpec) ([]*Node, error) {
	nodes := make([]*Node, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { nodes[i], errs[i] = c.CreateNode(ctx, net, s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, n := range nodes {
			if n != nil {
				_ = n.Remove(context.WithoutCancel(ctx))
			}
		}
		return nil, err
	}
	return nodes, nil
}

// StartNodes starts the nodes in parallel.
func StartNodes(ctx context.Context, nodes []*Node) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts the container. Its network namespace is new: earlier faults are gone.
func (n *Node) Start(ctx context.Context) error {
	if err := n.c.api.ContainerStart(ctx, n.cid(), container.StartOptions{}); err != nil {
		return fmt.Errorf("start node %s: %w", n.name, err)
	}
	return nil
}

// Signal sends sig ("SIGTERM", "SIGINT", "SIGKILL", "SIGSTOP", …) to the node's main process
// and returns at once. On a node created here (no StopSignal) the engine treats any signal as
// a stop request: a paused node is thawed first so the signal arrives.
func (n *Node) Signal(ctx context.Context, sig string) error {
	if err := n.c.api.ContainerKill(ctx, n.cid(), sig); err != nil {
		return fmt.Errorf("signal %s to node %s: %w", sig, n.name, err)
	}
	return nil
}

// Stop sends sig ("" = SIGTERM), waits up to timeout for the process to exit, then sends
// SIGKILL and waits for the exit. A node that is not running is left alone. It does not use
// the engine's stop call, whose signal API 1.41 ignores.
func (n *Node) Stop(ctx context.Context, sig string, timeout time.Duration) error {
	if sig == "" {
		sig = "SIGTERM"
	}
	st, err := n.inspect(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Armed before the signal: the engine registers the wait before it answers.
	resC, errC := n.c.api.ContainerWait(wctx, n.cid(), container.WaitConditionNextExit)
	if err := n.c.api.ContainerKill(ctx, n.cid(), sig); err != nil {
		if cerrdefs.IsConflict(err) { // exited meanwhile
			return nil
		}
		return fmt.Errorf("stop node %s with %s: %w", n.name, sig, err)
	}
	var grace <-chan time.Time
	if !isKill(sig) {
		t := time.NewTimer(timeout)
		defer t.Stop()
		grace = t.C
	}
	for {
		select {
		case r := <-resC:
			if r.Error != nil && r.Error.Message != "" {
				return fmt.Errorf("stop node %s: %s", n.name, r.Error.Message)
			}
			return nil
		case err := <-errC:
			return fmt.Errorf("stop node %s: wait: %w", n.name, err)
		case <-grace:
			grace = nil
			if err := n.c.api.ContainerKill(ctx, n.cid(), "SIGKILL"); err != nil {
				if cerrdefs.IsConflict(err) {
					return nil
				}
				return fmt.Errorf("stop node %s: SIGKILL after %v: %w", n.name, timeout, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("stop node %s: %w", n.name, ctx.Err())
		}
	}
}

func isKill(sig string) bool {
	s := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	return s == "KILL" || s == "9"
}

// Kill sends SIGKILL and waits for the exit.
func (n *Node) Kill(ctx context.Context) error { return n.Stop(ctx, "SIGKILL", 0) }

// Pause freezes every process of the node (cgroup freezer). Peers' connects may still
// complete (the kernel answers from the listen backlog) but nothing is read. A freeze can fail
// on a loaded machine (runc: "unable to freeze", after which it thaws the cgroup again); the
// error says so, and the node is then not paused.
func (n *Node) Pause(ctx context.Context) error {
	if err := n.c.api.ContainerPause(ctx, n.cid()); err != nil {
		if st, ierr := n.inspect(ctx); ierr == nil && st.Paused { // paused after all (an answer lost)
			return nil
		}
		return fmt.Errorf("pause node %s: %w", n.name, err)
	}
	return nil
}

// Unpause thaws a paused node. A node the engine says is not paused (a freeze that failed, a
// kill since) is already what Unpause promises: that is not an error.
func (n *Node) Unpause(ctx context.Context) error {
	if err := n.c.api.ContainerUnpause(ctx, n.cid()); err != nil {
		if st, ierr := n.inspect(ctx); ierr == nil && !st.Paused {
			return nil
		}
		return fmt.Errorf("unpause node %s: %w", n.name, err)
	}
	return nil
}

// Restart is Stop(sig, timeout) then Start. The IP stays; network faults are gone (new
// network namespace) and must be applied again.
func (n *Node) Restart(ctx context.Context, sig string, timeout time.Duration) error {
	if err := n.Stop(ctx, sig, timeout); err != nil {
		return err
	}
	return n.Start(ctx)
}

func (n *Node) inspect(ctx context.Context) (*container.State, error) {
	r, err := n.c.api.ContainerInspect(ctx, n.cid())
	if err != nil {
		return nil, fmt.Errorf("inspect node %s: %w", n.name, err)
	}
	if r.ContainerJSONBase == nil || r.State == nil {
		return nil, fmt.Errorf("inspect node %s: no state in answer", n.name)
	}
	return r.State, nil
}

// State returns the engine's status of the container: "created", "running", "paused",
// "restarting", "removing", "exited" or "dead".
func (n *Node) State(ctx context.Context) (string, error) {
	st, err := n.inspect(ctx)
	if err != nil {
		return "", err
	}
	return string(st.Status), nil
}

// Exited reports whether the container's process has exited (state "exited" or "dead"); a
// created container that never ran has not.
func (n *Node) Exited(ctx context.Context) (bool, error) {
	st, err := n.State(ctx)
	return st == "exited" || st == "dead", err
}

// ExitCode returns the exit status of the node's last run (137 after SIGKILL); it is
// meaningful only when State is "exited".
func (n *Node) ExitCode(ctx context.Context) (int, error) {
	st, err := n.inspect(ctx)
	if err != nil {
		return 0, err
	}
	return st.ExitCode, nil
}

// Exec runs cmd in the running node (no shell: scratch images have none) and returns its
// output and exit status. err is for failures to run it at all; a command that ran and
// failed gives err == nil and exitCode != 0.
func (n *Node) Exec(ctx context.Context, cmd []string) (stdout, stderr string, exitCode int, err error) {
	api := n.c.api
	cr, err := api.ContainerExecCreate(ctx, n.cid(), container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", "", 0, fmt.Errorf("exec %q in node %s: %w", cmd, n.name, err)
	}
	att, err := api.ContainerExecAttach(ctx, cr.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", "", 0, fmt.Errorf("exec %q in node %s: %w", cmd, n.name, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, func() { att.Close() }) // the hijacked stream ignores ctx
	defer stop()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, att.Reader); err != nil {
		return out.String(), errb.String(), 0, fmt.Errorf("exec %q in node %s: read output: %w", cmd, n.name, err)
	}
	for {
		ins, err := api.ContainerExecInspect(ctx, cr.ID)
		if err != nil {
			return out.String(), errb.String(), 0, fmt.Errorf("exec %q in node %s: %w", cmd, n.name, err)
		}
		if !ins.Running {
			return out.String(), errb.String(), ins.ExitCode, nil
		}
		// The stream can close a moment before the engine records the exit.
		select {
		case <-ctx.Done():
			return out.String(), errb.String(), 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// NetFault runs the netfault command line (`net ARGS…`, e.g. "set", "--drop-in",
// "10.231.4.12") in the node's network namespace, through a short-lived helper container of the
// helper image that shares the namespace. The node's own image is never used: the target may be
// a binary that knows nothing of the harness, and a paused node's processes cannot run anything
// (the helper's are not frozen). A stopped node has no namespace: that is an error, and rules
// applied earlier are gone anyway. On failure the error carries the command's stderr.
func (n *Node) NetFault(ctx context.Context, args []string) error {
	_, err := n.netHelper(ctx, args)
	return err
}

// NetShow returns the node's current fault rules as the netfault `show` command prints them
// ("(healed)" when there are none).
func (n *Node) NetShow(ctx context.Context) (string, error) {
	out, err := n.netHelper(ctx, []string{"show"})
	return strings.TrimSpace(out), err
}

// netHelper runs `net ARGS…` in a helper container that joins the node's network namespace and
// returns what it printed on stdout.
func (n *Node) netHelper(ctx context.Context, args []string) (string, error) {
	what := fmt.Sprintf("net %s on node %s", strings.Join(args, " "), n.name)
	st, err := n.inspect(ctx)
	if err != nil {
		return "", err
	}
	if !st.Running {
		return "", fmt.Errorf("%s: node is %s, not running", what, st.Status)
	}
	img := n.c.HelperImage()
	if img == "" {
		return "", fmt.Errorf("%s: no helper image: call EnsureHelperImage or SetHelperImage", what)
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	api := n.c.api
	cr, err := api.ContainerCreate(ctx,
		&container.Config{
			Image:  img,
			Cmd:    append([]string{"net"}, args...),
			Labels: withOwner(map[string]string{LabelRun: n.runID, LabelNode: n.name, LabelRole: "netfault-helper"}),
		},
		&container.HostConfig{
			NetworkMode: container.NetworkMode("container:" + n.cid()),
			CapAdd:      []string{"NET_ADMIN"},
		},
		nil, nil, "harness-"+n.runID+"-"+n.name+"-netfault-"+hex.EncodeToString(suffix[:]))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		_ = api.ContainerRemove(context.WithoutCancel(ctx), cr.ID, container.RemoveOptions{Force: true})
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resC, errC := api.ContainerWait(wctx, cr.ID, container.WaitConditionNextExit)
	if err := api.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	var code int64
	select {
	case r := <-resC:
		code = r.StatusCode
	case err := <-errC:
		return "", fmt.Errorf("%s: wait: %w", what, err)
	}
	var stdout, stderr bytes.Buffer
	if rc, err := api.ContainerLogs(ctx, cr.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		_, _ = stdcopy.StdCopy(&stdout, &stderr, rc)
		rc.Close()
	}
	if code != 0 {
		return stdout.String(), fmt.Errorf("%s: exit %d: %s", what, code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Logs writes the node's whole log, stdout and stderr interleaved per write, to w. The log
// spans restarts.
func (n *Node) Logs(ctx context.Context, w io.Writer) error {
	n.mu.Lock()
	past := n.pastLogs
	n.mu.Unlock()
	if len(past) > 0 {
		if _, err := w.Write(past); err != nil {
			return err
		}
	}
	rc, err := n.c.api.ContainerLogs(ctx, n.cid(), container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Errorf("logs of node %s: %w", n.name, err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil {
		return fmt.Errorf("logs of node %s: %w", n.name, err)
	}
	return nil
}

// Remove force-removes the container and its anonymous volumes; a container already gone
// is not an error.
func (n *Node) Remove(ctx context.Context) error {
	err := n.c.api.ContainerRemove(ctx, n.cid(), container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove node %s: %w", n.name, err)
	}
	return nil
}

// Wipe replaces the node by a fresh one with the same name, address and command line but
// empty storage: the container is killed and removed (its logs are kept for Logs) and a new one
// is created, not started. For the agent this is a server whose data dir was lost: it comes back
// with a new node id.
func (n *Node) Wipe(ctx context.Context) error {
	n.mu.Lock()
	spec := n.spec
	n.mu.Unlock()
	return n.recreate(ctx, spec, nil, fmt.Sprintf("node %s wiped (new container, empty data)", n.name))
}

// Replace gives the stopped node a new container that runs image with cmd (another release of
// the target, with its own command line) and keeps everything else: name, address, labels, and
// the data dir. The data dir's files are copied by the engine from the old container's DataPath
// into the new one (docker cp of a stopped container: contents, modes and owners); a DataDir bind
// is simply bound again. The new container is created, not started; the old one's logs are kept
// for Logs. Replacing a running node is an error: its data dir would be copied mid-write.
func (n *Node) Replace(ctx context.Context, image string, cmd []string) error {
	if image == "" {
		return fmt.Errorf("replace node %s: no image given", n.name)
	}
	st, err := n.inspect(ctx)
	if err != nil {
		return err
	}
	if st.Running || st.Paused {
		return fmt.Errorf("replace node %s: it is %s; stop it first", n.name, st.Status)
	}
	n.mu.Lock()
	spec := n.spec
	n.mu.Unlock()
	spec.Image, spec.Cmd = image, slices.Clone(cmd)
	var data *os.File
	if spec.DataDir == "" {
		if data, err = n.saveData(ctx); err != nil {
			return err
		}
		if data != nil {
			defer os.Remove(data.Name())
			defer data.Close()
		}
	}
	return n.recreate(ctx, spec, data, fmt.Sprintf("node %s replaced: image %s, data dir kept", n.name, image))
}

// saveData copies the stopped container's DataPath into a temporary file (a tar archive, as
// the engine gives it), rewound for reading; nil when the container has no DataPath.
func (n *Node) saveData(ctx context.Context) (*os.File, error) {
	rc, _, err := n.c.api.CopyFromContainer(ctx, n.cid(), DataPath)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replace node %s: copy %s out: %w", n.name, DataPath, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "harness-data-*.tar")
	if err == nil {
		if _, err = io.Copy(f, rc); err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("replace node %s: copy %s out: %w", n.name, DataPath, err)
	}
	return f, nil
}

// recreate removes the node's container (keeping its logs) and creates a new one from spec,
// not started; data, if any, is a tar archive of DataPath (its entries named "data/…") unpacked
// into the new container first. mark ends the old container's logs.
func (n *Node) recreate(ctx context.Context, spec NodeSpec, data io.Reader, mark string) error {
	var logs bytes.Buffer
	_ = n.Logs(ctx, &logs)
	if err := n.Remove(ctx); err != nil {
		return err
	}
	fresh, err := n.c.CreateNode(ctx, n.netw, spec)
	if err != nil {
		return fmt.Errorf("recreate node %s: %w", n.name, err)
	}
	if data != nil {
		parent := path.Dir(DataPath)
		if err := n.c.api.CopyToContainer(ctx, fresh.id, parent, data, container.CopyToContainerOptions{CopyUIDGID: true}); err != nil {
			return fmt.Errorf("recreate node %s: copy %s in: %w", n.name, DataPath, err)
		}
	}
	fmt.Fprintf(&logs, "--- harness: %s ---\n", mark)
	n.mu.Lock()
	n.id, n.pastLogs, n.spec = fresh.id, logs.Bytes(), spec
	n.mu.Unlock()
	return nil
}

// Cmd returns the node's command line (after the image's entrypoint).
func (n *Node) Cmd() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.spec.Cmd)
}

// Image returns the image the node's container runs.
func (n *Node) Image() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.spec.Image
}
