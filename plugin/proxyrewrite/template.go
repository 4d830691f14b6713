package proxyrewrite

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

// This file parses and expands the templates of uri, regex_uri and header
// values: APISIX's core.utils.resolve_var (`$name`, `${name}`,
// `${name ?? default}`, `\$` is not a variable) and, in header values,
// resolve_var_with_captures (`$1`, `${1}`: regex_uri's captures).

// Part kinds.
const (
	vLit     uint8 = iota // literal text
	vVar                  // a variable (plugin.Var)
	vCapture              // $N: regex_uri capture N (header values only)
)

// supportedVars is shown in errors.
const supportedVars = "$uri, $request_uri, $args, $query_string, $is_args, $host, $request_method, $remote_addr, $scheme, $server_protocol, $arg_NAME, $http_NAME, $cookie_NAME"

// part is one piece of a compiled template.
type part struct {
	kind   uint8
	lit    []byte     // vLit: the text
	v      plugin.Var // vVar
	group  int        // vCapture: the capture group
	def    []byte     // ${name ?? def}: used when the variable is absent
	hasDef bool
}

// raw reports whether p's value is already percent-encoded request bytes
// ($uri, $request_uri, $args, $arg_*): '%' in it is kept as is.
func (p *part) raw() bool {
	switch p.v.Kind {
	case plugin.VarURI, plugin.VarRequestURI, plugin.VarArgs, plugin.VarArg:
		return p.kind == vVar
	}
	return false
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

// parseTemplate compiles s (plugin.ParseTemplate's syntax). captures
// allows `$N` (header values); without it a numeric variable is an error.
// Unknown variables are errors: a URI or header built from a variable
// sluice does not have would silently lose it.
func parseTemplate(s string, captures bool) (tmpl, error) {
	var parts []plugin.TemplatePart
	if captures {
		var err error
		if parts, err = plugin.ParseTemplateCaptures(s); err != nil {
			return nil, err
		}
	} else {
		parts = plugin.ParseTemplate(s)
	}
	t := make(tmpl, 0, len(parts))
	for _, tp := range parts {
		switch {
		case tp.Capture >= 0:
			t = append(t, part{kind: vCapture, group: tp.Capture})
		case tp.Literal():
			t = append(t, part{kind: vLit, lit: []byte(tp.Lit)})
		default:
			v, err := variable(tp.Var)
			if err != nil {
				return nil, err
			}
			t = append(t, part{kind: vVar, v: v, def: []byte(tp.Def), hasDef: tp.HasDef})
		}
	}
	return t, nil
}

// variable compiles a variable name, refusing those a request does not
// carry here (unknown names, the body, consumer and route ids).
func variable(name string) (plugin.Var, error) {
	v := plugin.ParseVar(name)
	if strings.Contains(name, ".") { // "$arg_id.json": the argument "id.json"
		v.Kind = plugin.VarNone
	}
	switch v.Kind {
	case plugin.VarNone, plugin.VarPostArg, plugin.VarConsumer, plugin.VarRouteID, plugin.VarServiceID:
		if _, err := strconv.Atoi(name); err == nil {
			return v, fmt.Errorf("variable $%s is not supported by sluice here (regex_uri captures are available in header values)", name)
		}
		return v, fmt.Errorf("variable $%s is not supported by sluice (supported: %s; write ${name} when text follows a variable)", name, supportedVars)
	}
	return v, nil
}

// value returns the variable p names for c's request; nil when absent
// (the default then applies). path stands for $uri (the path being
// rewritten); locs are regex_uri's submatch indexes into path (nil: no
// match). Borrowed slices point into the request or dst; the returned dst
// is dst with any bytes the value needed appended.
func (p *part) value(c *plugin.Ctx, path []byte, locs []int, dst []byte) ([]byte, []byte) {
	var v []byte
	switch {
	case p.kind == vCapture:
		if locs == nil {
			break
		}
		if 2*p.group+1 < len(locs) && locs[2*p.group] >= 0 {
			v = path[locs[2*p.group]:locs[2*p.group+1]]
		} else {
			v = empty // a group that did not take part: ""
		}
		return v, dst
	case p.v.Kind == plugin.VarURI:
		v = path
	case p.v.Kind == plugin.VarHost || p.v.Kind == plugin.VarRemoteAddr:
		start := len(dst)
		var ok bool
		if dst, ok = p.v.Append(dst, c.Req, c.RemoteAddr); ok {
			v = dst[start:]
		}
	case c.Query != nil && (p.v.Kind == plugin.VarArgs || p.v.Kind == plugin.VarArg || p.v.Kind == plugin.VarIsArgs):
		// an earlier plugin rewrote the query (key-auth hide_credentials
		// took the key out): read the rewritten one, as APISIX does
		switch p.v.Kind {
		case plugin.VarArgs:
			v = c.Query
		case plugin.VarArg:
			v = http1.ArgValueFold(c.Query, p.v.Name)
		default:
			v = empty
			if len(c.Query) > 0 {
				v = qmark
			}
		}
	case p.v.Kind == plugin.VarHeader:
		var edited bool
		if v, edited = c.EditedHeader(p.v.Name); !edited {
			v = p.v.RequestValue(c.Req)
		}
	default:
		v = p.v.RequestValue(c.Req)
	}
	if v == nil && p.hasDef {
		v = p.def
	}
	return v, dst
}

var (
	empty = []byte{}
	qmark = []byte("?")
)

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
	srcText    = iota // the template's own text: its first '?' splits path and query
	srcValue          // a variable's value, not URI-encoded ($http_*, $host, ...)
	srcRaw            // already percent-encoded request bytes ($uri, $args, $arg_x): '%' is kept where it starts an escape
	srcCapture        // a regex_uri capture of the validated path: '%' is kept (a capture may end inside an escape)
)

// put appends s from source src.
func (b *uriBuilder) put(s []byte, src int) {
	for i, ch := range s {
		if b.split < 0 {
			switch {
			case ch == '?' && src == srcText:
				b.split = len(b.dst)
				b.dst = append(b.dst, '?')
				continue
			case ch == '%' && (src == srcCapture || src == srcRaw && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])):
				// an escape the request already made; a '%' that starts
				// none ($arg_x = "50%") is encoded like any other
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

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
