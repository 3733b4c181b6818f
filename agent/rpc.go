package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The server port (-server-port, Consul's 8300) carries two protocols, told apart by the first
// byte of each connection as in Consul: Raft, and the agent's server-to-server requests
// (forwarding to the leader, the bootstrap peer check). Those run HTTP/1.1 over the server port,
// never over the HTTP API's address: with Consul's default -client=127.0.0.1 that address is
// loopback, so a follower asking it would ask itself.
const (
	rpcRaft    byte = 0x01 // Consul's pool.RPCRaft
	rpcForward byte = 0x52 // 'R': the agent's own; Consul speaks msgpack RPC here instead
)

// rpcFirstByteTimeout bounds how long an accepted server-port connection may take to name its
// protocol.
const rpcFirstByteTimeout = 5 * time.Second

// connListener is a net.Listener fed by the server-port multiplexer.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn, 16), closed: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and closes the connections handed over but not yet accepted: left open,
// their clients would wait for an answer for ever (seen: a follower forwarding to a leader
// that shut down hung a test).
func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	l.drain()
	return nil
}

func (l *connListener) drain() {
	for {
		select {
		case c := <-l.conns:
			c.Close()
		default:
			return
		}
	}
}

func (l *connListener) Addr() net.Addr { return l.addr }

// hand passes a connection to the listener's Accept, or closes it when the listener is closed.
func (l *connListener) hand(c net.Conn) {
	select {
	case l.conns <- c:
		select {
		case <-l.closed: // closed meanwhile: nobody will accept it
			l.drain()
		default:
		}
	case <-l.closed:
		c.Close()
	}
}

// raftLayer is Raft's StreamLayer over the multiplexed server port.
type raftLayer struct {
	*connListener
}

// Dial opens a Raft connection to another server.
func (r raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialRPC(context.Background(), string(address), rpcRaft, timeout)
}

func dialRPC(ctx context.Context, address string, proto byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// serverPort is the multiplexer: it accepts connections on the server port and hands each to
// Raft or to the forwarding server by its first byte.
type serverPort struct {
	ln      net.Listener
	raft    *connListener
	forward *connListener
	logf    func(format string, args ...any)
}

// listenServerPort listens on bind; its listeners' Addr is the advertised IP with the port
// actually bound (bind may name port 0).
func listenServerPort(bind string, advertise net.IP, logf func(string, ...any)) (*serverPort, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	adv := &net.TCPAddr{IP: advertise, Port: ln.Addr().(*net.TCPAddr).Port}
	return &serverPort{ln: ln, raft: newConnListener(adv), forward: newConnListener(adv), logf: logf}, nil
}

func (p *serverPort) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.logf("[ERR] agent: server port accept: %v", err)
			}
			return
		}
		go p.dispatch(c)
	}
}

func (p *serverPort) dispatch(c net.Conn) {
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(rpcFirstByteTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch b[0] {
	case rpcRaft:
		p.raft.hand(c)
	case rpcForward:
		p.forward.hand(c)
	default:
		p.logf("[ERR] agent: server port: unknown protocol byte 0x%02x from %s", b[0], c.RemoteAddr())
		c.Close()
	}
}

// closeForward stops taking connections and other servers' requests; Raft's own connections
// stay until closeRaft, after Raft has shut down.
func (p *serverPort) closeForward() {
	p.ln.Close()
	p.forward.Close()
}

func (p *serverPort) closeRaft() { p.raft.Close() }

// rpcTransport sends the agent's server-to-server HTTP requests over the server port: the URL's
// host is the other server's Raft address.
func rpcTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialRPC(ctx, addr, rpcForward, 5*time.Second)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
}

// serverURL is the URL of path on the server whose Raft address is addr.
func serverURL(addr, path string) string { return fmt.Sprintf("http://%s%s", addr, path) }
