package engine

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"net/netip"

	"github.com/panjf2000/gnet/v2"

	"github.com/sluice-gw/sluice/engine/accesslog"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// This file runs a route's plugin chain (STYLE §2 steps 5, 7, 10, 11):
// rewrite and access before the upstream is chosen, header and body filters
// on the response, log when the exchange ends. A route without plugins
// (Chain nil) pays one nil check per step.

// startPlugins readies ex.pc for the request's phases.
func (l *loop) startPlugins(ex *exchange) {
	c := &ex.pc
	c.Req = &ex.req
	c.RemoteAddr = ex.rreq.RemoteAddr
	c.Loop = l.idx
	c.Now = l.now
	c.Start = ex.start
	c.RouteID, c.RouteName = ex.route.ID, ex.route.Name
	c.MatchedURI = ex.route.MatchedURI
	c.Match = &ex.rreq
	c.Node = -1
	if ex.route.Chain.NeedsBody && ex.bodyKept {
		switch ex.bodyKind {
		case http1.BodyLength:
			c.Body = ex.body
		case http1.BodyChunked:
			ex.plain, _ = dechunk(ex.plain[:0], ex.body) // kept: complete
			c.Body = ex.plain
		}
		ex.rreq.Body = c.Body
	}
}

// dechunk appends the data of a chunked body to dst; complete reports
// whether raw held the whole body (its last chunk).
func dechunk(dst, raw []byte) (_ []byte, complete bool) {
	var ch http1.Chunked
	for len(raw) > 0 {
		n, data, done, err := ch.Next(raw)
		if err != nil || n == 0 {
			return dst, false
		}
		dst = append(dst, data...)
		raw = raw[n:]
		if done {
			return dst, true
		}
	}
	return dst, false
}

// runPre runs the chain's rewrite and access steps from the current
// position. It reports whether the request goes on to its upstream; when
// not, it was answered or is waiting for a deferred step.
func (l *loop) runPre(ex *exchange) bool {
	ch := ex.route.Chain
	c := &ex.pc
	for i := c.Step(); i < len(ch.Pre); i++ {
		c.SetStep(i + 1)
		res := ch.Pre[i].Run(c)
		if res.Status == 0 {
			continue
		}
		if res.Pending() {
			ex.pending = true
			return false
		}
		l.respond(ex, res)
		return false
	}
	return true
}

// deferWork runs work off the loop for ex's current step and continues the
// chain on the loop with its result (plugin.Ctx.Defer).
func (l *loop) deferWork(ex *exchange, work func() plugin.Result) {
	gen := ex.gen
	l.h.s.startOffLoop()
	go func() {
		defer l.h.s.endOffLoop()
		res := work()
		err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			l.resumeWork(ex, gen, res)
			return nil
		}))
		if err != nil {
			l.opts.Logger.Warn("plugin: could not resume a deferred request", "err", err)
		}
	}()
}

// resumeWork continues ex after a deferred step, unless the request ended
// meanwhile (client gone).
func (l *loop) resumeWork(ex *exchange, gen uint64, res plugin.Result) {
	l.tick()
	if ex.gen != gen || !ex.pending || ex.cl == nil || ex.cl.ex != ex {
		return
	}
	ex.pending = false
	cl := ex.cl
	defer l.recoverClient(cl)
	if cl.closed || cl.c == nil {
		return
	}
	ex.pc.Now = l.now
	if res.Status > 0 {
		l.respond(ex, res)
	} else {
		ex.pc.SetRespHeaderLines(res.Headers) // e.g. limit-count's quota on redis
		if l.runPre(ex) {
			l.proceed(ex)
		}
	}
}

// respond answers ex with a plugin's Result (the head is consumed).
func (l *loop) respond(ex *exchange, res plugin.Result) {
	cl := ex.cl
	ex.pc.Status = res.Status
	keep := ex.keepAlive && ex.reqDone
	reqDone := ex.reqDone
	l.wbuf = l.appendResult(l.wbuf[:0], ex, res, !keep)
	ex.pc.BytesOut = int64(len(l.wbuf))
	l.endExchange(ex)
	l.writeFinal(cl, reqDone, keep)
}

// writeFinal sends l.wbuf, a complete response, to cl, then readies the
// connection for its next request, or closes it: when the request body is
// still unread, after a linger (the write side shut, input dropped for a
// moment, so the client reads the status instead of a reset); after the
// flush when !keep. Every gateway-made answer ends here.
func (l *loop) writeFinal(cl *client, reqDone, keep bool) {
	if cl.closed || cl.c == nil {
		return
	}
	if !reqDone {
		// the linger drains every byte (endExchange could not: the client
		// was paused then); set before the answer goes out, so a client
		// that reads it finds the socket already draining
		l.setLowat(cl, 1)
	}
	cl.write(l.wbuf)
	if cl.closed {
		return
	}
	if !reqDone {
		cl.c.Discard(-1)
		cl.state = csLinger
		cl.deadline = l.now + int64(lingerTime)
		if cl.c.OutboundBuffered() == 0 {
			l.shutdownWrite(cl)
		}
		return
	}
	if !keep {
		l.closeAfterFlush(cl)
		return
	}
	l.nextRequest(cl)
}

// appendResult writes a plugin's early response: its status, the headers
// plugins added, the Result's headers and body (a JSON error_msg with the
// status text when it has no body).
func (l *loop) appendResult(dst []byte, ex *exchange, res plugin.Result, close bool) []byte {
	msg, length := "", len(res.Body)
	if res.Body == nil {
		msg = statusText(res.Status)
		length = errorBodyLen(msg)
	}
	// a 204 or 304 has no body, whatever the plugin gave (a rejected_code
	// of 204), and a 204 no length (RFC 9110 §8.6, §15.4.5); a HEAD gets
	// the length without the body
	bodyless := res.Status == 204 || res.Status == 304
	if res.Status == 204 || bodyless && res.Body == nil {
		length = -1
	}
	dst = l.appendErrorHead(dst, res.Status, length, close)
	if res.Body == nil && !bodyless {
		dst = append(dst, jsonContentType...)
	}
	dst = append(dst, ex.pc.RespHeaders()...)
	dst = append(dst, res.Headers...)
	dst = append(dst, crlf...)
	switch {
	case bodyless || ex.headReq:
		return dst
	case res.Body == nil:
		return appendErrorBody(dst, msg)
	}
	return append(dst, res.Body...)
}

// beforeProxy runs the BeforeProxy phase once the node is chosen.
func (l *loop) beforeProxy(ex *exchange) {
	ch := ex.route.Chain
	if ch == nil || len(ch.BeforeProxy) == 0 {
		return
	}
	c := &ex.pc
	c.Node, c.Addr, c.Now = ex.node, ex.addr, l.now
	for _, p := range ch.BeforeProxy {
		p.BeforeProxy(c)
	}
}

// headerFilter runs the HeaderFilter phase on the upstream response head.
func (l *loop) headerFilter(ex *exchange) {
	c := &ex.pc
	c.UpstreamStatus = ex.resp.Status
	ch := ex.route.Chain
	if ch == nil {
		return
	}
	if ch.Usage {
		r := &ex.resp
		ct, ce := r.Header(hdrContentType), r.Header(hdrContentEncoding)
		ex.scanUsage = plugin.ScanUsage(ct, ce)
		// gzip: what clients that ask for compression (openai-python's
		// httpx does by default) mostly get
		ex.scanGzip = !ex.scanUsage && http1.FoldEq(bytes.TrimSpace(ce), "gzip") && plugin.ScanUsage(ct, nil)
		ex.usage.Reset()
	}
	if len(ch.HeaderFilter) == 0 {
		return
	}
	c.Resp, c.Now = &ex.resp, l.now
	for _, p := range ch.HeaderFilter {
		p.HeaderFilter(c)
	}
	c.Resp = nil
}

// bodyFilter runs the BodyFilter phase on a relayed body piece (b is the
// bytes written to the client: raw chunked framing when passed through).
// The usage scanner reads body data only: chunked data is fed to it by
// scanChunk as the framing is parsed.
func (l *loop) bodyFilter(ex *exchange, b []byte) {
	c := &ex.pc
	c.BytesOut += int64(len(b))
	if c.FirstByte == 0 && len(b) > 0 && c.UpstreamStatus >= 200 && c.UpstreamStatus < 300 {
		c.FirstByte = l.now // time to first token: an error body is no token
	}
	ch := ex.route.Chain
	if ch == nil {
		return
	}
	if ex.respKind != http1.BodyChunked {
		l.scanBody(ex, b)
	}
	for _, p := range ch.BodyFilter {
		p.BodyFilter(c, b)
	}
}

// scanChunk feeds one run of chunk data to the usage scanner.
func (l *loop) scanChunk(ex *exchange, data []byte) { l.scanBody(ex, data) }

// scanBody feeds response body data to the usage scanner, or keeps it for
// scanGzipped when it is gzip-encoded.
func (l *loop) scanBody(ex *exchange, data []byte) {
	switch {
	case len(data) == 0:
	case ex.scanUsage:
		ex.usage.Feed(data)
	case ex.scanGzip && len(ex.gz)+len(data) <= maxGzipScan:
		ex.gz = append(ex.gz, data...)
	case ex.scanGzip: // too big to keep: no usage read from it
		ex.scanGzip, ex.gz = false, ex.gz[:0]
	}
}

// maxGzipScan bounds the gzip-encoded response body kept for the usage
// scan: a chat completion's JSON is a few KiB compressed.
const maxGzipScan = 64 << 10

// scanGzipped decompresses the gzip body kept in ex.gz into the usage
// scanner, once the response ended (a corrupt or cut body gives what it
// held before the damage). On the loop, after the response went out; one
// reader per loop, reused.
func (l *loop) scanGzipped(ex *exchange) {
	if !ex.scanGzip || len(ex.gz) == 0 {
		return
	}
	ex.scanGzip = false
	l.gzSrc.Reset(ex.gz)
	if l.gzr == nil {
		r, err := gzip.NewReader(&l.gzSrc)
		if err != nil {
			return
		}
		l.gzr, l.gzBuf = r, make([]byte, 16<<10)
	} else if l.gzr.Reset(&l.gzSrc) != nil {
		return
	}
	l.gzr.Multistream(false)
	for out := 0; out < maxGunzipScan; {
		n, err := l.gzr.Read(l.gzBuf)
		ex.usage.Feed(l.gzBuf[:n])
		out += n
		if err != nil {
			return
		}
	}
}

// maxGunzipScan bounds what scanGzipped decompresses (64 KiB of gzip can
// hold 64 MiB: the loop must not spend its time on a bomb); a chat
// completion's JSON is far smaller.
const maxGunzipScan = 1 << 20

// logExchange runs the Log phase and writes the access-log line when ex
// ends (every way it can end, once).
func (l *loop) logExchange(ex *exchange) {
	if ex.logged {
		return
	}
	ex.logged = true
	if l.alog != nil {
		l.accessLog(ex)
	}
	if ex.route == nil {
		return
	}
	ch := ex.route.Chain // (a 404's: the global rules', router.Table.NotFound)
	if ch == nil || len(ch.Log) == 0 {
		return
	}
	c := &ex.pc
	c.Now, c.End = l.now, l.now
	c.Node, c.Addr = ex.node, ex.addr
	if ex.upstreamReached() {
		c.UpstreamStart = ex.dialAt
	}
	c.BytesIn = int64(ex.req.HeadLen) + ex.bodyTotal
	c.PromptTokens, c.CompletionTokens = -1, -1
	if ch.Usage && ex.respStarted {
		l.scanGzipped(ex)
		c.PromptTokens, c.CompletionTokens = ex.usage.Prompt(), ex.usage.Completion()
	}
	for _, p := range ch.Log {
		p.Log(c)
	}
}

var (
	hdrUserAgent       = []byte("User-Agent")
	hdrContentType     = []byte("Content-Type")
	hdrContentEncoding = []byte("Content-Encoding")
)

// accessLog appends ex's line to the loop's access-log buffer (SPEC §8).
func (l *loop) accessLog(ex *exchange) {
	e := &l.entry
	*e = accesslog.Entry{
		Time:        l.now,
		ClientAddr:  netip.AddrPortFrom(ex.rreq.RemoteAddr, ex.rport),
		Method:      ex.req.Method,
		Host:        ex.req.Host,
		Path:        ex.req.Target,
		Status:      ex.pc.Status,
		BytesSent:   ex.pc.BytesOut,
		RequestTime: l.now - ex.start,
		Consumer:    ex.pc.Consumer,
		UserAgent:   ex.req.Header(hdrUserAgent),
	}
	if ex.route != nil {
		e.RouteID = ex.route.ID
	}
	if a := ex.pc.Arm; a != nil {
		e.Arm = a.Label
	}
	if ex.tries > 0 {
		e.UpstreamAddr = ex.addr
		e.UpstreamURI = sentTarget(ex.out)
	}
	// the upstream's status as plugins saw it (a failed attempt's 502 or
	// 504, as nginx logs it), or one parsed before they could
	e.UpstreamStatus = cmp.Or(ex.pc.UpstreamStatus, ex.resp.Status)
	if ex.upstreamReached() {
		e.UpstreamResponseTime = l.now - ex.dialAt
	}
	l.alog.Append(e)
}

// sentTarget returns the request target of the upstream head in out
// ("METHOD target HTTP/1.1"), or nil.
func sentTarget(out []byte) []byte {
	i := bytes.IndexByte(out, ' ')
	if i < 0 {
		return nil
	}
	rest := out[i+1:]
	j := bytes.IndexByte(rest, ' ')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// upstreamReached reports whether an upstream took ex's request (all of
// it, or answered before it had it all: a 413 to an upload), so that its
// time counts from the attempt's start (dialAt).
func (ex *exchange) upstreamReached() bool {
	return ex.dialAt > 0 && (ex.sent > 0 || ex.resp.Status > 0)
}
