// Package proxyrewrite is APISIX's proxy-rewrite plugin
// (apisix/plugins/proxy-rewrite.lua, priority 1008, rewrite phase): it
// changes the request sent upstream — its path (uri, or regex_uri), Host
// (host), method (method) and headers (headers {add, set, remove} or the
// legacy flat {Name: value}, which means set).
//
// Compile runs on the builder goroutine and precomputes everything a
// literal configuration needs; Rewrite runs on the request's event loop
// and writes what it must build (variables, regex_uri) into c.Scratch.
// Instances are immutable and shared by every loop.
//
// Variables. uri and header values may use $uri (the request path as the
// client sent it, still percent-encoded: APISIX's $uri is decoded),
// $request_uri, $args / $query_string, $is_args, $host, $request_method,
// $remote_addr, $arg_NAME, $http_NAME and $cookie_NAME, written $name,
// ${name} or ${name ?? default}; `\$` is not a variable. Header values may
// also use regex_uri's captures, $1 or ${1}. Any other variable is refused
// at Compile (APISIX would silently substitute ""). As in APISIX, $name
// takes every following letter, digit, '_' and '.', so "$uri.json" names
// the variable "uri.json": write "${uri}.json".
//
// Encoding. The rewritten path is percent-encoded as APISIX's
// uri_safe_encode does (nginx's escape table), except that bytes taken
// from the request target ($uri, $request_uri, $args, $arg_*, regex_uri
// captures) are already encoded and keep their '%'. The first '?' of the
// uri (or regex_uri template) text starts the query; the client's query
// is then appended after '&', as APISIX does.
//
// regex_uri uses Go's regexp (RE2) instead of PCRE: look-arounds and
// back-references are refused at Compile. Its template takes $N and ${N}
// (a group that did not match is ""); "$$" is a literal '$'.
package proxyrewrite

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
)

// name is the APISIX plugin name.
const name = "proxy-rewrite"

func init() { plugin.Register(proxyRewrite{}) }

type proxyRewrite struct{}

// Name returns "proxy-rewrite".
func (proxyRewrite) Name() string { return name }

// Priority is APISIX's.
func (proxyRewrite) Priority() int { return 1008 } // apisix/plugins/proxy-rewrite.lua

// conf is a compiled proxy-rewrite configuration.
type conf struct {
	// uri, when set, replaces the path; for a literal uri litPath and
	// litQuery (after the template's '?', hasQuery) are precomputed.
	uri      tmpl
	literal  bool
	litPath  []byte
	litQuery []byte
	hasQuery bool
	// regex is regex_uri's pairs, tried in order (used when uri is unset).
	regex   []regexRule
	host    []byte
	method  []byte
	headers []headerOp
}

// regexRule is one regex_uri pair.
type regexRule struct {
	re  *regexp.Regexp
	tpl []tplPart
}

// tplPart is literal text or a capture group of a regex_uri template.
type tplPart struct {
	lit   []byte
	group int // -1: literal
}

// headerOp is one compiled header edit; value is nil for a remove.
type headerOp struct {
	kind  uint8 // plugin.HeaderAdd, HeaderSet, HeaderRemove
	name  []byte
	lit   []byte // literal value (when val is nil)
	val   tmpl   // value with variables
	first bool   // a set's first value (an empty value then removes the header)
}

var _ plugin.Rewriter = (*conf)(nil)

// methods is APISIX's method enum (switch_map).
var methods = []string{"GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND", "LOCK", "UNLOCK", "PATCH", "TRACE"}

const hostPattern = `^[0-9a-zA-Z-.]+(:\d{1,5})?$`

var hostRe = regexp.MustCompile(hostPattern)

// Compile checks conf against APISIX's schema and precomputes the rewrite.
// Unknown properties are ignored, as APISIX's schema allows them.
func (proxyRewrite) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	m, err := plugin.Object(name, raw)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, plugin.Errorf(name, "expect object to have at least 1 properties")
	}
	c := &conf{}
	if s, ok, err := plugin.StringProp(name, m, "uri"); err != nil {
		return nil, err
	} else if ok {
		if err := c.compileURI(s); err != nil {
			return nil, err
		}
	}
	if v, ok := m["regex_uri"]; ok {
		if err := c.compileRegex(v); err != nil {
			return nil, err
		}
		if c.uri != nil {
			c.regex = nil // APISIX: uri wins over regex_uri
		}
	}
	if s, ok, err := plugin.StringProp(name, m, "host"); err != nil {
		return nil, err
	} else if ok {
		if !hostRe.MatchString(s) {
			return nil, plugin.Errorf(name, "property \"host\" validation failed: failed to match pattern %q with %q", hostPattern, s)
		}
		c.host = []byte(s)
	}
	if s, ok, err := plugin.StringProp(name, m, "method"); err != nil {
		return nil, err
	} else if ok {
		if !slices.Contains(methods, s) {
			return nil, plugin.Errorf(name, `property "method" validation failed: matches none of the enum values`)
		}
		c.method = []byte(s)
	}
	if b, _, err := plugin.BoolProp(name, m, "use_real_request_uri_unsafe"); err != nil {
		return nil, err
	} else if b {
		return nil, plugin.Errorf(name, `property "use_real_request_uri_unsafe" validation failed: not supported by sluice (sluice already rewrites the path as the client sent it)`)
	}
	if v, ok := m["headers"]; ok {
		ops, err := compileHeaders(v)
		if err != nil {
			return nil, err
		}
		c.headers = ops
	}
	return c, nil
}

// compileURI checks and compiles uri.
func (c *conf) compileURI(s string) error {
	switch n := len([]rune(s)); {
	case n < 1:
		return plugin.Errorf(name, `property "uri" validation failed: string too short, expected at least 1, got 0`)
	case n > 4096:
		return plugin.Errorf(name, `property "uri" validation failed: string too long, expected at most 4096, got %d`, n)
	case s[0] != '/':
		return plugin.Errorf(name, `property "uri" validation failed: failed to match pattern %q with %q`, `^\/.*`, s)
	}
	t, err := parseTemplate(s, false)
	if err != nil {
		return plugin.Errorf(name, "property \"uri\" validation failed: %v", err)
	}
	c.uri = t
	if t.literal() {
		c.literal = true
		b := uriBuilder{split: -1}
		for i := range t {
			b.put(t[i].lit, srcText)
		}
		if b.split < 0 {
			c.litPath = b.dst
		} else {
			c.litPath = b.dst[:b.split:b.split]
			c.litQuery = b.dst[b.split+1:]
			c.hasQuery = true
		}
		// a dot segment here would be refused on every request (a built
		// path may not climb): refuse it now, when the route is written
		// (checked as it will be sent: a '%' there is "%25")
		if _, ok := http1.NormalizeBuiltPath(slices.Clone(c.litPath)); !ok {
			return plugin.Errorf(name, `property "uri" validation failed: %q has a "." or ".." segment (write the path it means)`, s)
		}
	}
	return nil
}

// compileRegex checks regex_uri: an even number (≥ 2) of strings, each
// pair a regular expression and its template.
func (c *conf) compileRegex(v json.RawMessage) error {
	var items []json.RawMessage
	if plugin.JSONKind(v) != "array" || json.Unmarshal(v, &items) != nil {
		return plugin.WrongType(name, "regex_uri", "array", plugin.JSONKind(v))
	}
	if len(items) < 2 {
		return plugin.Errorf(name, `property "regex_uri" validation failed: expect array to have at least 2 items`)
	}
	strs := make([]string, len(items))
	for i, it := range items {
		if plugin.JSONKind(it) != "string" || json.Unmarshal(it, &strs[i]) != nil {
			return plugin.Errorf(name, `property "regex_uri" validation failed: failed to validate item %d: wrong type: expected string, got %s`, i+1, model.GotType(plugin.JSONKind(it)))
		}
	}
	if len(strs)%2 != 0 {
		return plugin.Errorf(name, "The length of regex_uri should be an even number")
	}
	for i := 0; i < len(strs); i += 2 {
		re, err := regexp.Compile(strs[i])
		if err == nil {
			var tpl []tplPart
			if tpl, err = compileSubst(strs[i+1]); err == nil {
				c.regex = append(c.regex, regexRule{re: re, tpl: tpl})
				continue
			}
		}
		return plugin.Errorf(name, "invalid regex_uri(%s, %s): %v", strs[i], strs[i+1], err)
	}
	return nil
}

// compileSubst compiles an ngx.re.sub template: $N, ${N} and $$.
func compileSubst(s string) ([]tplPart, error) {
	var out []tplPart
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			out = append(out, tplPart{lit: lit, group: -1})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit = append(lit, s[i])
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			lit = append(lit, '$')
			i++
		case len(rest) > 0 && isDigit(rest[0]):
			j := 0
			for j < len(rest) && isDigit(rest[j]) {
				j++
			}
			n, err := strconv.Atoi(rest[:j])
			if err != nil || n > 99 {
				return nil, fmt.Errorf("capture $%s out of range", rest[:j])
			}
			flush()
			out = append(out, tplPart{group: n})
			i += j
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			n, err := strconv.Atoi(rest[1:max(end, 1)])
			if end < 0 || err != nil || n < 0 || n > 99 || !isDigit(rest[1]) {
				return nil, errors.New("failed to compile the replacement template: invalid capturing variable name")
			}
			flush()
			out = append(out, tplPart{group: n})
			i += end + 1
		default:
			return nil, errors.New("failed to compile the replacement template: invalid capturing variable name")
		}
	}
	flush()
	return out, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// Rewrite sets c.URI (and c.Query when the new uri has its own query),
// c.Host, c.Method and appends c.HeaderOps. It must be called on c's
// event loop. A literal uri, host, method and literal headers do not
// allocate; variables are expanded into c.Scratch without allocating once
// it has grown; a regex_uri that matches costs one allocation (Go's
// regexp returns a fresh []int of submatch indexes).
func (k *conf) Rewrite(c *plugin.Ctx) plugin.Result {
	path := c.URI
	if path == nil {
		path = c.Req.Path
	}
	var locs []int
	switch {
	case k.literal:
		c.URI, c.URIBuilt = k.litPath, false
		if k.hasQuery {
			k.setQuery(c, k.litQuery, false)
		}
	case k.uri != nil:
		b := uriBuilder{dst: c.Scratch, start: len(c.Scratch), split: -1}
		for i := range k.uri {
			p := &k.uri[i]
			if p.kind == vLit {
				b.put(p.lit, srcText)
				continue
			}
			var v []byte
			mark := len(b.dst)
			v, b.dst = p.value(c, path, nil, b.dst)
			src := srcValue
			if p.raw() {
				src = srcRaw
			}
			if len(b.dst) > mark {
				// The value was built at the end of dst (host,
				// remote_addr): move it out of the way first.
				b.dst = b.putMoved(mark, src)
				continue
			}
			b.put(v, src)
		}
		k.finish(c, &b)
	case k.regex != nil:
		for i := range k.regex {
			r := &k.regex[i]
			if locs = r.re.FindSubmatchIndex(path); locs == nil {
				continue
			}
			b := uriBuilder{dst: c.Scratch, start: len(c.Scratch), split: -1}
			b.put(path[:locs[0]], srcCapture)
			for _, tp := range r.tpl {
				if tp.group < 0 {
					b.put(tp.lit, srcText)
				} else if 2*tp.group+1 < len(locs) && locs[2*tp.group] >= 0 {
					b.put(path[locs[2*tp.group]:locs[2*tp.group+1]], srcCapture)
				}
			}
			b.put(path[locs[1]:], srcCapture)
			k.finish(c, &b)
			break
		}
	}
	if k.host != nil {
		c.Host = k.host
	}
	if k.method != nil {
		c.Method = k.method
	}
	for i := range k.headers {
		k.header(c, &k.headers[i], path, locs)
	}
	return plugin.Result{}
}

// putMoved re-encodes dst[mark:] (a value just appended there) in place
// of itself: it is appended encoded, then the raw copy is cut out.
func (b *uriBuilder) putMoved(mark, src int) []byte {
	n := len(b.dst) - mark
	b.put(b.dst[mark:mark+n], src)
	enc := len(b.dst) - mark - n
	copy(b.dst[mark:], b.dst[mark+n:])
	return b.dst[:mark+enc]
}

// finish sets c.URI (and c.Query) from a built URI and keeps c.Scratch.
func (k *conf) finish(c *plugin.Ctx, b *uriBuilder) {
	c.Scratch = b.dst
	c.URIBuilt = true
	end := len(b.dst)
	if b.split < 0 {
		c.URI = b.dst[b.start:end:end]
		return
	}
	c.URI = b.dst[b.start:b.split:b.split]
	k.setQuery(c, b.dst[b.split+1:end:end], true)
}

// setQuery sets c.Query to the uri's own query q followed, when the
// request has one, by '&' and the request's query (APISIX). inScratch: q
// is the tail of c.Scratch, so the request's query can follow it there.
func (k *conf) setQuery(c *plugin.Ctx, q []byte, inScratch bool) {
	cq := c.Query
	if cq == nil {
		cq = c.Req.Query
	}
	if len(cq) == 0 {
		if q == nil {
			q = empty
		}
		c.Query = q
		return
	}
	start := len(c.Scratch)
	if inScratch {
		start -= len(q)
	} else {
		c.Scratch = append(c.Scratch, q...)
	}
	c.Scratch = append(c.Scratch, '&')
	c.Scratch = append(c.Scratch, cq...)
	end := len(c.Scratch)
	c.Query = c.Scratch[start:end:end]
}

// header appends the HeaderOps of one compiled edit.
func (k *conf) header(c *plugin.Ctx, h *headerOp, path []byte, locs []int) {
	if h.kind == plugin.HeaderRemove {
		c.HeaderOps = append(c.HeaderOps, plugin.HeaderOp{Kind: plugin.HeaderRemove, Name: h.name})
		return
	}
	v := h.lit
	if h.val != nil {
		start := len(c.Scratch)
		for i := range h.val {
			p := &h.val[i]
			if p.kind == vLit {
				c.Scratch = append(c.Scratch, p.lit...)
				continue
			}
			var pv []byte
			mark := len(c.Scratch)
			pv, c.Scratch = p.value(c, path, locs, c.Scratch)
			if len(c.Scratch) == mark { // else the value is already in place
				c.Scratch = append(c.Scratch, pv...)
			}
		}
		end := len(c.Scratch)
		v = c.Scratch[start:end:end]
	}
	switch {
	case len(v) > 0:
		c.HeaderOps = append(c.HeaderOps, plugin.HeaderOp{Kind: h.kind, Name: h.name, Value: v})
	case h.kind == plugin.HeaderSet && h.first:
		// nginx: setting an empty value removes the header.
		c.HeaderOps = append(c.HeaderOps, plugin.HeaderOp{Kind: plugin.HeaderRemove, Name: h.name})
	}
	// nginx: an added (or further set) empty value is not sent.
}

// compileHeaders checks headers, APISIX's oneOf of {add, set, remove} and
// the legacy flat {Name: value} (set), and returns its edits: adds, then
// sets, then removes (APISIX's order), names sorted within each group.
func compileHeaders(raw json.RawMessage) ([]headerOp, error) {
	noneOf := plugin.Errorf(name, `property "headers" validation failed: object matches none of the required`)
	var m map[string]json.RawMessage
	if plugin.JSONKind(raw) != "object" || json.Unmarshal(raw, &m) != nil {
		return nil, noneOf
	}
	if len(m) == 0 {
		return nil, noneOf
	}
	// The new form: only add, set and remove, each an object or array.
	newForm := true
	for k, v := range m {
		switch k {
		case "add", "set":
			newForm = newForm && plugin.JSONKind(v) == "object"
		case "remove":
			newForm = newForm && plugin.JSONKind(v) == "array"
		default:
			newForm = false
		}
	}
	var ops []headerOp
	if !newForm {
		// Legacy: every value a string or a number.
		set, err := headerValues("headers", m, false)
		if errors.Is(err, errNotLegacy) {
			return nil, noneOf
		}
		return set, err
	}
	for _, grp := range []string{"add", "set"} {
		v, ok := m[grp]
		if !ok {
			continue
		}
		var vals map[string]json.RawMessage
		_ = json.Unmarshal(v, &vals)
		if len(vals) == 0 {
			return nil, noneOf
		}
		grpOps, err := headerValues(grp, vals, true)
		if err != nil {
			return nil, err
		}
		ops = append(ops, grpOps...)
	}
	if v, ok := m["remove"]; ok {
		var names []json.RawMessage
		_ = json.Unmarshal(v, &names)
		if len(names) == 0 {
			return nil, noneOf
		}
		for _, n := range names {
			var s string
			if plugin.JSONKind(n) != "string" || json.Unmarshal(n, &s) != nil {
				return nil, noneOf
			}
			if err := checkHeaderName(s); err != nil {
				return nil, err
			}
			ops = append(ops, headerOp{kind: plugin.HeaderRemove, name: []byte(s)})
		}
	}
	return ops, nil
}

// errNotLegacy: a headers object is not the legacy flat form either.
var errNotLegacy = errors.New("not a legacy headers object")

// headerValues compiles the headers of one group ("add", "set" or the
// legacy "headers"), sorted by name. Arrays (several values) are allowed
// in add and set.
func headerValues(grp string, vals map[string]json.RawMessage, arrays bool) ([]headerOp, error) {
	op := plugin.HeaderSet
	if grp == "add" {
		op = plugin.HeaderAdd
	}
	var ops []headerOp
	for _, n := range slices.Sorted(maps.Keys(vals)) {
		if err := checkHeaderName(n); err != nil {
			return nil, err
		}
		v := vals[n]
		var list []json.RawMessage
		switch plugin.JSONKind(v) {
		case "string", "number":
			list = []json.RawMessage{v}
		case "array":
			if !arrays {
				return nil, errNotLegacy
			}
			_ = json.Unmarshal(v, &list)
			if len(list) == 0 {
				return nil, plugin.Errorf(name, "property \"headers\" validation failed: header %q: expect array to have at least 1 items", n)
			}
		default:
			if !arrays {
				return nil, errNotLegacy
			}
			return nil, plugin.Errorf(name, "property \"headers\" validation failed: header %q: invalid type as header value", n)
		}
		for i, item := range list {
			s, err := headerValue(item)
			if err != nil {
				return nil, plugin.Errorf(name, "property \"headers\" validation failed: header %q: %v", n, err)
			}
			h := headerOp{kind: op, name: []byte(n), first: i == 0}
			if i > 0 && op == plugin.HeaderSet {
				h.kind = plugin.HeaderAdd // further values of a set
			}
			t, err := parseTemplate(s, true)
			if err != nil {
				return nil, plugin.Errorf(name, "property \"headers\" validation failed: header %q: %v", n, err)
			}
			if t.literal() {
				h.lit = []byte(s)
				if len(h.lit) == 0 {
					if h.kind == plugin.HeaderSet && h.first {
						h.kind = plugin.HeaderRemove // nginx: an empty set removes
					} else {
						continue // nginx: an empty add is not sent
					}
				}
			} else {
				h.val = t
			}
			ops = append(ops, h)
		}
	}
	return ops, nil
}

// headerValue returns a header value item (string or number) as text,
// checked as APISIX's validate_header_value (no control characters, no
// bytes >= 0x7f).
func headerValue(v json.RawMessage) (string, error) {
	var s string
	switch plugin.JSONKind(v) {
	case "string":
		_ = json.Unmarshal(v, &s)
	case "number":
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || math.IsInf(f, 0) {
			return "", errors.New("invalid type as header value")
		}
		s = strconv.FormatFloat(f, 'g', 14, 64) // Lua's tostring (%.14g)
	default:
		return "", errors.New("invalid type as header value")
	}
	if err := plugin.CheckHeaderValue(s); err != nil {
		return "", err
	}
	return s, nil
}

// checkHeaderName is plugin.CheckEditableHeader in proxy-rewrite's words.
func checkHeaderName(n string) error {
	err := plugin.CheckEditableHeader(n)
	switch {
	case err == nil:
		return nil
	case strings.EqualFold(n, "host"):
		return plugin.Errorf(name, `property "headers" validation failed: %v (use proxy-rewrite's "host")`, err)
	}
	return plugin.Errorf(name, `property "headers" validation failed: %v`, err)
}
