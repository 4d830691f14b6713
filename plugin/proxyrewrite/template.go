package proxyrewrite

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// This file parses and expands the templates of uri, regex_uri and header
// values: APISIX's core.utils.resolve_var (`$name`, `${name}`,
// `${name ?? default}`, `\$` is not a variable) and, in header values,
// resolve_var_with_captures (`$1`, `${1}`: regex_uri's captures).

// Variable kinds a template part can hold.
const (
	vLit        uint8 = iota // literal text
	vURI                     // $uri: the request path (raw, as the client sent it)
	vRequestURI              // $request_uri: the request target as sent
	vArgs                    // $args, $query_string: the raw query
	vIsArgs                  // $is_args: "?" when the request has a query
	vHost                    // $host: Host without the port, lowercase
	vMethod                  // $request_method
	vRemoteAddr              // $remote_addr
	vArg                     // $arg_NAME: a raw query argument (name ASCII case-insensitive, as nginx)
	vHTTP                    // $http_NAME: a request header ('_' matches '-')
	vCookie                  // $cookie_NAME
	vCapture                 // $N: regex_uri capture N (header values only)
)

// supportedVars is shown in errors.
const supportedVars = "$uri, $request_uri, $args, $query_string, $is_args, $host, $request_method, $remote_addr, $arg_NAME, $http_NAME, $cookie_NAME"

// part is one piece of a compiled template.
type part struct {
	kind   uint8
	lit    []byte // vLit: the text
	name   []byte // vArg, vHTTP, vCookie: the name after the prefix
	group  int    // vCapture: the capture group
	def    []byte // ${name ?? def}: used when the variable is absent
	hasDef bool
}

// tmpl is a compiled template.
type tmpl []part

// literal reports whether t has no variables.
func (t tmpl) literal() bool {
	for i := range t {
		if t[i].kind != vLit {
			return false
		}
	}
	return true
}

var (
	// APISIX resolve_var: (?<!\\)\$(\{\s*([^}]+?)\s*\}|([\w\.]+))
	varName   = regexp.MustCompile(`^[\w.]+`)
	braced    = regexp.MustCompile(`^\{\s*([^}]+?)\s*\}`)
	defaultOp = regexp.MustCompile(`\s*\?\?\s*`)
	// APISIX resolve_var_with_captures: (?<!\\)\$\{?(\d+)\}?
	captureRef = regexp.MustCompile(`^\{?(\d+)\}?`)
)

// parseTemplate compiles s. captures allows `$N` (header values); without
// it a numeric variable is an error. Unknown variables are errors: sluice
// has no general nginx variable table.
func parseTemplate(s string, captures bool) (tmpl, error) {
	var t tmpl
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t = append(t, part{kind: vLit, lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch != '$' || (i > 0 && s[i-1] == '\\') {
			lit = append(lit, ch)
			continue
		}
		rest := s[i+1:]
		if captures {
			if m := captureRef.FindStringSubmatch(rest); m != nil {
				n, err := strconv.Atoi(m[1])
				if err != nil || n > 99 {
					return nil, fmt.Errorf("capture $%s out of range", m[1])
				}
				flush()
				t = append(t, part{kind: vCapture, group: n})
				i += len(m[0])
				continue
			}
		}
		var name, def string
		var hasDef bool
		if m := braced.FindStringSubmatch(rest); m != nil {
			segs := defaultOp.Split(m[1], -1)
			name = segs[0]
			if len(segs) > 1 {
				def, hasDef = segs[1], true
			}
			i += len(m[0])
		} else if m := varName.FindString(rest); m != "" {
			name = m
			i += len(m)
		} else {
			lit = append(lit, ch) // a lone '$'
			continue
		}
		p, err := variable(name)
		if err != nil {
			return nil, err
		}
		p.def, p.hasDef = []byte(def), hasDef
		flush()
		t = append(t, p)
	}
	flush()
	return t, nil
}

// variable maps an nginx variable name to a part.
func variable(name string) (part, error) {
	switch name {
	case "uri", "document_uri":
		return part{kind: vURI}, nil
	case "request_uri":
		return part{kind: vRequestURI}, nil
	case "args", "query_string":
		return part{kind: vArgs}, nil
	case "is_args":
		return part{kind: vIsArgs}, nil
	case "host":
		return part{kind: vHost}, nil
	case "request_method":
		return part{kind: vMethod}, nil
	case "remote_addr":
		return part{kind: vRemoteAddr}, nil
	}
	for _, p := range []struct {
		prefix string
		kind   uint8
	}{{"arg_", vArg}, {"http_", vHTTP}, {"cookie_", vCookie}} {
		if n, ok := strings.CutPrefix(name, p.prefix); ok && n != "" && !strings.Contains(n, ".") {
			return part{kind: p.kind, name: []byte(n)}, nil
		}
	}
	if _, err := strconv.Atoi(name); err == nil {
		return part{}, fmt.Errorf("variable $%s is not supported by sluice here (regex_uri captures are available in header values)", name)
	}
	return part{}, fmt.Errorf("variable $%s is not supported by sluice (supported: %s; write ${name} when text follows a variable)", name, supportedVars)
}

// value returns the variable p names for c's request; nil when absent
// (the default then applies). locs are regex_uri's submatch indexes into
// path (nil: no match). Borrowed slices point into the request or dst;
// the returned dst is dst with any bytes the value needed appended.
func (p *part) value(c *plugin.Ctx, path []byte, locs []int, dst []byte) ([]byte, []byte) {
	r := c.Req
	var v []byte
	switch p.kind {
	case vURI:
		v = path
	case vRequestURI:
		v = r.Target
	case vArgs:
		v = r.Query
	case vIsArgs:
		if len(r.Query) > 0 {
			v = qmark
		} else {
			v = empty
		}
	case vHost:
		h := plugin.StripPort(r.Host)
		if h == nil {
			break
		}
		start := len(dst)
		for _, b := range h {
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			dst = append(dst, b)
		}
		v = dst[start:]
	case vMethod:
		v = r.Method
	case vRemoteAddr:
		if c.RemoteAddr.IsValid() {
			start := len(dst)
			dst = c.RemoteAddr.Unmap().AppendTo(dst)
			v = dst[start:]
		}
	case vArg:
		v = argFold(r.Query, p.name)
	case vHTTP:
		v = r.HeaderVar(p.name)
	case vCookie:
		v = r.Cookie(p.name)
	case vCapture:
		if locs == nil {
			break
		}
		if 2*p.group+1 < len(locs) && locs[2*p.group] >= 0 {
			v = path[locs[2*p.group]:locs[2*p.group+1]]
		} else {
			v = empty // a group that did not take part: ""
		}
		return v, dst
	}
	if v == nil && p.hasDef {
		v = p.def
	}
	return v, dst
}

var (
	qmark = []byte("?")
	empty = []byte{}
)

// argFold returns the raw value of the first argument of q named name,
// ASCII case-insensitive (nginx's $arg_NAME), or nil.
func argFold(q, name []byte) []byte {
	for len(q) > 0 {
		var a []byte
		a, q = http1.CutArg(q)
		if k, v := http1.SplitArg(a); http1.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// uriBuilder writes an upstream URI into dst, percent-encoding as APISIX
// does after resolving: the path (up to the first '?' of the template
// text) with nginx's ngx_escape_uri table (uri_safe_encode), the query
// after it with control characters encoded (escape_uri_control_chars;
// sluice also encodes space, '#' and bytes >= 0x80, which must not reach
// a request line raw). A '?' inside a variable's value never splits: it is
// encoded as %3F (APISIX escape_separator).
type uriBuilder struct {
	dst   []byte
	start int // where the URI begins in dst
	split int // index in dst of the separating '?', -1 none
}

// Bytes sources for put.
const (
	srcText  = iota // the template's own text: its first '?' splits path and query
	srcValue        // a variable's value, not URI-encoded ($http_*, $host, ...)
	srcRaw          // already percent-encoded request bytes ($uri, $args, captures of the path): '%' is kept
)

// put appends s from source src.
func (b *uriBuilder) put(s []byte, src int) {
	for _, ch := range s {
		if b.split < 0 {
			switch {
			case ch == '?' && src == srcText:
				b.split = len(b.dst)
				b.dst = append(b.dst, '?')
				continue
			case ch == '%' && src == srcRaw:
			case pathEscape[ch]:
				b.dst = appendPct(b.dst, ch)
				continue
			}
		} else if queryEscape[ch] || ch == '?' && src != srcText {
			b.dst = appendPct(b.dst, ch)
			continue
		}
		b.dst = append(b.dst, ch)
	}
}

// pathEscape is nginx's NGX_ESCAPE_URI table: control characters, space,
// '#', '%', '?', DEL and bytes >= 0x80.
// queryEscape: control characters, space, '#', DEL and bytes >= 0x80.
var pathEscape, queryEscape [256]bool

func init() {
	for i := range 256 {
		ctl := i < 0x20 || i >= 0x7f
		queryEscape[i] = ctl || i == ' ' || i == '#'
		pathEscape[i] = ctl || i == ' ' || i == '#' || i == '%' || i == '?'
	}
}

func appendPct(dst []byte, ch byte) []byte {
	const hex = "0123456789ABCDEF"
	return append(dst, '%', hex[ch>>4], hex[ch&15])
}
