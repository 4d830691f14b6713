package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/accesslog"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
	"github.com/sluice-gw/sluice/router"
)

// loop is the state of one event loop. Every field except those marked
// atomic is touched only on that loop.
type loop struct {
	h    *handler
	el   gnet.EventLoop
	opts *Options
	idx  int // index among the loops (per-loop plugin state)

	alog  *accesslog.Buffer // this loop's access-log buffer (nil: none)
	entry accesslog.Entry   // reused for every line

	reqLim  http1.Limits
	respLim http1.Limits
	server  []byte // "Server: sluice/<version>\r\n"
	now     int64  // unix nanos, refreshed at the start of each callback

	// The table this loop last saw, and its cursors by Upstream.Index.
	tbl     *router.Table
	cursors []*balancer.Cursor

	pools map[poolKey]*pool

	clients     []*client // open clients, for the sweep; client.slot is its index
	freeClients []*client
	freeWaits   []*bodyWait
	// pendingAnswer holds the error response of a client whose exchange
	// failed while it was paused (mid-upload), until it is back in the loop
	pendingAnswer map[*client][]byte
	freeEx        []*exchange

	wbuf       []byte       // scratch for heads written to clients
	pathBuf    []byte       // scratch for a request path being normalised
	matchBuf   []byte       // scratch for the form of a path routes match
	abortLogAt int64        // last "response cut" warning (logAborted)
	abortQuiet int          // warnings left out since
	gzr        *gzip.Reader // reused to read usage from gzip responses (scanGzipped)
	gzSrc      bytes.Reader
	gzBuf      []byte
	salvageBuf []byte // scratch for what a closing upstream socket still holds (salvage)
	keyBuf     []byte // scratch for a chash key (router.HashKey.Append)

	serving *client // the client whose requests serve is parsing now

	active      atomic.Int64 // requests in flight on this loop
	accepted    atomic.Int64 // client connections accepted (ConnStats)
	open        atomic.Int64 // client connections open (ConnStats)
	requests    atomic.Int64 // requests received (ConnStats)
	sweepQueued atomic.Bool
	sweepFn     gnet.RunnableFunc

	paused        []*upConn    // upstreams taken out of gnet for backpressure
	pausedClients []*client    // clients taken out of gnet for backpressure
	handoffs      []*client    // WebSocket tunnels waiting for their buffers to drain (tunnel.go)
	pausedN       atomic.Int64 // len(paused)+len(pausedClients)+len(handoffs), read by the resume goroutine
	tunnels       atomic.Int64 // WebSocket tunnels running off the loop (ConnStats)
	resumeQueued  atomic.Bool
	resumeFn      gnet.RunnableFunc
}

func newLoop(h *handler, el gnet.EventLoop) *loop {
	l := &loop{
		h:       h,
		el:      el,
		opts:    &h.s.opts,
		reqLim:  http1.Limits{MaxHead: h.s.opts.MaxHead, MaxHeaders: http1.DefaultMaxHeaders},
		respLim: http1.Limits{MaxHead: 64 << 10, MaxHeaders: 200},
		server:  serverHeader(h.s.opts.Version),
		pools:   make(map[poolKey]*pool),
		wbuf:    make([]byte, 0, 4096),
		keyBuf:  make([]byte, 0, 256),
	}
	l.sweepFn = func(context.Context) error {
		l.sweepQueued.Store(false)
		l.sweep()
		return nil
	}
	l.resumeFn = func(context.Context) error {
		l.resumeQueued.Store(false)
		l.resumePaused()
		return nil
	}
	return l
}

func (l *loop) tick() { l.now = time.Now().UnixNano() }

// adopt switches the loop to table t: cursors are rebuilt for t's
// upstreams, carrying the position of upstreams with the same Key, so a
// config change does not reset a rotation. One allocation per swap.
func (l *loop) adopt(t *router.Table) {
	var prev map[string]int
	if l.tbl != nil {
		prev = make(map[string]int, len(l.tbl.Upstreams))
		for i, u := range l.tbl.Upstreams {
			prev[u.Key] = i
		}
	}
	cur := make([]*balancer.Cursor, len(t.Upstreams))
	for i, u := range t.Upstreams {
		c := balancer.NewCursor(u)
		if j, ok := prev[u.Key]; ok && j < len(l.cursors) {
			c.Carry(l.cursors[j], l.tbl.Upstreams[j], u)
		}
		cur[i] = c
	}
	var prevRot map[string]*plugin.Rotation
	if l.tbl != nil && len(l.tbl.Rotations) > 0 {
		prevRot = make(map[string]*plugin.Rotation, len(l.tbl.Rotations))
		for _, r := range l.tbl.Rotations {
			prevRot[r.Key] = r
		}
	}
	for _, r := range t.Rotations {
		r.Carry(l.idx, prevRot[r.Key])
	}
	l.tbl, l.cursors = t, cur
}

// table returns the current table, adopting it if it changed.
func (l *loop) table() *router.Table {
	t := l.h.s.opts.Publisher.Load()
	if t != l.tbl && t != nil {
		l.adopt(t)
	}
	return t
}

// pipelineLimitFactor × MaxBuffered is how far ahead of its responses a
// client may pipeline (bytes buffered while a response is pending).
const pipelineLimitFactor = 2

// client states
const (
	csIdle    uint8 = iota // waiting for (the rest of) a request head
	csBusy                 // an exchange is in flight
	csLinger               // error sent; reading and dropping input until close or deadline
	csClosing              // waiting for the outbound buffer to drain, then close
	csTunnel               // upgraded (WebSocket), until handed off to its tunnel (tunnel.go)
)

// client is one accepted connection. It is kept small (80 bytes): an idle
// keep-alive connection costs this, gnet's conn, and nothing else.
type client struct {
	c        gnet.Conn
	l        *loop
	ex       *exchange
	tunnelUp *upConn
	deadline int64  // unix nanos; meaning depends on state
	slot     int32  // index in l.clients
	port     uint16 // local (listener) port, for X-Forwarded-Port
	state    uint8
	closed   bool
	shutWR   bool
	partial  bool      // a head, or a body a route waits for, is on its way (header timeout applies)
	wait     *bodyWait // a complete head waits for its body; nil otherwise
	paused   bool      // out of gnet for backpressure (c == nil); pausedFD holds the socket
	resuming bool
	// lowat is the SO_RCVLOWAT set on the socket while a large body
	// streams (0 or 1: the kernel's default); lowatOff stops setting it
	// for the rest of the exchange once the client proved slow.
	lowat    int32
	lowatOff bool
	pausedFD int32
}

// write sends b to the client (gnet writes it at once, or buffers what
// the socket does not take). Every response byte goes through here.
func (cl *client) write(b []byte) {
	if h := testHookClientWrite.Load(); h != nil {
		(*h)(cl.c, len(b)) // before: the client may read b at once
	}
	cl.c.Write(b)
}

// testHookClientWrite, when set by a test, sees every write to a client.
var testHookClientWrite atomic.Pointer[func(c gnet.Conn, n int)]

func (l *loop) clientOpened(c gnet.Conn) {
	l.tick()
	var cl *client
	if n := len(l.freeClients); n > 0 {
		cl = l.freeClients[n-1]
		l.freeClients = l.freeClients[:n-1]
		*cl = client{}
	} else {
		cl = &client{}
	}
	cl.c, cl.l, cl.pausedFD = c, l, -1
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		cl.port = uint16(ta.Port)
	}
	cl.deadline = l.now + int64(l.opts.HeaderTimeout)
	cl.slot = int32(len(l.clients))
	l.clients = append(l.clients, cl)
	l.accepted.Add(1)
	l.open.Store(int64(len(l.clients)))
	c.SetContext(cl)
}

func (l *loop) clientClosed(cl *client) {
	l.tick()
	if cl.paused {
		cl.c = nil // gnet let go of it; the socket lives on in pausedFD
		return
	}
	cl.closed = true
	if len(l.handoffs) > 0 {
		l.forgetHandoff(cl) // (also when an upstream close moved it to csClosing)
	}
	if uc := cl.tunnelUp; uc != nil { // a tunnel not yet handed off
		cl.tunnelUp = nil
		uc.tunnel = nil
		// what the client sent before it closed still goes to the
		// upstream (best effort: gnet writes it once more on close)
		if cl.c != nil && uc.c != nil && !uc.dead {
			if buf, _ := cl.c.Peek(-1); len(buf) > 0 {
				uc.c.Write(buf)
			}
		}
		l.dropUpstream(uc)
	}
	if ex := cl.ex; ex != nil {
		// The client went away: the upstream exchange is abandoned at once
		// (an LLM keeps generating, and billing, otherwise).
		if u := ex.up; u != nil {
			l.dropUpstream(u)
		}
		if ex.pc.Status == 0 {
			ex.pc.Status = 499 // nginx's: closed before the answer (logged and counted)
		}
		l.endExchange(ex)
	}
	// remove from the sweep list (swap with last)
	last := int32(len(l.clients) - 1)
	if cl.slot <= last && l.clients[cl.slot] == cl {
		l.clients[cl.slot] = l.clients[last]
		l.clients[cl.slot].slot = cl.slot
		l.clients[last] = nil
		l.clients = l.clients[:last]
	}
	l.open.Store(int64(len(l.clients)))
	cl.c = nil
	l.endWait(cl)
	delete(l.pendingAnswer, cl)
	l.freeClients = append(l.freeClients, cl)
}

func (l *loop) clientTraffic(cl *client) (action gnet.Action) {
	l.tick()
	switch cl.state {
	case csIdle:
		return l.serve(cl)
	case csBusy:
		ex := cl.ex
		if ex != nil && ex.phase == exSending {
			l.pumpBody(ex)
		}
		if cl.closed {
			return gnet.Close
		}
		if ex := cl.ex; ex != nil && ex.phase == exSending && ex.up != nil && ex.up.c != nil {
			if max := l.opts.MaxBuffered; max > 0 && ex.up.c.OutboundBuffered() > max {
				if a := l.pauseClient(cl); a != gnet.None {
					return a
				}
				// cannot pause (bytes still queued to the client): past
				// two caps, cut rather than buffer without bound
				if n := ex.up.c.OutboundBuffered(); n > pipelineLimitFactor*max {
					l.opts.Logger.Warn("upload outran its upstream and the client cannot be paused; closing", "route", ex.route.ID, "buffered", n)
					l.fail(ex, 502, "upstream does not read the request body")
					return gnet.None
				}
			}
		} else if max := l.opts.MaxBuffered; max > 0 && ex != nil {
			// A body arriving while its upstream connection is still being
			// set up (a dial, a TLS handshake): keep it aside and stop
			// reading the client until the upstream takes it.
			if ex.phase == exConnecting && cl.c.InboundBuffered() > max {
				if a := l.stashBody(cl); a != gnet.None {
					return a
				}
			}
			// Pipelined bytes wait in gnet's buffer while a response is
			// pending; they cannot be paused (pausing needs an empty
			// buffer), so a client that piles up more than 2 caps is cut.
			// (InboundBuffered, not Peek: Peek copies a wrapped buffer)
			if n := cl.c.InboundBuffered(); n > pipelineLimitFactor*max {
				l.opts.Logger.Warn("client pipelined too much ahead of its responses; closing", "route", ex.route.ID, "buffered", n)
				if ex.up != nil {
					l.dropUpstream(ex.up)
				}
				l.endExchange(ex)
				cl.c.Discard(-1)
				return gnet.Close
			}
		}
		return gnet.None
	case csTunnel: // waiting to be handed off
		return l.tunnelTraffic(cl, cl.c)
	default: // csLinger, csClosing: drop what arrives
		cl.c.Discard(-1)
		return gnet.None
	}
}

// serve parses and dispatches the requests buffered on cl, one after the
// other (pipelining), until one needs the upstream or the buffer runs dry.
func (l *loop) serve(cl *client) gnet.Action {
	defer l.recoverClient(cl)
	prev := l.serving
	l.serving = cl
	defer func() { l.serving = prev }()
	for cl.state == csIdle && !cl.closed {
		buf, _ := cl.c.Peek(-1)
		if len(buf) == 0 {
			cl.partial = false
			return gnet.None
		}
		if w := cl.wait; w != nil && len(buf) >= w.head && !w.arrived(buf[w.head:]) {
			return gnet.None // the head is parsed again once the body is here
		}
		ex := l.getExchange(cl)
		if h := testHookParse.Load(); h != nil {
			(*h)()
		}
		n, err := http1.ParseRequest(&ex.req, buf, &l.reqLim)
		if err == http1.ErrNeedMore {
			l.putExchange(ex)
			if !cl.partial {
				cl.partial = true
				cl.deadline = l.now + int64(l.opts.HeaderTimeout)
			}
			return gnet.None
		}
		if err != nil {
			l.putExchange(ex)
			l.rejectAndLinger(cl, http1.StatusOf(err), err.Error())
			return gnet.None
		}
		cl.ex = ex
		cl.state = csBusy
		if !l.dispatch(cl, ex, buf, n) {
			// waiting for the body a route or plugin reads; the head
			// is parsed again when the body has arrived
			// (the header timeout runs from the head's first byte)
			cl.ex = nil
			cl.state = csIdle
			if !cl.partial {
				cl.partial = true
				cl.deadline = l.now + int64(l.opts.HeaderTimeout)
			}
			l.putExchange(ex)
			return gnet.None
		}
		cl.partial = false
		l.endWait(cl)
	}
	if cl.closed {
		return gnet.Close
	}
	return gnet.None
}

// recoverClient turns a panic while serving cl into a 500 (when nothing was
// sent yet) and a closed connection, logged with the route id.
func (l *loop) recoverClient(cl *client) {
	r := recover()
	if r == nil {
		return
	}
	route := ""
	if ex := cl.ex; ex != nil && ex.route != nil {
		route = ex.route.ID
	}
	l.opts.Logger.Error("panic while handling a request", "route", route, "panic", r)
	if cl.closed || cl.c == nil {
		return
	}
	if ex := cl.ex; ex != nil {
		if ex.up != nil {
			l.dropUpstream(ex.up)
		}
		sent := ex.respStarted
		l.endExchange(ex)
		if sent {
			cl.c.Close()
			return
		}
	}
	l.rejectAndLinger(cl, 500, "internal error")
}

func (l *loop) getExchange(cl *client) *exchange {
	var ex *exchange
	if n := len(l.freeEx); n > 0 {
		ex = l.freeEx[n-1]
		l.freeEx = l.freeEx[:n-1]
	} else {
		ex = l.newExchange()
	}
	ex.gen++
	ex.cl = cl
	return ex
}

func (l *loop) putExchange(ex *exchange) {
	ex.reset()
	l.freeEx = append(l.freeEx, ex)
}

// sweep runs on the loop every sweepEvery: it enforces client deadlines,
// upstream timeouts and pool idle timeouts.
func (l *loop) sweep() {
	l.tick()
	l.alog.Tick()
	now := l.now
	draining := l.h.draining.Load()
	for i := 0; i < len(l.clients); i++ {
		cl := l.clients[i]
		if cl.c == nil && cl.state != csBusy {
			continue // paused or being enrolled again: its exchange's deadline runs
		}
		switch cl.state {
		case csIdle:
			if draining && !cl.partial {
				cl.c.Close()
				continue
			}
			if now >= cl.deadline {
				// head not complete within client_header_timeout, or
				// idle past keepalive_timeout: close without a response
				// (nginx does the same).
				cl.c.Close()
			}
		case csBusy:
			ex := cl.ex
			if ex != nil && cl.lowat > 1 && cl.c != nil && ex.phase == exSending && !ex.reqDone &&
				now-ex.bodyAt >= l.lowatIdleFor() {
				// a client slow to send its body (whatever the
				// upstream does): read whatever it sends
				l.setLowat(cl, 1)
				cl.lowatOff = true
			}
			switch {
			case ex == nil:
			case l.awaitingBody(ex):
				// the upstream took every body byte so far: the
				// client is the one that stalls, not the upstream
				if now-ex.bodyAt >= int64(l.opts.BodyTimeout) {
					if ex.picked { // the stall is the client's: no latency sample for the node
						ex.picked = false
						ex.cur.Abandon(ex.node)
					}
					ex.clientFault = true
					l.fail(ex, 408, "client body timed out")
				}
			case ex.deadline != 0 && now >= ex.deadline && !l.stillSending(ex):
				l.timeout(ex)
			}
		case csClosing:
			if cl.c.OutboundBuffered() == 0 || now >= cl.deadline {
				cl.c.Close()
			}
		case csTunnel:
			if now >= cl.deadline {
				cl.c.Close() // the 101 was not taken: clientClosed closes the upstream too
			}
		case csLinger:
			if !cl.shutWR && cl.c.OutboundBuffered() == 0 {
				l.shutdownWrite(cl)
			}
			if now >= cl.deadline {
				cl.c.Close()
			}
		}
	}
	for key, p := range l.pools {
		p.expire(now)
		if len(p.idle) == 0 && now-p.usedAt >= int64(poolRetireAfter) {
			p.retired = true // connections still out close when released
			delete(l.pools, key)
		}
	}
}
