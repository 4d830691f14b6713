package plugin

import (
	"net/netip"
	"strings"

	"github.com/sluice-gw/sluice/engine/http1"
)

// VarKind names where an nginx/APISIX variable's value comes from. Route
// vars, chash keys, limit-count keys and proxy-rewrite templates all read
// variables through Var, so a name means the same everywhere.
type VarKind uint8

const (
	// VarNone is a variable sluice does not provide. Route vars evaluate
	// it as nil (an unset nginx variable in APISIX); plugins that build
	// a key or a URI from it refuse it at configuration time.
	VarNone           VarKind = iota
	VarURI                    // uri, document_uri: the request path, percent-decoded once (APISIX's $uri)
	VarRequestURI             // request_uri: the request target as sent
	VarArgs                   // args, query_string: the raw query
	VarIsArgs                 // is_args: "?" when the request has a query, else ""
	VarHost                   // host: Host without its port, lowercased
	VarRemoteAddr             // remote_addr: the client address
	VarMethod                 // request_method
	VarScheme                 // scheme
	VarServerProtocol         // server_protocol: HTTP/1.0 or HTTP/1.1
	VarHeader                 // http_NAME (and content_type, content_length)
	VarArg                    // arg_NAME: a raw query argument, name ASCII case-insensitive
	VarCookie                 // cookie_NAME
	VarPostArg                // post_arg.NAME: a field of the request body (the router's)
	VarConsumer               // consumer_name (APISIX ctx var)
	VarRouteID                // route_id
	VarServiceID              // service_id
)

// Var is a compiled variable reference.
type Var struct {
	Kind VarKind
	Name []byte // header (lowercase, '-' as '_'), argument, cookie or body field name
}

// ParseVar maps a variable name (without its '$') to its source; a name
// sluice does not know is VarNone.
func ParseVar(name string) Var {
	switch name {
	case "uri", "document_uri":
		return Var{Kind: VarURI}
	case "request_uri":
		return Var{Kind: VarRequestURI}
	case "args", "query_string":
		return Var{Kind: VarArgs}
	case "is_args":
		return Var{Kind: VarIsArgs}
	case "host":
		return Var{Kind: VarHost}
	case "remote_addr":
		return Var{Kind: VarRemoteAddr}
	case "request_method":
		return Var{Kind: VarMethod}
	case "scheme":
		return Var{Kind: VarScheme}
	case "server_protocol":
		return Var{Kind: VarServerProtocol}
	case "content_type", "content_length":
		return Var{Kind: VarHeader, Name: []byte(name)}
	case "consumer_name":
		return Var{Kind: VarConsumer}
	case "route_id":
		return Var{Kind: VarRouteID}
	case "service_id":
		return Var{Kind: VarServiceID}
	}
	if n, ok := strings.CutPrefix(name, "http_"); ok && n != "" {
		// nginx $http_x_canary; APISIX also accepts "http_x-api-appkey".
		h := []byte(strings.ToLower(n))
		for i, c := range h {
			if c == '-' {
				h[i] = '_'
			}
		}
		return Var{Kind: VarHeader, Name: h}
	}
	if n, ok := strings.CutPrefix(name, "arg_"); ok && n != "" {
		return Var{Kind: VarArg, Name: []byte(n)}
	}
	if n, ok := strings.CutPrefix(name, "cookie_"); ok && n != "" {
		return Var{Kind: VarCookie, Name: []byte(n)}
	}
	if strings.HasPrefix(name, "post_arg.") || strings.HasPrefix(name, "post_arg_") {
		if n := name[len("post_arg."):]; n != "" {
			return Var{Kind: VarPostArg, Name: []byte(n)}
		}
	}
	return Var{Kind: VarNone}
}

var (
	schemeHTTP = []byte("http")
	proto10    = []byte("HTTP/1.0")
	proto11    = []byte("HTTP/1.1")
	qmark      = []byte("?")
	emptyValue = []byte{}
)

// RequestValue returns the value of a variable the request itself holds,
// borrowed from r; nil when it is missing or v is of a kind r does not
// hold as is (host, remote_addr, post_arg and the ctx vars: see Append).
func (v *Var) RequestValue(r *http1.Request) []byte {
	if r == nil {
		return nil
	}
	switch v.Kind {
	case VarURI:
		if r.MatchPath != nil {
			return r.MatchPath // decoded, as routes matched it (APISIX's $uri)
		}
		return r.Path
	case VarRequestURI:
		return r.Target
	case VarArgs:
		return r.Query
	case VarIsArgs:
		if len(r.Query) > 0 {
			return qmark
		}
		return emptyValue
	case VarMethod:
		return r.Method
	case VarScheme:
		return schemeHTTP // the HTTPS listener comes in a later release
	case VarServerProtocol:
		if r.Major == 1 && r.Minor == 0 {
			return proto10
		}
		return proto11
	case VarHeader:
		return r.HeaderVar(v.Name)
	case VarArg:
		return r.ArgFold(v.Name)
	case VarCookie:
		return r.Cookie(v.Name)
	}
	return nil
}

// Append appends v's value for request r from client address remote to
// dst; present is false when the variable is missing. host and
// remote_addr are written out (lowercased host, the address as text);
// post_arg and the ctx vars (consumer_name, route_id, service_id) are the
// caller's to read and are missing here. It allocates only to grow dst.
func (v *Var) Append(dst []byte, r *http1.Request, remote netip.Addr) (_ []byte, present bool) {
	switch v.Kind {
	case VarHost:
		if r == nil || len(r.Host) == 0 {
			return dst, false
		}
		return AppendHost(dst, r.Host), true
	case VarRemoteAddr:
		if !remote.IsValid() {
			return dst, false
		}
		return remote.Unmap().AppendTo(dst), true
	}
	val := v.RequestValue(r)
	return append(dst, val...), val != nil
}

// AppendHost appends nginx's $host for a Host value to dst: without its
// port, ASCII lowercased.
func AppendHost(dst, host []byte) []byte { return AppendLower(dst, StripPort(host)) }

// AppendLower appends b to dst with ASCII letters lowercased.
func AppendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// AppendCtx is Append for a plugin's request c, with the ctx variables a
// plugin context knows: consumer_name (the consumer an auth plugin
// found) and route_id. service_id, fixed per route, is the caller's.
func (v *Var) AppendCtx(dst []byte, c *Ctx) (_ []byte, present bool) {
	switch v.Kind {
	case VarConsumer:
		return append(dst, c.Consumer...), c.Consumer != ""
	case VarRouteID:
		return append(dst, c.RouteID...), c.RouteID != ""
	}
	return v.Append(dst, c.Req, c.RemoteAddr)
}
