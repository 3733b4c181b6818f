package docker

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// Network is one run's bridge network.
type Network struct {
	ID, Name string
	Subnet   netip.Prefix // a /24 from SubnetPool
	Gateway  netip.Addr   // .1, owned by the host: the harness's traffic to nodes comes from here
}

// SubnetPool is where CreateNetwork takes /24 subnets from.
var SubnetPool = netip.MustParsePrefix("10.231.0.0/16")

// createAttempts bounds retries when another creator takes the chosen subnet first.
const createAttempts = 8

// CreateNetwork creates the bridge network "harness-<runID>" with a /24 from SubnetPool that
// overlaps no other Docker network and no host interface. It is internal (no route out; the
// host still reaches node IPs) and labelled harness.run=runID.
func (c *Client) CreateNetwork(ctx context.Context, runID string) (*Network, error) {
	if err := checkName("run id", runID); err != nil {
		return nil, err
	}
	used, err := c.usedPrefixes(ctx)
	if err != nil {
		return nil, err
	}
	name := "harness-" + runID
	h := fnv.New32a()
	h.Write([]byte(runID))
	start := int(h.Sum32() % 256) // spread concurrent runs over the pool
	attempts := 0
	for i := range 256 {
		subnet := netip.PrefixFrom(nthSubnet(start+i), 24)
		if overlapsAny(subnet, used) {
			continue
		}
		gw := subnet.Addr().Next()
		resp, err := c.api.NetworkCreate(ctx, name, network.CreateOptions{
			Driver:   "bridge",
			Internal: true,
			Labels:   withOwner(map[string]string{LabelRun: runID}),
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{
				Subnet: subnet.String(), Gateway: gw.String(),
			}}},
		})
		if err == nil {
			return &Network{ID: resp.ID, Name: name, Subnet: subnet, Gateway: gw}, nil
		}
		if !strings.Contains(err.Error(), "overlaps") {
			return nil, fmt.Errorf("create network %s: %w", name, err)
		}
		if attempts++; attempts == createAttempts {
			return nil, fmt.Errorf("create network %s: %d subnets were taken meanwhile: %w", name, attempts, err)
		}
	}
	return nil, fmt.Errorf("create network %s: no free /24 left in %v", name, SubnetPool)
}

func nthSubnet(i int) netip.Addr {
	b := SubnetPool.Addr().As4()
	b[2] = byte(i % 256)
	return netip.AddrFrom4(b)
}

// usedPrefixes lists the IPv4 subnets of all Docker networks and host interfaces.
func (c *Client) usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	nets, err := c.api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", "bridge"))})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var used []netip.Prefix
	for _, n := range nets {
		for _, cfg := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(cfg.Subnet); err == nil {
				used = append(used, p)
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	return used, nil
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// NodeIP returns the address of node i, counting from 1: .11 for node 1, .12 for node 2, up
// to .250 for node 240. It panics for other i.
func (n *Network) NodeIP(i int) netip.Addr {
	if i < 1 || i > 240 {
		panic(fmt.Sprintf("docker: NodeIP(%d): node numbers run from 1 to 240", i))
	}
	b := n.Subnet.Addr().As4()
	b[3] = byte(10 + i)
	return netip.AddrFrom4(b)
}

// checkNodeIP refuses addresses Docker would accept at create and fail at start (or not at
// all): outside the subnet, the network address, the gateway, the broadcast address.
func (n *Network) checkNodeIP(ip netip.Addr) error {
	b := ip.As4()
	if !ip.Is4() || !n.Subnet.Contains(ip) || ip == n.Gateway || b[3] == 0 || b[3] == 255 {
		return fmt.Errorf("node IP %v is not a usable host address of %v (gateway %v)", ip, n.Subnet, n.Gateway)
	}
	return nil
}
