package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/http1"
	sltls "github.com/sluice-gw/sluice/tls"
)

// poolKey identifies interchangeable upstream connections on one loop
// (Pingora: the reuse key includes everything that changes the
// connection: address now; scheme, SNI and client certificate with TLS).
type poolKey struct {
	addr   netip.AddrPort
	tls    bool
	verify bool
	sni    string
	cert   [32]byte // the client certificate's identity (balancer.TLS.Identity; zero: none)
}

// pool is one loop's idle connections to one poolKey, most recently used
// last (LIFO: the warmest connection is reused first).
type pool struct {
	key     poolKey
	idle    []*upConn
	ka      balancer.Keepalive
	usedAt  int64 // unix nanos it was last asked for a connection
	retired bool  // dropped from the loop's map: connections released to it close
}

// poolRetireAfter is how long an empty pool may go unused before the
// sweep drops it (node addresses change with DNS and with the Admin API;
// their pools would otherwise stay in the map for good). A variable for
// tests.
var poolRetireAfter = 10 * time.Minute

// upConn is one upstream connection, owned by the loop that dialed it.
type upConn struct {
	c          gnet.Conn
	l          *loop
	p          *pool
	ex         *exchange // nil while idle or dialing for nobody
	exGen      uint64    // ex.gen when the dial started
	requests   int       // requests sent on this connection
	idleAt     int64     // unix nanos it went idle
	dead       bool      // closed or being closed: ignore further events
	inPool     bool
	tunnel     *client       // set once upgraded, until handed off
	tunnelIdle time.Duration // a tunnel may carry no byte this long
	tunnelSend time.Duration // a tunnel's write to the upstream may make no progress this long
	handedOff  bool          // its socket now belongs to a tunnel: close the gnet conn
	salvaged   bool          // closed while its client was away, its answer kept in early
	early      []byte        // (salvaged) what it sent before it closed, not yet relayed
	paused     bool          // out of gnet for backpressure; pausedFD holds the socket
	resuming   bool          // being enrolled again after a pause
	pausedFD   int
}

func (l *loop) pool(key poolKey, u *balancer.Upstream) *pool {
	p := l.pools[key]
	if p == nil {
		p = &pool{key: key}
		l.pools[key] = p
	}
	p.ka = u.Keepalive
	p.usedAt = l.now
	return p
}

// get takes the most recently used idle connection, or nil. One idle for
// staleCheckAfter or longer is first checked for a close the loop has not
// seen yet (see stale), and closed instead of used.
func (p *pool) get(now int64) *upConn {
	for n := len(p.idle); n > 0; n = len(p.idle) {
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		uc.inPool = false
		if uc.dead {
			continue
		}
		if now-uc.idleAt >= int64(staleCheckAfter) && stale(uc.c.Fd()) {
			uc.dead = true
			uc.c.Close()
			continue
		}
		return uc
	}
	return nil
}

// staleCheckAfter is how long a pooled connection must have been idle to
// be checked before it is used. An upstream closes idle connections after
// its keep-alive timeout (seconds), and a request written into one it has
// just closed cannot be sent again if it is not idempotent (upstreamLost).
// Connections reused sooner, as under load, skip the system call.
const staleCheckAfter = time.Second

// stale reports whether the idle connection on fd can no longer carry a
// request: the peer closed it (EOF or an error), or sent something
// unasked (a 408 before closing). One non-blocking peek.
func stale(fd int) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN // nothing to read and no EOF: usable
}

// method is the request method sent upstream (a plugin may replace it).
func (ex *exchange) method() []byte {
	if ex.pc.Method != nil {
		return ex.pc.Method
	}
	return ex.req.Method
}

// idempotent reports whether a request with method m may be sent again
// after the upstream may have read it: any method but nginx's
// non-idempotent three.
func idempotent(m []byte) bool {
	switch string(m) {
	case "POST", "PATCH", "LOCK":
		return false
	}
	return true
}

func (p *pool) remove(uc *upConn) {
	for i, x := range p.idle {
		if x == uc {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			break
		}
	}
	uc.inPool = false
}

// expire closes connections idle longer than the pool's idle_timeout.
func (p *pool) expire(now int64) {
	idle := p.ka.IdleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	for len(p.idle) > 0 && now-p.idle[0].idleAt >= int64(idle) {
		uc := p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		uc.inPool = false
		uc.dead = true
		uc.c.Close()
	}
}

// release returns uc to its pool after a complete exchange, or closes it
// when the pool is full or the connection used up its requests.
func (l *loop) release(uc *upConn) {
	uc.ex = nil
	p := uc.p
	size, reqs := p.ka.Size, p.ka.Requests
	if size <= 0 {
		size = 320
	}
	if reqs <= 0 {
		reqs = 1000
	}
	if uc.dead || p.retired || uc.requests >= reqs || len(p.idle) >= size || uc.c.InboundBuffered() > 0 {
		l.dropUpstream(uc)
		return
	}
	uc.idleAt = l.now
	uc.inPool = true
	p.idle = append(p.idle, uc)
}

// dropUpstream closes uc (asynchronously: gnet runs its OnClose later, on
// this loop) and detaches it from everything.
func (l *loop) dropUpstream(uc *upConn) {
	if uc.inPool {
		uc.p.remove(uc)
	}
	if uc.paused {
		l.closePaused(uc)
	}
	if uc.ex != nil && uc.ex.up == uc {
		uc.ex.up = nil
	}
	uc.ex = nil
	if uc.dead {
		return
	}
	uc.dead = true
	if uc.c != nil {
		uc.c.Close()
	}
}

// dial opens a connection to ex.addr off the loop (gnet's Register has no
// dial timeout, so we dial ourselves with one and Enroll the socket), and
// hands it to this loop, where upstreamOpened attaches it to ex.
func (l *loop) dial(ex *exchange, p *pool, u *balancer.Upstream) {
	uc := &upConn{l: l, p: p, ex: ex, exGen: ex.gen, pausedFD: -1}
	ex.up = uc
	addr := ex.addr
	timeout := orDefault(u.Timeouts.Connect)
	el := l.el
	var target *sltls.Target
	if p.key.tls {
		target = &sltls.Target{Addr: addr.String(), ServerName: p.key.sni, Verify: p.key.verify,
			ClientCert: u.TLS.ClientCert, ClientKey: u.TLS.ClientKey, SendTimeout: orDefault(u.Timeouts.Send)}
	}
	dialer := l.opts.TLS
	l.h.s.startOffLoop()
	go func() {
		defer l.h.s.endOffLoop()
		var nc net.Conn
		var err error
		if target != nil {
			if dialer == nil {
				err = errors.New("engine: no TLS dialer configured")
			} else {
				var uconn *net.UnixConn
				uconn, err = dialer.Dial(context.Background(), *target, timeout)
				if err == nil {
					nc = uconn
				}
			}
		} else {
			d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
			nc, err = d.Dial("tcp", addr.String())
		}
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			ch, err = el.Enroll(gnet.NewContext(context.Background(), uc), nc)
			if err == nil {
				res := <-ch
				err = res.Err
			} else {
				nc.Close()
			}
		}
		if err != nil {
			_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				l.dialFailed(uc, err)
				return nil
			}))
		}
	}()
}

// poolKeyFor is the pool identity of node i of u at addr (Pingora: the
// reuse key includes everything that changes the connection).
func poolKeyFor(u *balancer.Upstream, i int, addr netip.AddrPort) poolKey {
	k := poolKey{addr: addr}
	if u.Scheme != "https" {
		return k
	}
	k.tls, k.verify = true, u.TLS.Verify
	switch {
	case u.TLS.ServerName != "":
		k.sni = u.TLS.ServerName
	default:
		k.sni = u.Nodes[i].Host
	}
	k.cert = u.TLS.Identity
	return k
}

// dialFailed runs on the loop when uc could not be connected.
func (l *loop) dialFailed(uc *upConn, err error) {
	l.tick()
	uc.dead = true
	ex := uc.ex
	if ex == nil || ex.gen != uc.exGen || ex.up != uc {
		return
	}
	ex.up = nil
	uc.ex = nil
	l.nodeDone(ex, 0)
	ex.ups.Nodes[ex.node].State.Fail(l.now)
	l.opts.Logger.Warn("upstream connect failed", "route", ex.route.ID, "addr", ex.addr.String(), "err", err)
	if ex.tries <= ex.ups.Retries {
		l.connect(ex, true)
		return
	}
	status, msg := 502, "upstream connect failed"
	var ne net.Error
	var ce *sltls.CertError
	switch {
	case errors.As(err, &ce):
		msg = ce.Error()
	case errors.As(err, &ne) && ne.Timeout():
		status, msg = 504, "upstream connect timed out"
	case ex.ups.Scheme == "https":
		msg = "upstream TLS connect failed: " + err.Error()
	}
	l.fail(ex, status, msg)
}

// upstreamOpened runs on the loop when a dialed connection joined it.
func (l *loop) upstreamOpened(uc *upConn, c gnet.Conn) {
	l.tick()
	uc.c = c
	ex := uc.ex
	if uc.dead {
		c.Close()
		return
	}
	if uc.resuming {
		uc.resuming = false
		if ex == nil || ex.up != uc {
			uc.dead = true
			c.Close()
		}
		return // relaying goes on with the next read
	}
	if ex == nil || ex.gen != uc.exGen || ex.up != uc || ex.phase != exConnecting {
		// Nobody waits for it any more (client gone, timed out): keep it.
		uc.ex = nil
		l.release(uc)
		return
	}
	if ex.ups != nil && ex.node >= 0 && ex.node < len(ex.ups.Nodes) {
		if st := ex.ups.Nodes[ex.node].State; !st.Healthy(l.now) {
			st.Succeed()
		}
	}
	uc.requests++
	l.sendHead(ex)
}

var wsUpgradeName = []byte("upgrade")

// peek returns what uc has buffered and nobody relayed yet.
func (uc *upConn) peek() []byte {
	if uc.salvaged {
		return uc.early
	}
	buf, _ := uc.c.Peek(-1)
	return buf
}

// discard drops n relayed bytes from what peek returns.
func (uc *upConn) discard(n int) {
	if uc.salvaged {
		uc.early = uc.early[n:]
		return
	}
	uc.c.Discard(n)
}

// upstreamClosed runs when an upstream connection closed (by either side).
func (l *loop) upstreamClosed(uc *upConn, err error) {
	l.tick()
	if uc.paused {
		uc.c = nil // gnet let go of it; the socket lives on in pausedFD
		return
	}
	if uc.inPool {
		uc.p.remove(uc)
	}
	wasDead := uc.dead
	uc.dead = true
	if cl := uc.tunnel; cl != nil { // a tunnel not yet handed off
		uc.tunnel = nil
		if !cl.closed && cl.c != nil {
			// what the upstream sent before it closed (a last message, a
			// WebSocket Close frame) still goes out
			if buf, _ := uc.c.Peek(-1); len(buf) > 0 {
				cl.write(buf)
			}
			l.closeAfterFlush(cl)
		}
		return
	}
	ex := uc.ex
	uc.ex = nil
	if ex == nil || ex.up != uc || wasDead {
		return
	}
	if !ex.respStarted {
		// An upstream that answers an upload early (a 413, a 401) and
		// closes: its answer may sit in gnet's buffer (the client was away,
		// paused for backpressure) or still in the socket (sending the
		// body failed first). Relay that answer instead of a 502: now, or
		// once the client is back.
		if early := l.salvage(uc.c); len(early) > 0 {
			uc.early, uc.salvaged, uc.ex = early, true, ex
			uc.c = nil // gnet releases it after this callback
			if cl := ex.cl; cl.paused || cl.resuming {
				return
			}
			l.relaySalvaged(uc)
			return
		}
	}
	l.upstreamLost(ex)
}

// salvageMax bounds what salvage reads from a closing socket.
const salvageMax = 64 << 10

// salvage returns a copy of what c has buffered and of what its socket
// still holds (up to salvageMax), when c is closing; nil when there is
// nothing (the common case — a pooled connection the upstream closed —
// costs one read into the loop's scratch and no allocation).
func (l *loop) salvage(c gnet.Conn) []byte {
	buf, _ := c.Peek(-1)
	if l.salvageBuf == nil {
		l.salvageBuf = make([]byte, salvageMax)
	}
	got := 0
	for got < salvageMax {
		n, err := unix.Read(c.Fd(), l.salvageBuf[got:])
		if n <= 0 || err != nil {
			break
		}
		got += n
	}
	if len(buf)+got == 0 {
		return nil
	}
	out := make([]byte, 0, len(buf)+got)
	return append(append(out, buf...), l.salvageBuf[:got]...)
}

// upstreamLost ends ex, whose upstream connection is gone, as its state
// allows: a body until close is complete, a request on a pooled connection
// the upstream had closed is sent again, anything else fails.
func (l *loop) upstreamLost(ex *exchange) {
	ex.up = nil
	if ex.phase == exRelaying && ex.respKind == http1.BodyUntilClose {
		l.finishResponse(ex, false)
		return
	}
	if !ex.respStarted && ex.resp.Status == 0 && ex.reused && !ex.redone && ex.bodyKept && idempotent(ex.method()) {
		// A pooled connection the upstream had closed while idle: send
		// the request again on a fresh one (Pingora's ReusedOnly retry).
		// Not a POST, PATCH or LOCK (nginx's rule): the upstream may
		// have read it and acted before closing, and a chat completion
		// sent twice is billed twice.
		ex.redone = true
		l.nodeDone(ex, 0)
		l.connect(ex, false)
		return
	}
	if !ex.respStarted && ex.resp.Status == 0 {
		l.fail(ex, 502, "upstream closed the connection before responding")
		return
	}
	// mid-response: cut the client so it sees the truncation (no clean
	// end of a chunked body)
	l.fail(ex, 502, "upstream closed the connection mid-response")
}

// upstreamTraffic relays what an upstream sent.
func (l *loop) upstreamTraffic(uc *upConn) gnet.Action {
	l.tick()
	if cl := uc.tunnel; cl != nil {
		return l.tunnelTraffic(cl, uc.c)
	}
	ex := uc.ex
	if ex == nil || uc.dead {
		// an idle pooled connection has nothing to say: close it
		uc.dead = true
		if uc.inPool {
			uc.p.remove(uc)
		}
		return gnet.Close
	}
	cl := ex.cl
	if cl.paused || cl.resuming {
		// the client is out of the loop (upload backpressure): bring it
		// back; clientResumed relays what is buffered here
		l.resumeClientNow(cl)
		return gnet.None
	}
	return l.relay(uc)
}

// relaySalvaged relays the answer of an upstream that closed while its
// client was away, once the client is back, then ends the exchange as the
// close does if the answer was not complete.
func (l *loop) relaySalvaged(uc *upConn) {
	l.relay(uc)
	if ex := uc.ex; ex != nil && ex.up == uc {
		uc.ex = nil
		l.upstreamLost(ex)
	}
	uc.early = nil
}

// relay parses the response head and relays the body from what uc has
// buffered, until it runs dry or the exchange ends.
func (l *loop) relay(uc *upConn) gnet.Action {
	ex := uc.ex
	cl := ex.cl
	defer l.recoverClient(cl)
	for {
		buf := uc.peek()
		if len(buf) == 0 {
			return gnet.None
		}
		if ex.phase != exRelaying {
			n, err := http1.ParseResponse(&ex.resp, buf, &l.respLim)
			if err != nil {
				// a head not (yet) accepted has no status: the parse set it
				// from the status line before it checked the fields
				ex.resp.Status = 0
			}
			if err == http1.ErrNeedMore {
				return gnet.None
			}
			if err != nil {
				l.opts.Logger.Warn("bad upstream response", "route", ex.route.ID, "addr", ex.addr.String(), "err", err)
				l.fail(ex, 502, "invalid response from upstream")
				return gnet.None
			}
			if ex.resp.Status < 200 && ex.resp.Status != 101 {
				uc.discard(n)
				ex.resp.Status = 0 // interim (100, 103): dropped
				continue
			}
			// ex.resp's slices point into buf: the head is written before
			// anything is discarded (gnet's buffers are pooled).
			if !l.startResponse(ex, buf, n) {
				if uc.handedOff {
					return gnet.Close
				}
				return gnet.None
			}
			continue
		}
		if !l.relayBody(ex, buf) {
			return gnet.None
		}
		if ex.up != uc {
			return gnet.None
		}
		if max := l.opts.MaxBuffered; max > 0 && !uc.salvaged && cl.c.OutboundBuffered() > max {
			return l.pauseUpstream(uc)
		}
	}
}

// startResponse writes the response head to the client, together with the
// body bytes that came with it, and moves ex to relaying. It reports
// whether the caller should keep reading uc.
func (l *loop) startResponse(ex *exchange, buf []byte, n int) bool {
	cl, uc := ex.cl, ex.up
	r := &ex.resp
	rest := buf[n:]
	if r.Status == 101 {
		if !ex.upgrade || uc.salvaged || !listHas(r.Header(wsUpgradeName), wsToken) {
			l.fail(ex, 502, "upstream switched protocols unasked")
			return false
		}
		return l.startTunnel(ex, buf, n)
	}
	ex.respKind = r.BodyKind(ex.headReq)
	if ex.decode && ex.respKind != http1.BodyNone && r.TECodings > 0 && !(r.Chunked && r.TECodings == 1) {
		// an HTTP/1.0 client knows no transfer codings: a lone chunked is
		// de-chunked for it, but no header could tell it about any other
		// (gzip, under the chunks or over a close-delimited body)
		l.fail(ex, 502, "upstream transfer coding cannot be sent to an HTTP/1.0 client")
		return false
	}
	ex.respLeft = 0
	if ex.respKind == http1.BodyLength {
		ex.respLeft = r.ContentLength
	}
	ex.respChunk.Reset()
	// decide the client connection's fate
	switch {
	case !ex.keepAlive, l.h.draining.Load():
		ex.closeAfter = true
	case ex.respKind == http1.BodyUntilClose:
		ex.closeAfter = true
	case ex.decode && ex.respKind == http1.BodyChunked:
		ex.closeAfter = true
	case !ex.reqDone, uc.salvaged:
		// the upstream answered before the whole body arrived: the rest
		// of it is still in the client's stream (a salvaged answer too:
		// it may be relayed from inside the body's write, before the
		// bytes just sent were taken off the client's buffer)
		ex.closeAfter = true
	}
	ex.phase = exRelaying
	ex.deadline = l.now + int64(orDefault(ex.ups.Timeouts.Read))
	ex.pc.Status = r.Status
	l.headerFilter(ex)
	l.wbuf = l.appendResponseHead(l.wbuf[:0], ex)
	ex.pc.BytesOut += int64(len(l.wbuf))
	ex.respStarted = true
	// Small bodies that came with the head go out in the same write.
	if ex.respKind == http1.BodyLength && int64(len(rest)) >= ex.respLeft && ex.respLeft <= 16<<10 {
		k := int(ex.respLeft)
		l.bodyFilter(ex, rest[:k])
		l.wbuf = append(l.wbuf, rest[:k]...)
		ex.respLeft = 0
		uc.discard(n + k)
		cl.write(l.wbuf)
		if cl.closed {
			return false
		}
		l.finishResponse(ex, true)
		return false
	}
	// The chunks that came with the head (a small chunked body, an SSE
	// stream's first event) go out in the same write: one syscall and one
	// client wake-up instead of two. Nothing waits for more.
	if ex.respKind == http1.BodyChunked && !ex.decode && len(rest) > 0 && len(rest) <= 16<<10 {
		k, done, _ := l.takeChunks(ex, rest) // relayBody reports a bad chunk
		if k > 0 {
			l.bodyFilter(ex, rest[:k])
			l.wbuf = append(l.wbuf, rest[:k]...)
			uc.discard(n + k)
			cl.write(l.wbuf)
			if cl.closed {
				return false
			}
			if done {
				l.finishResponse(ex, true)
				return false
			}
			return true
		}
	}
	uc.discard(n)
	cl.write(l.wbuf)
	if cl.closed {
		return false
	}
	if ex.respKind == http1.BodyNone {
		l.finishResponse(ex, true)
		return false
	}
	return true
}

// relayBody forwards response body bytes from buf (the upstream's buffer)
// to the client as they come: nothing waits for more. It reports whether
// the exchange is still relaying.
func (l *loop) relayBody(ex *exchange, buf []byte) bool {
	cl, uc := ex.cl, ex.up
	ex.deadline = l.now + int64(orDefault(ex.ups.Timeouts.Read))
	switch ex.respKind {
	case http1.BodyLength:
		n := len(buf)
		if int64(n) > ex.respLeft {
			n = int(ex.respLeft)
		}
		l.bodyFilter(ex, buf[:n])
		cl.write(buf[:n])
		if cl.closed {
			return false
		}
		uc.discard(n)
		ex.respLeft -= int64(n)
		if ex.respLeft == 0 {
			l.finishResponse(ex, true)
			return false
		}
		return true
	case http1.BodyChunked:
		n, done, err := l.takeChunks(ex, buf)
		if !ex.decode && n > 0 {
			l.bodyFilter(ex, buf[:n])
			cl.write(buf[:n])
		}
		if cl.closed {
			return false
		}
		if err != nil {
			l.opts.Logger.Warn("bad chunked response", "route", ex.route.ID, "addr", ex.addr.String(), "err", err)
			l.fail(ex, 502, "invalid chunked response from upstream")
			return false
		}
		if n == 0 {
			return false
		}
		uc.discard(n)
		if done {
			l.finishResponse(ex, true)
			return false
		}
		return true
	default: // until close
		l.bodyFilter(ex, buf)
		cl.write(buf)
		if cl.closed {
			return false
		}
		uc.discard(len(buf))
		return true
	}
}

// takeChunks advances ex.respChunk over the chunked framing in buf,
// scanning each chunk's data for LLM usage, and returns how many bytes it
// took (a partial chunk's data and a partial size line are taken too: the
// parser keeps its place) and whether the last chunk ended the body; err
// is a malformed chunk after those n bytes. For an HTTP/1.0 client (ex.decode) it writes
// each chunk's data to the client unframed as it goes, and stops early
// when the client closed; otherwise the caller writes buf[:n].
func (l *loop) takeChunks(ex *exchange, buf []byte) (n int, done bool, err error) {
	for n < len(buf) && !done {
		k, data, d, err := ex.respChunk.Next(buf[n:])
		if err != nil {
			return n, false, err
		}
		if k == 0 {
			break
		}
		l.scanChunk(ex, data)
		if ex.decode && len(data) > 0 {
			l.bodyFilter(ex, data) // what the client gets: the data, unframed
			ex.cl.write(data)
			if ex.cl.closed {
				return n, false, nil
			}
		}
		n += k
		done = d
	}
	return n, done, nil
}

// finishResponse ends a relayed exchange: the upstream connection goes back
// to the pool when reusable, the client reads its next request or closes.
func (l *loop) finishResponse(ex *exchange, reusable bool) {
	cl, uc := ex.cl, ex.up
	if uc != nil {
		if reusable && ex.reqDone && !ex.resp.Close && !uc.dead {
			ex.up = nil
			l.release(uc)
		} else {
			l.dropUpstream(uc)
		}
	}
	closeAfter := ex.closeAfter
	l.endExchange(ex)
	if cl.closed || cl.c == nil {
		return
	}
	if closeAfter {
		l.closeAfterFlush(cl)
		return
	}
	l.nextRequest(cl)
}
