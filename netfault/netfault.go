// Package netfault applies network faults (packet drops, random loss) inside the network
// namespace it runs in, with nftables rules in one table of its own.
//
// All state lives in the table "inet harness_fault". Apply replaces that table in one netlink
// batch (one nftables transaction, so a fault is never half applied) and Heal deletes it. No
// other table is read or changed: Docker keeps its embedded-DNS NAT rules in the same
// namespace, so the ruleset is never flushed.
//
// Rules live in the network namespace, not in the process: they vanish when the container's
// namespace does (stop, restart), and the caller must apply them again after a start.
//
// Only IPv4 peers are supported; the harness's bridge networks are IPv4.
package netfault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// TableName is the name of the one nftables table (family inet) this package owns.
const TableName = "harness_fault"

// probeTable is the throwaway table Probe creates and deletes.
const probeTable = "harness_fault_probe"

// Rules is the complete fault state of one network namespace. The zero Rules means healed.
type Rules struct {
	// DropIn drops every packet arriving from these addresses (input hook).
	DropIn []netip.Addr
	// DropOut drops every packet sent to these addresses (output hook). For TCP a drop in
	// one direction breaks both, because handshakes and ACKs need the other way.
	DropOut []netip.Addr
	// LossPercent drops packets at random with this probability, 0..100; 0 disables loss.
	// Each packet is tested once: on input if it comes from a loss peer, on output if it goes
	// to one.
	LossPercent int
	// LossPeers limits loss to packets from or to these addresses. Empty means every packet
	// that does not use the loopback interface (peers, the harness, DNS on the bridge).
	LossPeers []netip.Addr
}

// IsZero reports whether r injects no fault at all.
func (r Rules) IsZero() bool {
	return len(r.DropIn) == 0 && len(r.DropOut) == 0 && r.LossPercent == 0
}

// Validate checks that every address is IPv4 and the loss is within 0..100.
func (r Rules) Validate() error {
	if r.LossPercent < 0 || r.LossPercent > 100 {
		return fmt.Errorf("loss %d%% out of range 0..100", r.LossPercent)
	}
	for _, l := range []struct {
		name  string
		addrs []netip.Addr
	}{{"drop-in", r.DropIn}, {"drop-out", r.DropOut}, {"loss-peers", r.LossPeers}} {
		for _, a := range l.addrs {
			if !a.Unmap().Is4() {
				return fmt.Errorf("%s: %v is not an IPv4 address (only IPv4 is supported)", l.name, a)
			}
		}
	}
	return nil
}

// normalize returns r with addresses unmapped, sorted and deduplicated, so that Show returns
// what Apply was given.
func (r Rules) normalize() Rules {
	norm := func(in []netip.Addr) []netip.Addr {
		if len(in) == 0 {
			return nil
		}
		out := make([]netip.Addr, len(in))
		for i, a := range in {
			out[i] = a.Unmap()
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return slices.Compact(out)
	}
	return Rules{DropIn: norm(r.DropIn), DropOut: norm(r.DropOut), LossPercent: r.LossPercent, LossPeers: norm(r.LossPeers)}
}

// String renders r the way `net set` takes it, e.g. "--drop-in 10.0.0.2 --loss 20".
func (r Rules) String() string {
	if r.IsZero() {
		return "(healed)"
	}
	return strings.Join(r.Args(), " ")
}

// Args renders r as arguments of the `net set` command; Main("set", r.Args()...) applies r.
func (r Rules) Args() []string {
	var args []string
	add := func(flag string, addrs []netip.Addr) {
		if len(addrs) > 0 {
			args = append(args, flag, joinAddrs(addrs))
		}
	}
	add("--drop-in", r.DropIn)
	add("--drop-out", r.DropOut)
	if r.LossPercent > 0 {
		args = append(args, "--loss", fmt.Sprint(r.LossPercent))
		add("--loss-peers", r.LossPeers)
	}
	return args
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Apply makes r the fault state of the current network namespace, replacing any earlier
// Apply, in one transaction. Applying the zero Rules is the same as Heal.
func Apply(r Rules) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.IsZero() {
		return Heal()
	}
	c, err := nftables.New()
	if err != nil {
		return explain("open netlink", err)
	}
	build(c, TableName, r.normalize())
	if err := c.Flush(); err != nil {
		return explain("apply rules", err)
	}
	return nil
}

// Heal removes every fault this package applied. Healing a healed namespace is not an error.
func Heal() error {
	c, err := nftables.New()
	if err != nil {
		return explain("open netlink", err)
	}
	deleteTable(c, TableName)
	if err := c.Flush(); err != nil {
		return explain("heal", err)
	}
	return nil
}

// Probe checks that this process may program nftables here and that the kernel has every
// feature Apply uses (inet tables, sets, numgen): it writes a complete throwaway table and
// deletes it again.
func Probe() error {
	c, err := nftables.New()
	if err != nil {
		return explain("open netlink", err)
	}
	ip := netip.MustParseAddr("192.0.2.1") // TEST-NET-1, never a real peer
	build(c, probeTable, Rules{DropIn: []netip.Addr{ip}, DropOut: []netip.Addr{ip}, LossPercent: 1, LossPeers: []netip.Addr{ip}})
	if err := c.Flush(); err != nil {
		return explain("probe", err)
	}
	deleteTable(c, probeTable)
	if err := c.Flush(); err != nil {
		return explain("probe cleanup", err)
	}
	return nil
}

// explain turns a permission error into advice; other errors keep their text.
func explain(what string, err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%s: %w: nftables needs CAP_NET_ADMIN in this network namespace (create the container with --cap-add NET_ADMIN)", what, err)
	}
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT) {
		return fmt.Errorf("%s: %w: the kernel lacks an nf_tables feature (inet family, sets or numgen)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// deleteTable queues an idempotent delete: adding an existing table is a no-op, so add+del
// removes it whether or not it existed, without an ENOENT.
func deleteTable(c *nftables.Conn, name string) *nftables.Table {
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: name})
	c.DelTable(t)
	return t
}

const (
	setDropIn    = "drop_in"
	setDropOut   = "drop_out"
	setLossPeers = "loss_peers"

	nfprotoIPv4   = 2 // NFPROTO_IPV4
	ngRandom      = 1 // NFT_NG_RANDOM
	offsetSrcAddr = 12
	offsetDstAddr = 16
)

// build queues the batch that replaces table name with r:
//
//	table inet harness_fault {
//	  set drop_in { type ipv4_addr }  set drop_out { … }  set loss_peers { … }
//	  chain input  { type filter hook input priority 0; policy accept;
//	                 ip saddr @drop_in drop; [ip saddr @loss_peers | iifname != "lo"] numgen random mod 100 < P drop }
//	  chain output { … daddr @drop_out …, oifname … }
//	}
func build(c *nftables.Conn, name string, r Rules) {
	deleteTable(c, name)
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: name})
	accept := nftables.ChainPolicyAccept
	chain := func(n string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: n, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	}
	in := chain("input", nftables.ChainHookInput)
	out := chain("output", nftables.ChainHookOutput)
	set := func(n string, addrs []netip.Addr) *nftables.Set {
		s := &nftables.Set{Table: t, Name: n, KeyType: nftables.TypeIPAddr}
		elems := make([]nftables.SetElement, len(addrs))
		for i, a := range addrs {
			b := a.Unmap().As4()
			elems[i] = nftables.SetElement{Key: b[:]}
		}
		// AddSet only fails on a malformed set; the Conn records the error and Flush returns it.
		_ = c.AddSet(s, elems)
		return s
	}
	dropIn := set(setDropIn, r.DropIn)
	dropOut := set(setDropOut, r.DropOut)
	lossPeers := set(setLossPeers, r.LossPeers)

	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: addrInSet(offsetSrcAddr, dropIn, drop())})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: addrInSet(offsetDstAddr, dropOut, drop())})
	if r.LossPercent == 0 {
		return
	}
	loss := random(r.LossPercent)
	if len(r.LossPeers) > 0 {
		c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: addrInSet(offsetSrcAddr, lossPeers, loss)})
		c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: addrInSet(offsetDstAddr, lossPeers, loss)})
		return
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: notLoopback(expr.MetaKeyIIFNAME, loss)})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: notLoopback(expr.MetaKeyOIFNAME, loss)})
}

// addrInSet matches IPv4 packets whose address at offset (12 saddr, 16 daddr) is in s.
func addrInSet(offset uint32, s *nftables.Set, then []expr.Any) []expr.Any {
	return append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfprotoIPv4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}, then...)
}

// notLoopback matches packets whose interface (iifname or oifname) is not "lo".
func notLoopback(key expr.MetaKey, then []expr.Any) []expr.Any {
	lo := make([]byte, 16) // IFNAMSIZ, NUL padded, as nft writes it
	copy(lo, "lo")
	return append([]expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo},
	}, then...)
}

// random drops a packet with probability pct/100: numgen random mod 100 < pct. numgen writes a
// host-order u32 and cmp compares bytes, hence the byteorder step (nft adds the same).
func random(pct int) []expr.Any {
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: 100, Type: ngRandom},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(pct))},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

// Show reads back the fault state of the current network namespace; a healed namespace gives
// the zero Rules.
func Show() (Rules, error) {
	c, err := nftables.New()
	if err != nil {
		return Rules{}, explain("open netlink", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return Rules{}, explain("list tables", err)
	}
	i := slices.IndexFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName })
	if i < 0 {
		return Rules{}, nil
	}
	t := tables[i]
	var r Rules
	for name, dst := range map[string]*[]netip.Addr{setDropIn: &r.DropIn, setDropOut: &r.DropOut, setLossPeers: &r.LossPeers} {
		s, err := c.GetSetByName(t, name)
		if err != nil {
			return Rules{}, explain("read set "+name, err)
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return Rules{}, explain("read set "+name, err)
		}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				*dst = append(*dst, a)
			}
		}
	}
	rules, err := c.GetRules(t, &nftables.Chain{Name: "input", Table: t})
	if err != nil {
		return Rules{}, explain("read rules", err)
	}
	for _, rule := range rules {
		for _, e := range rule.Exprs {
			if cmp, ok := e.(*expr.Cmp); ok && cmp.Op == expr.CmpOpLt && len(cmp.Data) == 4 {
				r.LossPercent = int(binary.BigEndian.Uint32(cmp.Data))
			}
		}
	}
	if r.LossPercent == 0 {
		r.LossPeers = nil
	}
	return r.normalize(), nil
}
