package engine

import (
	"strconv"
	"syscall"
	"unsafe"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

var (
	hdrUpgrade      = []byte("Upgrade")
	crlf            = []byte("\r\n")
	httpVersion11   = []byte(" HTTP/1.1\r\n")
	connClose       = []byte("Connection: close\r\n")
	connKeepAlive   = []byte("Connection: keep-alive\r\n")
	connUpgrade     = []byte("Connection: upgrade\r\n")
	jsonContentType = []byte("Content-Type: application/json\r\n")
)

// unsafeBytes views s as bytes without copying; the result must not be
// written to.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// hasToken reports whether the comma-separated list v contains tok (ASCII
// case-insensitive; tok is lowercase).
func hasToken(v, tok []byte) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		t := trimOWS(v[:i])
		if http1.FoldEq(t, unsafe.String(unsafe.SliceData(tok), len(tok))) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isHopByHop reports whether a header must not be forwarded (RFC 9110
// §7.6.1) — connection-specific fields and those the gateway sets itself.
// The message's Connection fields (conn, the last of fields of them in hs)
// name more. (Framing fields are never forwarded: sluice writes its own,
// so a Connection field cannot strip them.)
func isHopByHop(name, conn []byte, hs []http1.Header, fields int) bool {
	switch len(name) {
	case 2:
		if http1.FoldEq(name, "te") {
			return true
		}
	case 7:
		if http1.FoldEq(name, "upgrade") {
			return true
		}
	case 10:
		if http1.FoldEq(name, "connection") || http1.FoldEq(name, "keep-alive") {
			return true
		}
	case 16:
		if http1.FoldEq(name, "proxy-connection") {
			return true
		}
	}
	if fields <= 1 {
		return listHas(conn, name)
	}
	for i := range hs { // several Connection fields: each names some
		if h := &hs[i]; len(h.Name) == 10 && http1.FoldEq(h.Name, "connection") && listHas(h.Value, name) {
			return true
		}
	}
	return false
}

// listHas reports whether the comma-separated list v has the token t
// (ASCII case-insensitive).
func listHas(v, t []byte) bool {
	for len(v) > 0 && len(t) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if e := trimOWS(v[:i]); len(e) == len(t) && http1.EqualFold(e, t) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// appendFraming writes the Content-Length or Transfer-Encoding a message
// is sent with, from how it was parsed: the peer's own framing fields are
// never forwarded (a Connection field naming them, or several
// Content-Length fields, must not change what the next hop reads).
func appendFraming(dst []byte, chunked bool, length int64) []byte {
	switch {
	case chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case length >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, length, 10)
		dst = append(dst, crlf...)
	}
	return dst
}

// appendUpstreamHead writes the request head sent upstream: the request
// line with the (possibly rewritten) path, Host per pass_host, the client's
// headers without hop-by-hop ones, and the X-Forwarded-* / X-Real-IP set.
func (l *loop) appendUpstreamHead(dst []byte, ex *exchange) []byte {
	r := &ex.req
	u := ex.ups
	pc := &ex.pc
	if pc.Method != nil {
		dst = append(dst, pc.Method...)
	} else {
		dst = append(dst, r.Method...)
	}
	dst = append(dst, ' ')
	if pc.URI != nil {
		dst = append(dst, pc.URI...)
	} else {
		dst = append(dst, r.Path...)
	}
	if q := pc.Query; q != nil {
		if len(q) > 0 {
			dst = append(dst, '?')
			dst = append(dst, q...)
		}
	} else if r.Query != nil {
		dst = append(dst, '?')
		dst = append(dst, r.Query...)
	}
	dst = append(dst, httpVersion11...)

	dst = append(dst, "Host: "...)
	switch { // APISIX: the upstream's pass_host node/rewrite win over proxy-rewrite's host
	case u.PassHost == balancer.PassNode:
		dst = append(dst, u.Nodes[ex.node].HostHeader...)
	case u.PassHost == balancer.PassRewrite:
		dst = append(dst, u.UpstreamHost...)
	case pc.Host != nil:
		dst = append(dst, pc.Host...)
	case len(r.Host) > 0:
		dst = append(dst, r.Host...)
	default:
		dst = append(dst, u.Nodes[ex.node].HostHeader...)
	}
	dst = append(dst, crlf...)

	xff := false // the client sent X-Forwarded-For fields (appended to below)
	ops := pc.HeaderOps
	for i := range r.Headers {
		h := &r.Headers[i]
		n := h.Name
		if len(ops) > 0 && replacedHeader(ops, n) {
			continue
		}
		switch len(n) {
		case 4:
			if http1.FoldEq(n, "host") {
				continue
			}
		case 6:
			if http1.FoldEq(n, "expect") {
				continue
			}
		case 9:
			if http1.FoldEq(n, "x-real-ip") {
				continue
			}
		case 14:
			if http1.FoldEq(n, "content-length") {
				continue // appendFraming
			}
		case 15:
			if http1.FoldEq(n, "x-forwarded-for") {
				xff = true
				continue
			}
		case 16:
			if http1.FoldEq(n, "x-forwarded-host") || http1.FoldEq(n, "x-forwarded-port") {
				continue
			}
		case 17:
			if http1.FoldEq(n, "x-forwarded-proto") || http1.FoldEq(n, "transfer-encoding") {
				continue // (transfer-encoding: appendFraming)
			}
		}
		if isHopByHop(n, r.Connection, r.Headers, r.ConnFields) {
			continue
		}
		dst = appendHeader(dst, h)
	}
	dst = appendFraming(dst, r.Body == http1.BodyChunked, r.ContentLength)
	for i := range ops {
		if op := &ops[i]; op.Kind != plugin.HeaderRemove && !shadowed(ops[i+1:], op) {
			dst = append(dst, op.Name...)
			dst = append(dst, ": "...)
			dst = append(dst, op.Value...)
			dst = append(dst, crlf...)
		}
	}
	if ex.upgrade {
		// only the protocol the route allows, whatever else the client
		// listed (h2c would turn the tunnel into an unrouted HTTP/2
		// connection)
		dst = append(dst, "Upgrade: websocket\r\n"...)
		dst = append(dst, connUpgrade...)
	}
	ip := ex.rreq.RemoteAddr.Unmap()
	dst = append(dst, "X-Forwarded-For: "...)
	if xff {
		dst = appendXFF(dst, r.Headers)
	}
	dst = ip.AppendTo(dst)
	dst = append(dst, "\r\nX-Real-IP: "...)
	dst = ip.AppendTo(dst)
	dst = append(dst, "\r\nX-Forwarded-Proto: http"...)
	// APISIX sends nginx's $host (plugin.AppendHost): lowercased, without
	// the port. HTTP/1.0 requests may have no Host.
	if h := plugin.StripPort(r.Host); len(h) > 0 {
		dst = append(dst, "\r\nX-Forwarded-Host: "...)
		dst = plugin.AppendLower(dst, h)
	}
	dst = append(dst, "\r\nX-Forwarded-Port: "...)
	dst = strconv.AppendUint(dst, uint64(ex.cl.port), 10)
	dst = append(dst, "\r\n\r\n"...)
	return dst
}

// appendXFF appends the values of every X-Forwarded-For field in hs, in
// order, each followed by ", " (empty ones skipped): nginx's
// $proxy_add_x_forwarded_for, which APISIX sends, joins them all before
// the client address. It allocates only to grow dst.
func appendXFF(dst []byte, hs []http1.Header) []byte {
	for i := range hs {
		if h := &hs[i]; len(h.Value) > 0 && len(h.Name) == 15 && http1.FoldEq(h.Name, "x-forwarded-for") {
			dst = append(dst, h.Value...)
			dst = append(dst, ", "...)
		}
	}
	return dst
}

// replacedHeader reports whether a plugin sets or removes the client's
// header name (an add keeps it).
func replacedHeader(ops []plugin.HeaderOp, name []byte) bool {
	for i := range ops {
		if ops[i].Kind != plugin.HeaderAdd && http1.EqualFold(ops[i].Name, name) {
			return true
		}
	}
	return false
}

// shadowed reports whether a later op sets or removes op's header, so op's
// value must not be sent (a later set replaces an earlier add or set).
func shadowed(later []plugin.HeaderOp, op *plugin.HeaderOp) bool {
	for i := range later {
		if later[i].Kind != plugin.HeaderAdd && http1.EqualFold(later[i].Name, op.Name) {
			return true
		}
	}
	return false
}

func appendHeader(dst []byte, h *http1.Header) []byte {
	dst = append(dst, h.Name...)
	dst = append(dst, ": "...)
	dst = append(dst, h.Value...)
	return append(dst, crlf...)
}

// appendResponseHead writes the head sent to the client: HTTP/1.1 status
// line, the upstream's headers without hop-by-hop ones (and without its
// Server and Date), sluice's Server and Date, and Connection when the
// client connection closes afterwards or needs keep-alive said (HTTP/1.0).
func (l *loop) appendResponseHead(dst []byte, ex *exchange) []byte {
	r := &ex.resp
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, ' ')
	if len(r.Reason) > 0 {
		dst = append(dst, r.Reason...)
	} else {
		dst = append(dst, statusText(r.Status)...)
	}
	dst = append(dst, crlf...)
	tunnel := r.Status == 101
	// RFC 9110 §8.6, RFC 9112 §6.1: no Content-Length or
	// Transfer-Encoding on a 1xx or 204, whatever the upstream sent (nginx
	// clears them too); such a response never has a body.
	noFraming := r.Status < 200 || r.Status == 204
	for i := range r.Headers {
		h := &r.Headers[i]
		n := h.Name
		switch len(n) {
		case 4:
			if http1.FoldEq(n, "date") {
				continue
			}
		case 6:
			if http1.FoldEq(n, "server") {
				continue
			}
		case 7:
			if tunnel && http1.FoldEq(n, "upgrade") {
				dst = appendHeader(dst, h)
				continue
			}
		case 14:
			if http1.FoldEq(n, "content-length") {
				continue // below
			}
		case 17:
			if http1.FoldEq(n, "transfer-encoding") {
				if !ex.decode && !noFraming {
					dst = appendHeader(dst, h) // (chunked, if listed, is the last coding: ParseResponse)
				}
				continue
			}
		}
		if isHopByHop(n, r.Connection, r.Headers, r.ConnFields) {
			continue
		}
		dst = appendHeader(dst, h)
	}
	if !r.Chunked && !noFraming { // the length the body is relayed with (or a HEAD's, a 304's)
		dst = appendFraming(dst, false, r.ContentLength)
	}
	dst = append(dst, ex.pc.RespHeaders()...)
	dst = append(dst, l.server...)
	dst = append(dst, *dateHeader.Load()...)
	switch {
	case tunnel:
		dst = append(dst, connUpgrade...)
	case ex.closeAfter:
		dst = append(dst, connClose...)
	case ex.decode:
		dst = append(dst, connKeepAlive...)
	}
	return append(dst, crlf...)
}

// appendError writes a complete gateway response with a JSON error_msg;
// for a HEAD request (head) without the body, its length still given.
func (l *loop) appendError(dst []byte, status int, msg string, close, head bool) []byte {
	dst = l.appendErrorHead(dst, status, errorBodyLen(msg), close)
	dst = append(dst, jsonContentType...)
	dst = append(dst, crlf...)
	if head {
		return dst
	}
	return appendErrorBody(dst, msg)
}

// appendErrorHead writes a gateway response's status line, Server, Date,
// Content-Length (none when length < 0) and Connection, without the final
// CRLF.
func (l *loop) appendErrorHead(dst []byte, status, length int, close bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, crlf...)
	dst = append(dst, l.server...)
	dst = append(dst, *dateHeader.Load()...)
	if length >= 0 {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(length), 10)
		dst = append(dst, crlf...)
	}
	if close {
		dst = append(dst, connClose...)
	}
	return dst
}

// errorBodyLen is the length of appendErrorBody's output for msg.
func errorBodyLen(msg string) int { return jsonStringLen(msg) + len(`{"error_msg":""}`) + 1 }

// appendErrorBody writes {"error_msg":"<msg>"} and a newline.
func appendErrorBody(dst []byte, msg string) []byte {
	dst = append(dst, `{"error_msg":"`...)
	dst = appendJSONString(dst, msg)
	return append(dst, "\"}\n"...)
}

// rejectAndLinger answers status and closes cl gracefully: the response is
// flushed, the write side shut down, and input read and dropped for a
// moment so the client reads the status instead of a reset.
func (l *loop) rejectAndLinger(cl *client, status int, msg string) {
	l.wbuf = l.appendError(l.wbuf[:0], status, msg, true, false)
	l.writeFinal(cl, false, false)
}

// lingerTime bounds how long a rejected connection is kept to let the
// client read the response (nginx lingering_timeout is 5 s; shorter here).
const lingerTime = 2e9

func (l *loop) shutdownWrite(cl *client) {
	cl.shutWR = true
	_ = syscall.Shutdown(cl.c.Fd(), syscall.SHUT_WR)
}

// closeAfterFlush closes cl once its outbound buffer drained (gnet's close
// would drop what the socket did not take).
func (l *loop) closeAfterFlush(cl *client) {
	if cl.closed || cl.c == nil {
		return
	}
	if cl.c.OutboundBuffered() == 0 {
		cl.state = csClosing
		cl.c.Close()
		return
	}
	cl.state = csClosing
	cl.deadline = l.now + int64(l.opts.KeepaliveTimeout)
}

func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Request Entity Too Large"
	case 414:
		return "Request-URI Too Large"
	case 417:
		return "Expectation Failed"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Temporarily Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Unknown"
}

// appendJSONString appends s escaped for the inside of a JSON string
// (error texts may quote upstream errors).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// jsonStringLen is len(appendJSONString(nil, s)).
func jsonStringLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}
