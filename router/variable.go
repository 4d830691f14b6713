package router

import (
	"net/netip"
	"unsafe"

	"github.com/sluice-gw/sluice/plugin"
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
			c.hostN = len(plugin.AppendLower(r.hostBuf[:0], h))
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
func (c *evalCtx) get(v *plugin.Var) []byte {
	switch v.Kind {
	case plugin.VarHost:
		if c.r.Request == nil {
			return nil
		}
		return c.host()
	case plugin.VarRemoteAddr:
		return c.remoteAddr()
	case plugin.VarPostArg:
		return postArg(c.r.Body, v.Name)
	case plugin.VarConsumer:
		return strBytes(c.r.Consumer)
	case plugin.VarRouteID:
		return strBytes(c.r.RouteID)
	}
	return v.RequestValue(c.r.Request)
}

// addrOf returns v's value as an IP address for ipmatch: remote_addr is
// taken as is, any other variable is parsed. It reads no buffer of c, so
// c stays on its caller's stack.
func (c *evalCtx) addrOf(v *plugin.Var) (netip.Addr, bool) {
	var b []byte
	switch v.Kind {
	case plugin.VarRemoteAddr:
		a := c.r.RemoteAddr
		return a.Unmap(), a.IsValid()
	case plugin.VarHost:
		if c.r.Request != nil {
			b = plugin.StripPort(c.r.Host)
			if len(b) > 2 && b[0] == '[' {
				b = b[1 : len(b)-1]
			}
		}
	case plugin.VarPostArg:
		b = postArg(c.r.Body, v.Name)
	default:
		b = v.RequestValue(c.r.Request)
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

// strBytes returns s's bytes without copying (read only), or nil for "".
func strBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
