package router

import (
	"net/netip"
	"strings"
	"unsafe"

	"github.com/sluice-gw/sluice/plugin"
)

// varKind names where a variable's value comes from.
type varKind uint8

const (
	// varNone is a variable sluice does not provide: it evaluates as nil
	// (missing), as an unset nginx variable does in APISIX. Any name is
	// accepted, so configs written for APISIX's full ngx.var set load.
	varNone varKind = iota
	varURI
	varRequestURI
	varArgs
	varHost
	varRemoteAddr
	varMethod
	varScheme
	varServerProtocol
	varHeader // http_NAME
	varArg    // arg_NAME
	varCookie // cookie_NAME
	// varPostArg is post_arg.NAME / post_arg_NAME (APISIX: a field of a
	// JSON or form body). It is nil unless Request.Body holds the body: the
	// engine waits for bodies up to 64 KiB when a plugin's vars read one.
	varPostArg
)

// varRef is a compiled variable reference.
type varRef struct {
	kind varKind
	name []byte // header, argument or cookie name
}

// compileVarRef maps an nginx/APISIX variable name to its source.
func compileVarRef(name string) varRef {
	switch name {
	case "uri", "document_uri":
		return varRef{kind: varURI}
	case "request_uri":
		return varRef{kind: varRequestURI}
	case "args", "query_string":
		return varRef{kind: varArgs}
	case "host":
		return varRef{kind: varHost}
	case "remote_addr":
		return varRef{kind: varRemoteAddr}
	case "request_method":
		return varRef{kind: varMethod}
	case "scheme":
		return varRef{kind: varScheme}
	case "server_protocol":
		return varRef{kind: varServerProtocol}
	case "content_type":
		return varRef{kind: varHeader, name: []byte("content_type")}
	case "content_length":
		return varRef{kind: varHeader, name: []byte("content_length")}
	}
	switch {
	case strings.HasPrefix(name, "http_") && len(name) > len("http_"):
		// nginx $http_x_canary; APISIX also accepts "http_x-api-appkey".
		// Hyphens are folded to '_' here; HeaderVar matches '_' to '-'.
		h := []byte(strings.ToLower(name[len("http_"):]))
		for i, c := range h {
			if c == '-' {
				h[i] = '_'
			}
		}
		return varRef{kind: varHeader, name: h}
	case strings.HasPrefix(name, "arg_") && len(name) > len("arg_"):
		return varRef{kind: varArg, name: []byte(name[len("arg_"):])}
	case strings.HasPrefix(name, "cookie_") && len(name) > len("cookie_"):
		return varRef{kind: varCookie, name: []byte(name[len("cookie_"):])}
	case strings.HasPrefix(name, "post_arg.") || strings.HasPrefix(name, "post_arg_"):
		return varRef{kind: varPostArg, name: []byte(name[len("post_arg."):])}
	}
	return varRef{kind: varNone}
}

var (
	schemeHTTP = []byte("http")
	proto10    = []byte("HTTP/1.0")
	proto11    = []byte("HTTP/1.1")
)

// maxHost bounds the lowercased host kept on the stack; longer hosts (DNS
// names are at most 253 bytes) match no host route and read as written.
const maxHost = 256

// evalCtx is the state of one Match or Eval call: the request and which
// derived values (lowercased host, remote_addr text) are computed yet. It
// lives on the caller's stack; the derived bytes live in the Request's
// scratch arrays, so slices handed to regexp (which lets its input escape)
// do not drag the context to the heap.
type evalCtx struct {
	r       *Request
	hostN   int // -1: not derived yet; -2: longer than maxHost, use hostRaw
	addrN   int // -1: not derived yet
	hostRaw []byte
}

func (c *evalCtx) init(r *Request) {
	c.r = r
	c.hostN = -1
	c.addrN = -1
}

// host returns the request host lowercased and without its port (nginx
// $host); nil when the request has none.
func (c *evalCtx) host() []byte {
	r := c.r
	if c.hostN == -1 {
		var h []byte
		if r.Request != nil {
			h = plugin.StripPort(r.Host)
		}
		if len(h) > maxHost {
			c.hostRaw = h
			c.hostN = -2
		} else {
			for i, ch := range h {
				if 'A' <= ch && ch <= 'Z' {
					ch += 'a' - 'A'
				}
				r.hostBuf[i] = ch
			}
			c.hostN = len(h)
		}
	}
	if c.hostN == -2 {
		return c.hostRaw
	}
	if c.hostN == 0 {
		return nil
	}
	return r.hostBuf[:c.hostN]
}

// remoteAddr returns r.RemoteAddr as text (nginx $remote_addr), nil when
// unknown.
func (c *evalCtx) remoteAddr() []byte {
	r := c.r
	if c.addrN == -1 {
		c.addrN = 0
		if a := r.RemoteAddr; a.IsValid() {
			c.addrN = len(a.Unmap().AppendTo(r.addrBuf[:0]))
			if c.addrN > len(r.addrBuf) { // a long zone: AppendTo reallocated
				c.addrN = 0
			}
		}
	}
	if c.addrN == 0 {
		return nil
	}
	return r.addrBuf[:c.addrN]
}

// get returns variable v's value, or nil when it is missing. The result is
// borrowed from the request or from c.
func (c *evalCtx) get(v *varRef) []byte {
	switch v.kind {
	case varHost:
		if c.r.Request == nil {
			return nil
		}
		return c.host()
	case varRemoteAddr:
		return c.remoteAddr()
	}
	return requestVar(c.r, v)
}

// requestVar returns the value of a variable that borrows only from the
// request (every kind but host and remote_addr), or nil.
func requestVar(r *Request, v *varRef) []byte {
	if r.Request == nil {
		return nil
	}
	switch v.kind {
	case varURI:
		return r.Path
	case varRequestURI:
		return r.Target
	case varArgs:
		return r.Query
	case varMethod:
		return r.Method
	case varScheme:
		return schemeHTTP // the HTTPS listener comes in a later release
	case varServerProtocol:
		if r.Major == 1 && r.Minor == 0 {
			return proto10
		}
		return proto11
	case varHeader:
		return r.HeaderVar(v.name)
	case varArg:
		return r.Arg(v.name)
	case varCookie:
		return r.Cookie(v.name)
	case varPostArg:
		return postArg(r.Body, v.name)
	}
	return nil
}

// addrOf returns v's value as an IP address for ipmatch: remote_addr is
// taken as is, any other variable is parsed. It reads no buffer of c, so
// c stays on its caller's stack.
func (c *evalCtx) addrOf(v *varRef) (netip.Addr, bool) {
	var b []byte
	switch v.kind {
	case varRemoteAddr:
		a := c.r.RemoteAddr
		return a.Unmap(), a.IsValid()
	case varHost:
		if c.r.Request != nil {
			b = plugin.StripPort(c.r.Host)
			if len(b) > 2 && b[0] == '[' {
				b = b[1 : len(b)-1]
			}
		}
	default:
		b = requestVar(c.r, v)
	}
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	return parseIP(b)
}

// parseIP parses an IPv4 or IPv6 address without allocating for IPv4 and
// for valid IPv6 (netip.ParseAddr allocates only its error).
func parseIP(b []byte) (netip.Addr, bool) {
	var v4 [4]byte
	n, part, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n == 4 {
				n = -1
				break
			}
			v4[n] = byte(part)
			n++
			part, digits = 0, 0
			continue
		}
		ch := b[i]
		if ch < '0' || ch > '9' || (digits == 1 && part == 0) {
			n = -1
			break
		}
		part = part*10 + int(ch-'0')
		digits++
		if part > 255 {
			n = -1
			break
		}
	}
	if n == 4 {
		return netip.AddrFrom4(v4), true
	}
	for _, ch := range b {
		if ch == ':' {
			a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
			if err != nil {
				return netip.Addr{}, false
			}
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}
