package agent

import (
	"net/http"
	"time"

	"github.com/hashicorp/serf/serf"
)

// The minimal catalog: the leader registers every Serf member as a node with a serfHealth check,
// passing while Serf sees it alive and critical once Serf marks it failed; a member that left or
// was reaped is deregistered. Sessions name these nodes and checks (session.go).

// reconcileNode brings the catalog entry of one member in line with Serf. Leader only.
func (a *Agent) reconcileNode(m serf.Member, reap bool) {
	cur := a.fsm.Node(m.Name)
	if reap || m.Status == serf.StatusLeft {
		if cur != nil {
			a.applyCatalog(command{Op: "node-deregister", Node: &CatalogNode{Node: m.Name}})
		}
		return
	}
	status := checkPassing
	switch m.Status {
	case serf.StatusAlive:
	case serf.StatusFailed:
		status = checkCritical
	default:
		return // leaving: wait for left
	}
	n := &CatalogNode{ID: m.Tags["id"], Node: m.Name, Address: m.Addr.String(), Status: status}
	if cur != nil && cur.ID == n.ID && cur.Address == n.Address && cur.Status == n.Status {
		return
	}
	a.applyCatalog(command{Op: "node-register", Node: n})
}

func (a *Agent) applyCatalog(c command) {
	if _, err := a.apply(c); err != nil {
		a.logger.Printf("[WARN] agent: catalog %s %s: %v", c.Op, c.Node.Node, err)
	}
}

// lockDelayed reports whether key is in a lock-delay on this server (the leader's clock decides,
// before the lock goes through Raft, as in Consul).
func (a *Agent) lockDelayed(key string) bool {
	if a.cfg.Unsafe[UnsafeLockDelayIgnored] {
		return false // seeded bug
	}
	return a.fsm.LockDelay(key).After(time.Now())
}

// catalogNode is one element of GET /v1/catalog/nodes, in Consul's shape.
type catalogNode struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
}

// healthCheck is one element of GET /v1/health/node/:node, in Consul's shape.
type healthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Interval    string
	Timeout     string
	ExposedPort int
	Definition  struct{}
	CreateIndex uint64
	ModifyIndex uint64
}

// catalogRead parses a catalog or health read and routes it; local is false when the answer was
// already written (forwarded, or an error).
func (a *Agent) catalogRead(w http.ResponseWriter, r *http.Request) (opts queryOptions, local bool, err error) {
	if err := allow(r, http.MethodGet); err != nil {
		return opts, false, err
	}
	opts, herr := parseQuery(r.URL.Query(), a.cfg.Datacenter)
	if herr != nil {
		return opts, false, herr
	}
	local, err = a.route(w, r, nil, opts.mode, false)
	return opts, local, err
}

// writeCatalog answers a catalog or health read with its query metadata; as Consul, these answers
// also name the consistency they were served with.
func (a *Agent) writeCatalog(w http.ResponseWriter, opts queryOptions, index uint64, out any) error {
	a.setMeta(w, index)
	w.Header().Set("X-Consul-Effective-Consistency", opts.mode.String())
	return writeJSON(w, http.StatusOK, out)
}

func (a *Agent) handleCatalogNodes(w http.ResponseWriter, r *http.Request) error {
	opts, local, err := a.catalogRead(w, r)
	if !local || err != nil {
		return err
	}
	var nodes []*CatalogNode
	var index uint64
	if err := a.block(r, opts, func() uint64 { nodes, index = a.fsm.Nodes(); return index }); err != nil {
		return err
	}
	out := make([]catalogNode, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, catalogNode{ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: a.cfg.Datacenter,
			TaggedAddresses: map[string]string{"lan": n.Address, "lan_ipv4": n.Address, "wan": n.Address, "wan_ipv4": n.Address},
			Meta:            map[string]string{"consul-network-segment": ""}, CreateIndex: n.CreateIndex, ModifyIndex: n.ModifyIndex})
	}
	return a.writeCatalog(w, opts, index, out)
}

func (a *Agent) handleHealthNode(w http.ResponseWriter, r *http.Request, node string) error {
	if node == "" && r.Method == http.MethodGet {
		return errf(http.StatusBadRequest, "Missing node name")
	}
	opts, local, err := a.catalogRead(w, r)
	if !local || err != nil {
		return err
	}
	var n *CatalogNode
	var index uint64
	if err := a.block(r, opts, func() uint64 { n, index = a.fsm.NodeAt(node); return index }); err != nil {
		return err
	}
	out := []healthCheck{}
	if n != nil {
		output := serfCheckAliveOutput
		if n.Status == checkCritical {
			output = serfCheckFailOutput
		}
		out = append(out, healthCheck{Node: n.Node, CheckID: serfCheckID, Name: serfCheckName, Status: n.Status,
			Output: output, ServiceTags: []string{}, CreateIndex: n.CheckCreateIndex, ModifyIndex: n.CheckModifyIndex})
	}
	return a.writeCatalog(w, opts, index, out)
}
