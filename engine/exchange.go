package engine

import (
	"bytes"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
	"github.com/sluice-gw/sluice/router"
)

// exchange phases
const (
	exConnecting uint8 = iota + 1 // waiting for an upstream connection
	exSending                     // head sent, request body still streaming
	exWaiting                     // request sent, waiting for the response head
	exRelaying                    // response head sent to the client, relaying the body
)

// maxBufferedBody is the largest request body kept in the exchange (copied
// from the client's buffer) so a request can be retried on another
// connection; larger bodies stream straight from the client's buffer.
const maxBufferedBody = plugin.MaxPeekBody // bodyArrived waits for what keepBody keeps

// exchange is one request/response in flight. Exchanges are recycled per
// loop; Reset keeps every buffer's capacity so the steady state does not
// allocate.
type exchange struct {
	gen   uint64 // bumped on every reuse, so a late dial result can tell
	cl    *client
	phase uint8

	req    http1.Request
	rreq   router.Request
	tbl    *router.Table // the table the request started on
	route  *router.Route
	ups    *balancer.Upstream
	cur    *balancer.Cursor
	node   int
	addr   netip.AddrPort
	tried  balancer.Tried
	ra     [16]byte // client address bytes for chash on remote_addr
	tries  int
	start  int64 // unix nanos, request head parsed
	sent   int64 // request fully sent upstream
	dialAt int64 // the serving attempt began (connect or pooled connection taken)

	deadline  int64 // 0 = none; connect, send or read deadline by phase
	pausedOut int   // while a side is paused: bytes the other side still had to send at the last check
	// bodyAt: while the request body streams, when the client last sent
	// some of it (or sluice stopped holding it back); the body timeout
	// (client_body_timeout, between two reads as in nginx) and the read
	// threshold's slow-client reset count from it.
	bodyAt int64

	up          *upConn
	counted     bool // counted in the active gauges
	picked      bool // cur.Start(node) not yet matched by Done
	reused      bool // up came from the pool
	clientFault bool // the client stalled (fail: not an upstream abort)
	redone      bool // already re-sent once after a stale pooled connection
	headReq     bool
	keepAlive   bool // the client connection stays open after this exchange
	upgrade     bool // WebSocket upgrade allowed and asked for

	// request body
	body      []byte // whole body when small enough to keep (retries)
	bodyKept  bool   // body holds the complete request body
	bodyLeft  int64  // Content-Length bytes not yet forwarded
	bodyChunk http1.Chunked
	bodyKind  http1.BodyKind
	bodyTotal int64 // body bytes received (client_max_body_size)
	reqDone   bool  // request completely forwarded

	head  []byte // copy of the client's request head; ex.req points into it
	stash []byte // body bytes taken off the client while its upstream was connecting (client paused)
	out   []byte // upstream head (+ kept body) being sent

	// response
	resp        http1.Response
	respStarted bool // any byte went to the client
	respKind    http1.BodyKind
	respLeft    int64
	respChunk   http1.Chunked
	decode      bool // client is HTTP/1.0: de-chunk, close at the end
	closeAfter  bool // close the client after this response

	// plugins
	pc      plugin.Ctx // the route's plugins' view of the request
	pending bool       // a plugin step runs off the loop (Ctx.Defer)
	logged  bool       // the Log phase ran
	plain   []byte     // de-chunked request body for plugins
	uri     []byte     // scratch: a copy of a plugin-built upstream path to check
	usage   plugin.UsageScanner
	// scanUsage: the response may carry LLM usage (JSON/SSE, not compressed)
	scanUsage bool
	// scanGzip: the same, gzip-encoded: its body is kept in gz (up to
	// maxGzipScan) and scanned once it ended (scanGzipped)
	scanGzip bool
	gz       []byte
	rport    uint16 // client's port (access log)
}

func (l *loop) newExchange() *exchange {
	ex := &exchange{
		out:  make([]byte, 0, 2048),
		head: make([]byte, 0, 1024),
		body: make([]byte, 0, 1024),
	}
	ex.req.Headers = make([]http1.Header, 0, http1.DefaultMaxHeaders)
	ex.resp.Headers = make([]http1.Header, 0, 200)
	ex.rreq.Request = &ex.req
	ex.pc.SetDefer(func(_ *plugin.Ctx, work func() plugin.Result) { l.deferWork(ex, work) })
	ex.pc.Reset()
	return ex
}

func (ex *exchange) reset() {
	gen, out, body, head, plain, uri, gz := ex.gen, ex.out[:0], ex.body[:0], ex.head[:0], ex.plain[:0], ex.uri[:0], ex.gz[:0]
	if cap(gz) > 16<<10 {
		gz = nil // a rare big gzip answer: its buffer does not stay with every pooled exchange
	}
	rh, sh := ex.req.Headers[:0], ex.resp.Headers[:0]
	pc := ex.pc
	pc.Reset()
	*ex = exchange{gen: gen, out: out, body: body, head: head, plain: plain, uri: uri, gz: gz, pc: pc}
	ex.req.Headers = rh
	ex.resp.Headers = sh
	ex.rreq.Request = &ex.req
}

var (
	methodHEAD = []byte("HEAD")
	wsToken    = []byte("websocket")
)

// dispatch routes a parsed request head of n bytes and starts its upstream
// exchange, or answers it directly (404, 413, 503 ...). It reports false,
// consuming nothing, when the route's plugins need the request body and it
// has not arrived yet.
func (l *loop) dispatch(cl *client, ex *exchange, buf []byte, n int) bool {
	r := &ex.req
	ex.start = l.now
	l.requests.Add(1)
	ex.headReq = bytes.Equal(r.Method, methodHEAD)
	ex.keepAlive = r.KeepAlive && !l.h.draining.Load()
	ex.decode = r.Minor == 0
	if ta, ok := cl.c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		ex.rreq.RemoteAddr = a.Unmap()
		ex.rport = uint16(ta.Port)
	}

	if l.opts.MaxBody > 0 && r.Body == http1.BodyLength && r.ContentLength > l.opts.MaxBody {
		l.answer(cl, ex, n, 413, "request body too large")
		return true
	}

	differs := false // the match form differs (only where NeedsNormalize is: it has a '%' or '\\')
	if http1.NeedsNormalize(r.Path) {
		// route on (and send upstream) the path as the upstream will read
		// it; detach copies it into the exchange with the head
		l.pathBuf = append(l.pathBuf[:0], r.Path...)
		k, ok := http1.NormalizePath(l.pathBuf)
		if !ok {
			l.answer(cl, ex, n, 400, "invalid path")
			return true
		}
		r.Path = l.pathBuf[:k:k]
		differs = http1.MatchDiffers(r.Path)
	}
	t := l.table()
	if t == nil {
		l.answer(cl, ex, n, 503, "no routing table yet")
		return true
	}
	ex.tbl = t
	// routes match the decoded path (http1.AppendMatchPath); the upstream
	// gets the path with its encodings
	fwd := r.Path
	if differs {
		l.matchBuf = http1.AppendMatchPath(l.matchBuf[:0], fwd)
		r.Path, r.MatchPath = l.matchBuf, l.matchBuf // (detach copies it: $uri for plugins)
	}
	// a route matches on post_arg.*: a request reaching it is matched
	// again with its body (≤ 64 KiB) once that has arrived
	ex.rreq.BodyPending = r.Body != http1.BodyNone && !r.Expect100
	rt := t.Match(&ex.rreq)
	if ex.rreq.NeedBody {
		if !l.bodyArrived(cl, r, buf, n) {
			r.Path = fwd
			l.requests.Add(-1)
			return false
		}
		ex.rreq.Body, ex.rreq.BodyPending = l.peekBody(ex, r, buf[n:]), false
		rt = t.Match(&ex.rreq)
	}
	r.Path = fwd
	ex.rreq.Body = nil // it pointed into gnet's buffer; plugins get the kept copy
	if rt == nil {
		if rt = t.NotFound; rt == nil {
			l.answer(cl, ex, n, 404, "404 Route Not Found")
			return true
		}
		// global rules run first (key-auth's 401, limit-count), then proceed answers 404
	}
	ex.route = rt
	if rt.Broken {
		// its upstream or plugins did not build (logged by the admin
		// side): answering beats falling through to another route
		l.answer(cl, ex, n, 503, "the route's configuration does not build")
		return true
	}
	if h := testHookDispatch.Load(); h != nil {
		(*h)(rt)
	}
	ch := rt.Chain
	if ch != nil && ch.NeedsBody && !r.Expect100 && !l.bodyArrived(cl, r, buf, n) {
		l.requests.Add(-1)
		return false // a plugin reads the body: parse again when it is here
	}
	ex.upgrade = r.Upgrade && rt.Websocket && hasToken(r.Header(hdrUpgrade), wsToken)

	// The head is consumed now: ex.req is re-pointed at a copy owned by
	// the exchange, because gnet's buffer is reused after Discard and the
	// upstream head may be built in a later callback (dial, retry).
	ex.bodyKind = r.Body
	ex.bodyChunk.Request = true
	ex.bodyLeft = 0
	if r.Body == http1.BodyLength {
		ex.bodyLeft = r.ContentLength
	}
	ex.head = detach(r, buf[:n], ex.head)
	cl.c.Discard(n)
	l.keepBody(ex)
	if l.opts.MaxBody > 0 && ex.bodyTotal > l.opts.MaxBody {
		l.answer(cl, ex, 0, 413, "request body too large") // head already consumed
		return true
	}
	if ch != nil {
		l.startPlugins(ex)
		if !l.runPre(ex) {
			return true
		}
	}
	l.proceed(ex)
	return true
}

// bodyArrived reports whether the request body of r (a head of n bytes at
// the start of buf) is complete, or too large to wait for
// (plugin.MaxPeekBody). It keeps its progress in the client's bodyWait,
// so a body that comes in pieces is scanned once.
func (l *loop) bodyArrived(cl *client, r *http1.Request, buf []byte, n int) bool {
	w := cl.wait
	if w == nil {
		if k := len(l.freeWaits); k > 0 {
			w = l.freeWaits[k-1]
			l.freeWaits = l.freeWaits[:k-1]
		} else {
			w = new(bodyWait)
		}
		*w = bodyWait{head: n, kind: r.Body, length: r.ContentLength}
		cl.wait = w
	}
	return w.arrived(buf[n:])
}

// endWait recycles cl's bodyWait, if any.
func (l *loop) endWait(cl *client) {
	if w := cl.wait; w != nil {
		cl.wait = nil
		l.freeWaits = append(l.freeWaits, w)
	}
}

// bodyWait is a client's wait for a request body a route or plugin reads
// (dispatch reported false). It remembers how far a chunked body was
// scanned, so each new packet costs its own bytes, not the whole body
// again; the head is parsed again only once the body is complete.
type bodyWait struct {
	head    int // head length: the body starts there in the client's buffer
	kind    http1.BodyKind
	length  int64 // Content-Length
	scanned int   // chunked: body bytes scanned so far
	done    bool  // arrived reported true: the scan is over
	ch      http1.Chunked
}

// arrived reports whether the body is complete in rest (the bytes after the
// head), or too large to wait for (plugin.MaxPeekBody).
func (w *bodyWait) arrived(rest []byte) bool {
	if !w.done {
		w.done = w.scan(rest)
	}
	return w.done
}

func (w *bodyWait) scan(rest []byte) bool {
	switch w.kind {
	case http1.BodyLength:
		return w.length > plugin.MaxPeekBody || int64(len(rest)) >= w.length
	case http1.BodyChunked:
		if len(rest) >= plugin.MaxPeekBody {
			return true
		}
		for w.scanned < len(rest) {
			k, _, done, err := w.ch.Next(rest[w.scanned:])
			if err != nil || done {
				return true // an error is answered by the relay
			}
			if k == 0 {
				return false
			}
			w.scanned += k
		}
		return false
	}
	return true
}

// peekBody returns the complete request body that follows the head in rest,
// de-chunked into ex.plain when chunked; nil when larger than
// plugin.MaxPeekBody (with its chunk framing, for a chunked one). The
// result may point into rest.
func (l *loop) peekBody(ex *exchange, r *http1.Request, rest []byte) []byte {
	switch r.Body {
	case http1.BodyLength:
		if r.ContentLength > plugin.MaxPeekBody || int64(len(rest)) < r.ContentLength {
			return nil
		}
		return rest[:r.ContentLength]
	case http1.BodyChunked:
		if len(rest) > plugin.MaxPeekBody {
			rest = rest[:plugin.MaxPeekBody]
		}
		var complete bool
		ex.plain, complete = dechunk(ex.plain[:0], rest)
		if !complete { // larger than MaxPeekBody, as a Content-Length body would be
			return nil
		}
		return ex.plain
	}
	return nil
}

// proceed sends ex to its upstream: the split arm a plugin chose, or the
// route's.
func (l *loop) proceed(ex *exchange) {
	if ex.route.IsNotFound {
		// the global rules let it through: the 404, with the headers they
		// added (limit-count's X-RateLimit-*), as APISIX's exit keeps them
		l.respond(ex, notFound)
		return
	}
	if uri := ex.pc.URI; ex.pc.URIBuilt && http1.NeedsNormalize(uri) {
		// A rewrite built from request values ($arg_x = "../../admin") must
		// not put back what the request path's normalisation took out: a
		// dot segment is refused. The path itself goes upstream as built
		// ("//" and encodings kept, as APISIX sends it); the check runs on
		// a copy.
		ex.uri = append(ex.uri[:0], uri...)
		if _, ok := http1.NormalizeBuiltPath(ex.uri); !ok {
			l.fail(ex, 400, "invalid path after rewrite")
			return
		}
	}
	u := ex.pc.Upstream
	if u == nil {
		u = ex.route.Upstream
	}
	if u == nil {
		l.fail(ex, 503, "missing upstream configuration in Route or Service")
		return
	}
	ex.ups = u
	if ex.tbl == l.tbl {
		ex.cur = l.cursors[u.Index]
	} else {
		// A deferred step let the loop adopt a newer table meanwhile: its
		// cursors index other upstreams. Rare; a fresh cursor is fine.
		ex.cur = balancer.NewCursor(u)
	}
	r := &ex.req
	if r.Expect100 && r.Body != http1.BodyNone && !ex.reqDone && len(ex.body) == 0 {
		ex.cl.write(continue100)
	}
	l.active.Add(1)
	ex.counted = true
	l.connect(ex, false)
}

// testHookDispatch, when set by a test, runs for every routed request (to
// inject a panic, for one).
var testHookDispatch atomic.Pointer[func(*router.Route)]

// testHookParse, when set by a test, runs before every request head parse.
var testHookParse atomic.Pointer[func()]

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// keepBody copies the request body into ex.body when it has fully arrived
// and is small, so the request can be re-sent on another connection.
func (l *loop) keepBody(ex *exchange) {
	ex.body = ex.body[:0]
	switch ex.bodyKind {
	case http1.BodyNone:
		ex.reqDone = true
		ex.bodyKept = true
	case http1.BodyLength:
		if ex.bodyLeft > maxBufferedBody {
			return
		}
		buf, _ := ex.cl.c.Peek(-1)
		if int64(len(buf)) < ex.bodyLeft {
			return
		}
		ex.body = append(ex.body, buf[:ex.bodyLeft]...)
		ex.cl.c.Discard(int(ex.bodyLeft))
		ex.bodyTotal = ex.bodyLeft
		ex.bodyLeft = 0
		ex.bodyKept = true
		ex.reqDone = true
	case http1.BodyChunked:
		buf, _ := ex.cl.c.Peek(-1)
		if len(buf) > maxBufferedBody {
			buf = buf[:maxBufferedBody]
		}
		c := http1.Chunked{Request: true}
		total := 0
		for {
			n, data, done, err := c.Next(buf[total:])
			if err != nil {
				return // the pump reports it
			}
			total += n
			ex.bodyTotal += int64(len(data))
			if done {
				ex.body = append(ex.body, buf[:total]...)
				ex.cl.c.Discard(total)
				ex.bodyKept = true
				ex.reqDone = true
				return
			}
			if n == 0 {
				ex.bodyTotal = 0
				return
			}
		}
	}
}

// answer responds to a request without an upstream. The request's body, if
// any, is not read: the connection closes after the answer unless the
// request had none.
func (l *loop) answer(cl *client, ex *exchange, n int, status int, msg string) {
	reqDone := ex.req.Body == http1.BodyNone
	keep := ex.keepAlive && reqDone
	l.wbuf = l.appendError(l.wbuf[:0], status, msg, !keep, ex.headReq)
	ex.pc.Status, ex.pc.BytesOut = status, int64(len(l.wbuf))
	l.logExchange(ex) // before Discard: ex.req may point into the read buffer
	if n > 0 {
		cl.c.Discard(n) // (gnet: Discard(0) would drop everything)
	}
	cl.ex = nil
	l.putExchange(ex)
	l.writeFinal(cl, reqDone, keep)
}

// connect gets an upstream connection for ex: a pooled one, or a new dial.
// retry says this is a further try after a failure.
func (l *loop) connect(ex *exchange, retry bool) {
	u := ex.ups
	if retry {
		if ex.node >= 0 && ex.node < 64 {
			ex.tried |= 1 << uint(ex.node)
		}
	}
	node, addr := ex.cur.Pick(u, ex.tried, l.hashKey(ex), l.now)
	if node < 0 {
		l.fail(ex, 502, "no upstream node available")
		return
	}
	ex.node, ex.addr = node, addr
	ex.tries++
	ex.dialAt = l.now
	ex.phase = exConnecting
	if u.Timeouts.Connect > 0 {
		ex.deadline = l.now + int64(u.Timeouts.Connect)
	} else {
		ex.deadline = l.now + int64(60*time.Second)
	}
	ex.cur.Start(node)
	ex.picked = true
	p := l.pool(poolKeyFor(u, node, addr), u)
	if uc := p.get(l.now); uc != nil {
		ex.reused = true
		l.attach(ex, uc)
		return
	}
	ex.reused = false
	l.dial(ex, p, u)
}

// hashKey returns the chash key's value for ex's request (nil for other
// balancer kinds). As in APISIX, a key that is missing or empty for this
// request hashes on the client address instead.
func (l *loop) hashKey(ex *exchange) []byte {
	u := ex.ups
	if u.Kind != balancer.CHash {
		return nil
	}
	var k []byte
	switch u.HashOn {
	case balancer.HashHeader:
		k = ex.req.HeaderVar(unsafeBytes(u.HashKey))
	case balancer.HashCookie:
		k = ex.req.Cookie(unsafeBytes(u.HashKey))
	case balancer.HashConsumer:
		k = unsafeBytes(ex.pc.Consumer)
	default: // vars, vars_combinations: compiled by the router
		// ($consumer_name and $route_id: what the plugins found, whether
		// or not a plugin condition read them before)
		ex.rreq.Consumer, ex.rreq.RouteID = ex.pc.Consumer, ex.route.ID
		if hk := ex.tbl.HashKeys; u.Index < len(hk) && hk[u.Index].Valid() {
			l.keyBuf = hk[u.Index].Append(l.keyBuf[:0], &ex.rreq)
			k = l.keyBuf
		}
	}
	if len(k) == 0 {
		ex.ra = ex.rreq.RemoteAddr.As16()
		return ex.ra[:]
	}
	return k
}

// attach binds an open upstream connection to ex and sends the request.
func (l *loop) attach(ex *exchange, uc *upConn) {
	ex.up = uc
	uc.ex = ex
	uc.requests++
	l.sendHead(ex)
}

// sendHead writes the upstream head (and the kept body) and starts
// streaming the rest of the body.
func (l *loop) sendHead(ex *exchange) {
	l.beforeProxy(ex)
	ex.out = l.appendUpstreamHead(ex.out[:0], ex)
	ex.out = append(ex.out, ex.body...)
	uc := ex.up
	timeouts := &ex.ups.Timeouts
	ex.phase = exSending
	ex.deadline = l.now + int64(orDefault(timeouts.Send))
	gen := ex.gen
	uc.c.Write(ex.out)
	if ex.gen != gen || ex.up != uc || uc.dead {
		return // the write failed and the exchange moved on
	}
	if ex.reqDone {
		l.requestSent(ex)
		return
	}
	ex.bodyAt = l.now
	l.pumpBody(ex)
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return 60 * time.Second
	}
	return d
}

// requestSent switches ex to waiting for the response.
func (l *loop) requestSent(ex *exchange) {
	ex.sent = l.now
	if ex.phase == exSending {
		ex.phase = exWaiting
		ex.deadline = l.now + int64(orDefault(ex.ups.Timeouts.Read))
	}
}

// pumpBody forwards the request body bytes buffered on the client to the
// upstream, as they arrive.
func (l *loop) pumpBody(ex *exchange) {
	cl, uc := ex.cl, ex.up
	if uc == nil || ex.reqDone {
		return
	}
	if len(ex.stash) > 0 {
		l.pumpStash(ex)
		return
	}
	if cl.c == nil || uc.c == nil {
		return // paused (c == nil), or the upstream closed with its answer salvaged
	}
	buf, _ := cl.c.Peek(-1)
	if len(buf) == 0 {
		return
	}
	n, ok := l.takeBody(ex, buf)
	if !ok || n == 0 {
		return
	}
	ex.bodyAt = l.now
	gen := ex.gen
	uc.c.Write(buf[:n])
	if cl.closed || cl.c == nil {
		return
	}
	cl.c.Discard(n)
	if ex.bodyKind == http1.BodyLength && !cl.lowatOff {
		want := int32(1)
		if !ex.reqDone && ex.bodyLeft >= lowatMin {
			want = int32(min(ex.bodyLeft, lowatMax))
		}
		l.setLowat(cl, want)
	}
	l.bodySent(ex, uc, gen)
}

// Large request bodies: the loop asks the kernel to report a client's
// socket readable only once lowatMax bytes of the body (or its rest) are
// queued (SO_RCVLOWAT), so a fast client's upload wakes the loop once per
// read buffer rather than once per segment. Measured on 1 MiB uploads
// (README, Performance): about 13% more throughput, fewer context switches
// for sluice and for the sender. A client that sends nothing for lowatIdle
// gets the kernel's default back (the sweep), so a slow upload is relayed
// as it comes and the body timeout counts its real reads.
const (
	lowatMax = 256 << 10 // = readBufferCap
	// lowatMin: a body with less than this left is read as it comes; a
	// threshold would save a wake-up or two for two setsockopt calls.
	lowatMin  = 64 << 10
	lowatIdle = 100 * time.Millisecond
)

// lowatIdleFor is how long a client may send nothing before its threshold
// is lowered: lowatIdle, or less under a shorter body timeout, so that the
// bytes it sent are read before the timeout judges it idle.
func (l *loop) lowatIdleFor() int64 {
	return int64(min(lowatIdle, l.opts.BodyTimeout/2))
}

// setLowat sets cl's SO_RCVLOWAT to n when it differs from what is set.
func (l *loop) setLowat(cl *client, n int32) {
	if max(cl.lowat, 1) == n || cl.c == nil {
		return
	}
	cl.lowat = n
	_ = unix.SetsockoptInt(cl.c.Fd(), unix.SOL_SOCKET, unix.SO_RCVLOWAT, int(n))
}

// pumpStash sends the body bytes kept aside while the upstream was
// connecting, then lets the client be read again.
func (l *loop) pumpStash(ex *exchange) {
	cl, uc := ex.cl, ex.up
	n, ok := l.takeBody(ex, ex.stash)
	if !ok {
		return
	}
	gen := ex.gen
	uc.c.Write(ex.stash[:n])
	ex.stash = nil
	if ex.gen != gen {
		return
	}
	if cl.paused {
		l.resumeClientNow(cl)
	}
	l.bodySent(ex, uc, gen)
	if cl.c != nil && !cl.closed && ex.gen == gen && ex.phase == exSending {
		l.pumpBody(ex) // not paused after all: what came meanwhile
	}
}

// bodySent moves ex on after body bytes went to uc.
func (l *loop) bodySent(ex *exchange, uc *upConn, gen uint64) {
	if ex.gen != gen || ex.up != uc || uc.dead {
		return
	}
	ex.deadline = l.now + int64(orDefault(ex.ups.Timeouts.Send))
	if ex.reqDone {
		l.requestSent(ex)
	}
}

// takeBody counts the request body bytes at the start of buf (all of
// them, up to the body's end) and reports how many go upstream; ok is
// false when ex failed (a bad chunk, a body over client_max_body_size).
func (l *loop) takeBody(ex *exchange, buf []byte) (n int, ok bool) {
	switch ex.bodyKind {
	case http1.BodyLength:
		n = len(buf)
		if int64(n) > ex.bodyLeft {
			n = int(ex.bodyLeft)
		}
		ex.bodyLeft -= int64(n)
		ex.bodyTotal += int64(n)
		if ex.bodyLeft == 0 {
			ex.reqDone = true
		}
	case http1.BodyChunked:
		for n < len(buf) {
			k, data, done, err := ex.bodyChunk.Next(buf[n:])
			if err != nil {
				msg := "bad chunked request body"
				if err == http1.ErrForbiddenTrailer {
					msg = "bad chunked request body: a trailer field not allowed in trailers (RFC 9110 6.5.1)"
				}
				l.fail(ex, 400, msg) // body not done: lingers
				return
			}
			n += k
			ex.bodyTotal += int64(len(data))
			if done {
				ex.reqDone = true
				break
			}
			if k == 0 {
				break
			}
		}
		if l.opts.MaxBody > 0 && ex.bodyTotal > l.opts.MaxBody {
			l.fail(ex, 413, "request body too large")
			return 0, false
		}
	}
	return n, true
}

// stashBody takes the request body buffered on cl (its upstream still
// connecting) into ex.stash and pauses cl, so nobody reads it until the
// upstream takes the stash (pumpStash). It returns gnet.None, changing
// nothing, when the buffer holds more than the body (pipelined requests
// would be lost) or the body is not chunked or sized.
func (l *loop) stashBody(cl *client) gnet.Action {
	ex := cl.ex
	if cl.c.OutboundBuffered() > 0 || len(ex.stash) > 0 {
		// the client could not be paused (its queued bytes would be
		// lost), or a stash is already waiting (its pause failed)
		return gnet.None
	}
	buf, _ := cl.c.Peek(-1)
	switch ex.bodyKind {
	case http1.BodyLength:
		if int64(len(buf)) > ex.bodyLeft {
			return gnet.None
		}
	case http1.BodyChunked:
		ch := ex.bodyChunk // a copy: the scan must not move the real one
		for rest := buf; len(rest) > 0; {
			k, _, done, err := ch.Next(rest)
			if err != nil || done {
				return gnet.None // the body ends here (or is bad): not a stash's job
			}
			if k == 0 {
				break
			}
			rest = rest[k:]
		}
	default:
		return gnet.None
	}
	ex.stash = append(ex.stash[:0], buf...)
	cl.c.Discard(len(buf))
	return l.pauseClient(cl) // both buffers are empty: it pauses
}

// timeout handles ex's deadline passing.
func (l *loop) timeout(ex *exchange) {
	switch ex.phase {
	case exConnecting:
		// connect timeout: next node, as nginx proxy_next_upstream timeout
		l.nodeDone(ex, 0)
		if n := ex.ups.Nodes; ex.node >= 0 && ex.node < len(n) {
			n[ex.node].State.Fail(l.now)
		}
		if ex.up != nil {
			l.dropUpstream(ex.up)
		}
		ex.pendingDialGen()
		if ex.tries <= ex.ups.Retries {
			l.connect(ex, true)
			return
		}
		l.fail(ex, 504, "upstream connect timed out")
	default:
		// a response paused for a client that took none of it for
		// send_timeout: the client's stall, not the upstream's
		clientSlow := ex.up != nil && (ex.up.paused || ex.up.resuming)
		if ex.up != nil {
			l.dropUpstream(ex.up)
		}
		if clientSlow {
			ex.clientFault = true
			l.fail(ex, 504, "client took none of the response for send_timeout")
			return
		}
		l.fail(ex, 504, "upstream timed out")
	}
}

// pendingDialGen invalidates a dial still in progress for ex: its result
// must not attach to a later try.
func (ex *exchange) pendingDialGen() { ex.gen++ }

// fail ends ex with an error status: a JSON error response when no
// response byte was sent yet, else the client connection is cut so the
// client sees a truncated response.
func (l *loop) fail(ex *exchange, status int, msg string) {
	cl := ex.cl
	if ex.up != nil {
		l.dropUpstream(ex.up)
	}
	started, reqDone := ex.respStarted, ex.reqDone
	keep := ex.keepAlive && reqDone
	if !started {
		l.wbuf = l.appendError(l.wbuf[:0], status, msg, !keep, ex.headReq)
		ex.pc.Status, ex.pc.BytesOut = status, int64(len(l.wbuf))
		if ex.tries > 0 && ex.pc.UpstreamStatus == 0 && ex.resp.Status == 0 && (status == 502 || status == 504) {
			// an attempt failed (connect, timeout, bad answer): nginx's
			// $upstream_status says 502 or 504 then, and APISIX's
			// api-breaker counts it; so does sluice's
			ex.pc.UpstreamStatus = status
		}
	} else if !ex.clientFault {
		// The response was under way: its status went out, so it is
		// logged as sent, but the client sees a cut stream — the way an
		// LLM stream usually fails. Say so, and count it on its arm.
		ex.pc.Aborted = true
		l.logAborted(ex, msg)
	}
	l.endExchange(ex) // ex is recycled: only the copies above are used below
	if cl.paused || cl.resuming {
		// mid-upload, the client out of the loop: the answer waits until
		// it is back (clientResumed), then the rest of the body is
		// drained and the connection closed, never read as a request
		if started {
			if cl.paused {
				l.dropPausedClient(cl)
			} else {
				cl.closed = true // closed once back in the loop
			}
			return
		}
		if l.pendingAnswer == nil {
			l.pendingAnswer = map[*client][]byte{}
		}
		l.pendingAnswer[cl] = append([]byte(nil), l.wbuf...)
		l.resumeClientNow(cl)
		return
	}
	if cl.closed || cl.c == nil {
		return
	}
	if started {
		cl.state = csClosing
		cl.c.Close()
		return
	}
	l.writeFinal(cl, reqDone, keep) // part of the body unread: linger
}

// logAborted warns that ex's response was cut after it started (msg:
// why), naming its route and split arm. Off the hot path (an error), and
// at most once a second per loop: an upstream that fails thousands of
// streams at once must not hold the loop on log writes; the lines left
// out are counted in the next.
func (l *loop) logAborted(ex *exchange, msg string) {
	if l.now-l.abortLogAt < int64(time.Second) {
		l.abortQuiet++
		return
	}
	l.abortLogAt = l.now
	quiet := l.abortQuiet
	l.abortQuiet = 0
	route, arm := "", ""
	if ex.route != nil {
		route = ex.route.ID
	}
	if a := ex.pc.Arm; a != nil {
		arm = a.Name
	}
	l.opts.Logger.Warn("response cut mid-stream", "reason", msg, "route", route, "arm", arm,
		"upstream", ex.addr.String(), "status", ex.pc.Status, "bytes", ex.pc.BytesOut, "more_since_last", quiet)
}

// endExchange releases ex (and detaches it from its client and upstream).
// It does not touch the client connection's state beyond clearing cl.ex.
func (l *loop) endExchange(ex *exchange) {
	if cl := ex.cl; cl != nil {
		// whatever comes next (a tunnel, a linger, a close, the next
		// request) must see every byte the client sends
		l.setLowat(cl, 1)
		cl.lowatOff = false
	}
	if ex.counted {
		l.active.Add(-1)
	}
	l.nodeDone(ex, l.now-ex.start)
	l.logExchange(ex)
	if uc := ex.up; uc != nil && uc.ex == ex {
		uc.ex = nil
	}
	if cl := ex.cl; cl != nil && cl.ex == ex {
		cl.ex = nil
		cl.state = csIdle
	}
	l.putExchange(ex)
}

// nodeDone closes the balancer's bracket (least_conn count, ewma latency)
// opened when ex's current node was picked.
func (l *loop) nodeDone(ex *exchange, latency int64) {
	if ex.picked {
		ex.picked = false
		ex.cur.Done(ex.node, latency, l.now)
	}
}

// nextRequest readies cl for its next request after an exchange ended with
// keep-alive, and serves a pipelined one already buffered.
func (l *loop) nextRequest(cl *client) {
	cl.state = csIdle
	cl.deadline = l.now + int64(l.opts.KeepaliveTimeout)
	if l.serving == cl {
		return // serve's loop goes on with the next pipelined request
	}
	if buf, _ := cl.c.Peek(-1); len(buf) > 0 {
		if l.serve(cl) == gnet.Close {
			cl.c.Close()
		}
	}
}

// notFound is the answer to a request no route matched, after the global
// rules ran (router.Table.NotFound).
var notFound = plugin.Result{Status: 404, Body: []byte(`{"error_msg":"404 Route Not Found"}` + "\n"),
	Headers: []byte("Content-Type: application/json\r\n")}
