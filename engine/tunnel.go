package engine

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// WebSocket tunnels. After the 101 a tunnel carries opaque bytes both ways
// for as long as the peers like: nothing is left to parse. Relayed on the
// loop, a tunnel would buffer without bound whenever one side outpaces the
// other, since gnet cannot stop reading a socket (gnet #712), and pausing
// either side from the loop has many more cases than a request does (both
// directions at once, each able to close while the other is paused). So
// once the 101 is out, the loop hands both sockets to two goroutines, each
// copying one direction through a fixed buffer: a slow reader blocks its
// writer, and TCP flow control holds the fast side back. A tunnel costs two
// buffers and two goroutines whatever its peers do. It ends when either
// side closes, when a write makes no progress for the send timeout, or
// when no byte passed either way for the upstream's read timeout (nginx
// proxy_read_timeout on an upgraded connection).

// tunnelBufSize is each direction's copy buffer.
const tunnelBufSize = 16 << 10

// startTunnel completes a WebSocket upgrade: the 101 head (and whatever
// the upstream sent after it) goes to the client, the exchange ends, and
// the two connections are handed to a tunnel, at once if gnet has nothing
// left to send on either, otherwise once that drained (closing a gnet conn
// drops what it could not send). It returns false: the caller stops
// reading uc.
func (l *loop) startTunnel(ex *exchange, buf []byte, n int) bool {
	cl, uc := ex.cl, ex.up
	ex.respStarted = true
	l.wbuf = l.appendResponseHead(l.wbuf[:0], ex)
	// logged and counted as the 101 it is (the tunnel's bytes are not
	// the exchange's)
	ex.pc.Status, ex.pc.BytesOut = ex.resp.Status, int64(len(l.wbuf))
	l.wbuf = append(l.wbuf, buf[n:]...)
	uc.c.Discard(len(buf))
	uc.tunnelIdle = orDefault(ex.ups.Timeouts.Read)
	uc.tunnelSend = orDefault(ex.ups.Timeouts.Send)
	ex.up = nil
	uc.ex = nil
	uc.tunnel = cl
	l.endExchange(ex)
	cl.state = csTunnel
	cl.ex = nil
	cl.tunnelUp = uc
	// the 101 must reach the client within the send timeout (the sweep
	// closes a tunnel still waiting then)
	cl.deadline = l.now + int64(l.opts.SendTimeout)
	cl.write(l.wbuf)
	if cl.closed {
		return false
	}
	if l.handOff(cl, uc.c) == gnet.Close {
		uc.handedOff = true // upstreamTraffic returns gnet.Close for it
		return false
	}
	l.handoffs = append(l.handoffs, cl)
	l.notePaused() // the resume poll retries until the buffers drained
	if h := testHookHandoffWaits.Load(); h != nil {
		(*h)()
	}
	return false
}

// testHookHandoffWaits, when set by a test, runs when a tunnel's hand-off
// has to wait for gnet's buffers to drain.
var testHookHandoffWaits atomic.Pointer[func()]

// tunnelTraffic runs for bytes from either side of a tunnel still waiting
// to be handed off (c is the side that read): they stay in gnet's buffer,
// and go first once the tunnel runs.
func (l *loop) tunnelTraffic(cl *client, c gnet.Conn) gnet.Action {
	if cl.closed || cl.c == nil || cl.tunnelUp == nil || cl.tunnelUp.c == nil {
		return gnet.Close
	}
	if a := l.handOff(cl, c); a == gnet.Close {
		return a
	}
	if max := l.opts.MaxBuffered; max > 0 && c.InboundBuffered() > pipelineLimitFactor*max {
		l.opts.Logger.Warn("WebSocket peer sent too much before its tunnel started; closing", "buffered", c.InboundBuffered())
		return gnet.Close // the other side follows (clientClosed, upstreamClosed)
	}
	return gnet.None
}

// retryHandoffs runs from the resume poll: tunnels whose outbound buffers
// drained are handed off; those that ended are forgotten.
func (l *loop) retryHandoffs() {
	for i := 0; i < len(l.handoffs); {
		cl := l.handoffs[i]
		if cl.state == csTunnel && !cl.closed && cl.c != nil && l.handOff(cl, nil) == gnet.None {
			i++
			continue
		}
		l.forgetHandoff(cl) // swaps the last into i
	}
}

func (l *loop) forgetHandoff(cl *client) {
	var found bool
	if l.handoffs, found = removeFrom(l.handoffs, cl); found {
		l.pausedN.Add(-1)
	}
}

// handOff moves cl's tunnel to its goroutines when gnet has nothing left
// to send on either connection, and reports gnet.Close then. Both gnet
// conns are closed (their sockets live on as duplicates): current, the
// conn whose callback is running (nil from a poll), by the caller
// returning gnet.Close, the other here. It returns gnet.None, changing
// nothing, while bytes wait to be sent.
func (l *loop) handOff(cl *client, current gnet.Conn) gnet.Action {
	uc := cl.tunnelUp
	cc, ucc := cl.c, uc.c
	if cc.OutboundBuffered() > 0 || ucc.OutboundBuffered() > 0 {
		return gnet.None
	}
	t := &tunnel{
		l:          l,
		idle:       uc.tunnelIdle,
		clientSend: l.opts.SendTimeout,
		upSend:     uc.tunnelSend,
		toUp:       peekCopy(cc),
		toClient:   peekCopy(ucc),
	}
	cfd, err := cc.Dup()
	if err == nil {
		var ufd int
		if ufd, err = ucc.Dup(); err != nil {
			_ = syscall.Close(cfd)
		} else {
			t.cfd, t.ufd = cfd, ufd
		}
	}
	if err != nil {
		l.opts.Logger.Warn("WebSocket tunnel could not start; closing", "err", err)
		t = nil // the closes below end the tunnel on both sides
	} else {
		cl.tunnelUp, uc.tunnel = nil, nil // their closes below stay local
	}
	uc.dead = true
	for _, c := range [2]gnet.Conn{cc, ucc} {
		if c != current {
			_ = l.el.Close(c) // runs clientClosed / upstreamClosed now
		}
	}
	if t != nil {
		l.tunnels.Add(1)
		go t.run()
	}
	return gnet.Close
}

// peekCopy returns a copy of what c has buffered (nil when nothing).
func peekCopy(c gnet.Conn) []byte {
	buf, _ := c.Peek(-1)
	if len(buf) == 0 {
		return nil
	}
	return append([]byte(nil), buf...)
}

// tunnel is one WebSocket connection after its hand-off from the loop.
type tunnel struct {
	l                  *loop // counts it (ConnStats) and tracks it (Shutdown)
	cfd, ufd           int   // the duplicated sockets, until run wraps them
	client, up         net.Conn
	idle               time.Duration
	clientSend, upSend time.Duration
	toClient, toUp     []byte       // bytes gnet had read and nobody relayed yet (until run starts)
	start              time.Time    // with a monotonic reading: last counts from here
	last               atomic.Int64 // nanos since start of the last byte either way
	writing            atomic.Int32 // writes blocked in progress (they have their own timeout)
	closeOnce          sync.Once
}

func (t *tunnel) run() {
	defer t.l.tunnels.Add(-1)
	toClient, toUp := t.toClient, t.toUp
	t.toClient, t.toUp = nil, nil // (not kept for the tunnel's life)
	var err error
	if t.client, err = fdConn(t.cfd, "tunnel-client"); err == nil {
		if t.up, err = fdConn(t.ufd, "tunnel-upstream"); err != nil {
			t.client.Close()
		}
	} else {
		_ = syscall.Close(t.ufd)
	}
	if err != nil {
		t.l.opts.Logger.Warn("WebSocket tunnel could not start", "err", err)
		return
	}
	if !t.l.h.tunnels.add(t) {
		t.close() // the server is shutting down
		return
	}
	defer t.l.h.tunnels.remove(t)
	t.start = time.Now()
	done := make(chan struct{})
	go func(first []byte) {
		t.pipe(t.up, t.client, first, t.upSend)
		close(done)
	}(toUp)
	t.pipe(t.client, t.up, toClient, t.clientSend)
	<-done
}

// touch records a byte passing now.
func (t *tunnel) touch() { t.last.Store(int64(time.Since(t.start))) }

// pipe copies src to dst (first, what the loop had read from src) until
// either fails, then closes the tunnel.
func (t *tunnel) pipe(dst, src net.Conn, first []byte, send time.Duration) {
	defer t.close()
	if len(first) > 0 && !t.write(dst, first, send) {
		return
	}
	first = nil
	buf := make([]byte, tunnelBufSize)
	for {
		dl := t.start.Add(time.Duration(t.last.Load()) + t.idle)
		if t.writing.Load() > 0 { // the other way is busy writing: not idle
			dl = later(dl, time.Now().Add(t.idle))
		}
		_ = src.SetReadDeadline(dl)
		n, err := src.Read(buf)
		if n > 0 {
			t.touch()
			if !t.write(dst, buf[:n], send) {
				return
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() &&
				(t.writing.Load() > 0 || time.Since(t.start) < time.Duration(t.last.Load())+t.idle) {
				continue // idle this way, not the other
			}
			return // EOF, an error, or idle both ways
		}
	}
}

// write sends b, failing when the peer takes nothing of it for send
// (nginx send_timeout: between two successive writes, not over all of b).
func (t *tunnel) write(dst net.Conn, b []byte, send time.Duration) bool {
	t.writing.Add(1)
	defer t.writing.Add(-1)
	for len(b) > 0 {
		_ = dst.SetWriteDeadline(time.Now().Add(send))
		n, err := dst.Write(b)
		b = b[n:]
		if n > 0 {
			t.touch()
		}
		if err != nil {
			var ne net.Error
			if n > 0 && errors.As(err, &ne) && ne.Timeout() {
				continue // it took some: a slow reader, not a dead one
			}
			return false
		}
	}
	return true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (t *tunnel) close() {
	t.closeOnce.Do(func() {
		t.client.Close()
		t.up.Close()
	})
}

// fdConn wraps a socket descriptor as a net.Conn (taking ownership of fd).
func fdConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f) // duplicates fd
	f.Close()
	return c, err
}

// tunnelSet tracks the running tunnels so Shutdown can end them.
type tunnelSet struct {
	mu     sync.Mutex
	m      map[*tunnel]struct{}
	closed bool
}

// add tracks t, or reports false once the set was closed.
func (s *tunnelSet) add(t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.m == nil {
		s.m = make(map[*tunnel]struct{})
	}
	s.m[t] = struct{}{}
	return true
}

func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	delete(s.m, t)
	s.mu.Unlock()
}

// closeAll ends every tunnel and refuses new ones.
func (s *tunnelSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	list := make([]*tunnel, 0, len(s.m))
	for t := range s.m {
		list = append(list, t)
	}
	s.mu.Unlock()
	for _, t := range list {
		t.close()
	}
}
