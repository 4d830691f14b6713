package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unsafe"

	"github.com/sluice-gw/sluice/plugin"
)

// Expr is a compiled lua-resty-expr expression (APISIX route `vars`,
// traffic-split `match[].vars`). It is immutable: Eval may be called from
// any number of event loops at once. A nil *Expr is always true.
type Expr struct {
	root node
	body bool // reads post_arg.*: needs Request.Body
}

// NeedsBody reports whether e reads the request body (post_arg.*).
func (e *Expr) NeedsBody() bool { return e != nil && e.body }

// varsErrPrefix is APISIX's wording (apisix/admin/routes.lua, traffic-split
// check_schema): users grep for it.
const varsErrPrefix = "failed to validate the 'vars' expression: "

// CompileVars compiles a lua-resty-expr array (api7/lua-resty-expr v1):
//
//	[["arg_name","==","jack"], ["http_x_canary","!","~~","^b"], …]   AND of all
//	["OR", [...], [...]]                                              logic prefix: AND, OR, !AND, !OR
//	[var, op, val] | [var, "!", op, val] | [var, val]                 one comparison (val: ==)
//
// Operators (lowercased first, as lua-resty-expr): == ~= > >= < <= ~~ ~* in
// has ipmatch. Regexps are compiled (RE2 syntax: PCRE look-arounds and
// back-references are rejected), numbers, IPs and CIDRs are parsed here, so
// Eval never parses config. Empty raw, "null" and "[]" compile to nil
// (always true).
//
// Errors read "failed to validate the 'vars' expression: <reason>", with
// lua-resty-expr's reasons where it has one ("invalid operator '='",
// "rule too short", "bad 'not' expression", "rule should be wrapped inside
// brackets"); callers prefix the resource. CompileVars runs on the builder
// goroutine and allocates freely.
func CompileVars(raw json.RawMessage) (*Expr, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(raw, new(any)); err != nil { // rejects trailing data too
		return nil, errors.New(varsErrPrefix + "invalid JSON: " + err.Error())
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // numbers keep their text: "in" and "==" compare exactly
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, errors.New(varsErrPrefix + "invalid JSON: " + err.Error())
	}
	rule, ok := v.([]any)
	if !ok {
		return nil, errors.New(varsErrPrefix + "must be an array")
	}
	if len(rule) == 0 {
		return nil, nil
	}
	// lua-resty-expr new(): a top-level list starts with a nested list or a
	// logic operator; a bare ["a","==","b"] is refused.
	if _, nested := rule[0].([]any); !nested {
		if s, ok := rule[0].(string); !ok || logicOf(s) == opLeaf {
			return nil, errors.New(varsErrPrefix + "rule should be wrapped inside brackets")
		}
	}
	n, err := compileRule(rule, 0)
	if err != nil {
		return nil, errors.New(varsErrPrefix + err.Error())
	}
	return &Expr{root: n, body: n.readsBody()}, nil
}

// maxVarsDepth bounds nesting so a hostile config cannot exhaust the
// builder's stack (encoding/json already stops at 10000).
const maxVarsDepth = 64

// Eval reports whether r satisfies e. A nil e is true. Eval does not
// allocate (regexp matching on []byte uses the regexp package's pooled
// machines) and is safe for concurrent use.
func (e *Expr) Eval(r *Request) bool {
	if e == nil {
		return true
	}
	var c evalCtx
	c.init(r)
	return e.root.eval(&c)
}

// logic operators of a group node.
type logicOp uint8

const (
	opLeaf logicOp = iota
	opAnd
	opOr
	opNotAnd
	opNotOr
)

func logicOf(s string) logicOp {
	switch strings.ToUpper(s) {
	case "AND":
		return opAnd
	case "OR":
		return opOr
	case "!AND":
		return opNotAnd
	case "!OR":
		return opNotOr
	}
	return opLeaf
}

// cmpOp is a comparison operator.
type cmpOp uint8

const (
	cmpEq cmpOp = iota + 1
	cmpNe
	cmpGt
	cmpGe
	cmpLt
	cmpLe
	cmpRe  // ~~
	cmpReI // ~*
	cmpIn
	cmpHas
	cmpIPMatch
)

var cmpOps = map[string]cmpOp{
	"==": cmpEq, "~=": cmpNe, ">": cmpGt, ">=": cmpGe, "<": cmpLt, "<=": cmpLe,
	"~~": cmpRe, "~*": cmpReI, "in": cmpIn, "has": cmpHas, "ipmatch": cmpIPMatch,
}

// kind is the JSON type of a right-hand operand, which decides how Lua
// compares (a number on the right makes == numeric; nil == nil is true).
type kind uint8

const (
	kNil kind = iota // JSON null, or absent
	kString
	kNumber
	kOther // boolean, array, object: never equal to a variable's string
)

// operand is a pre-converted right-hand value.
type operand struct {
	kind kind
	str  []byte  // kString; kNumber: the literal text
	num  float64 // kNumber
}

// node is one compiled expression: a group (op != opLeaf) or a comparison.
// readsBody reports whether n or a node below it reads post_arg.*.
func (n *node) readsBody() bool {
	if n.v.Kind == plugin.VarPostArg {
		return true
	}
	for i := range n.kids {
		if n.kids[i].readsBody() {
			return true
		}
	}
	return false
}

type node struct {
	op   logicOp
	kids []node

	// comparison
	v    plugin.Var
	cmp  cmpOp
	not  bool
	r    operand
	list []operand      // in
	re   *regexp.Regexp // ~~, ~*
	nets []netip.Prefix // ipmatch
	num  bool           // >, >=, <, <=: r.num is valid
}

func compileRule(rule []any, depth int) (node, error) {
	if depth > maxVarsDepth {
		return node{}, errors.New("expression nested too deep")
	}
	if len(rule) == 0 {
		return node{}, errors.New("rule too short")
	}
	if _, nested := rule[0].([]any); nested {
		// A list of rules: AND.
		g := node{op: opAnd, kids: make([]node, 0, len(rule))}
		for _, x := range rule {
			sub, ok := x.([]any)
			if !ok {
				return node{}, errors.New("invalid expression")
			}
			k, err := compileRule(sub, depth+1)
			if err != nil {
				return node{}, err
			}
			g.kids = append(g.kids, k)
		}
		return g, nil
	}
	if s, ok := rule[0].(string); ok {
		if op := logicOf(s); op != opLeaf {
			if len(rule) <= 2 {
				return node{}, errors.New("rule too short")
			}
			g := node{op: op, kids: make([]node, 0, len(rule)-1)}
			for _, x := range rule[1:] {
				sub, ok := x.([]any)
				if !ok {
					return node{}, errors.New("invalid expression")
				}
				k, err := compileRule(sub, depth+1)
				if err != nil {
					return node{}, err
				}
				g.kids = append(g.kids, k)
			}
			return g, nil
		}
	}
	return compileExpr(rule)
}

// compileExpr compiles [var, op, val], [var, "!", op, val] or [var, val]
// (lua-resty-expr compile_expr).
func compileExpr(e []any) (node, error) {
	var n node
	var lv, opv, rv any
	switch len(e) {
	case 4:
		if s, ok := e[1].(string); !ok || s != "!" {
			return n, errors.New("bad 'not' expression")
		}
		n.not = true
		lv, opv, rv = e[0], e[2], e[3]
	case 3:
		lv, opv, rv = e[0], e[1], e[2]
	case 2:
		lv, opv = e[0], e[1]
	case 1:
		return n, errors.New("invalid expression")
	default:
		return n, fmt.Errorf("invalid expression: %d elements, want [var, op, val], [var, \"!\", op, val] or [var, val]", len(e))
	}

	name, ok := lv.(string)
	if !ok {
		return n, errors.New("invalid expression: the variable name must be a string")
	}
	n.v = plugin.ParseVar(name)

	var op string
	switch o := opv.(type) {
	case string:
		op = strings.ToLower(o)
	case json.Number:
		op = string(o) // Lua string.lower(123) is "123": "invalid operator '123'"
	case nil:
		return n, errors.New("invalid expression")
	default:
		return n, errors.New("invalid expression: the operator must be a string")
	}
	c, known := cmpOps[op]
	if len(e) == 2 && !known {
		// lua-resty-expr "for compatibility": [var, val] means ==. Unlike
		// lua-resty-expr (which lowercases val along with the would-be
		// operator) sluice compares with val as written.
		c, rv = cmpEq, opv
	} else if !known {
		return n, fmt.Errorf("invalid operator '%s'", op)
	}
	n.cmp = c
	r, err := compileOperand(rv)
	if err != nil {
		return n, err
	}
	n.r = r

	switch c {
	case cmpGt, cmpGe, cmpLt, cmpLe:
		// lua-resty-expr: tonumber(r_v); a right side that is not a number
		// makes the comparison false (accepted, as APISIX does).
		switch r.kind {
		case kNumber:
			n.num = true
		case kString:
			n.r.num, n.num = parseNumber(r.str)
		}
	case cmpRe, cmpReI:
		if r.kind != kString && r.kind != kNumber {
			return n, fmt.Errorf("operator '%s' needs a string regex", op)
		}
		pat := string(r.str)
		if c == cmpReI {
			pat = "(?i)" + pat
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return n, fmt.Errorf("invalid regex '%s': %v", r.str, err)
		}
		n.re = re
	case cmpIn:
		arr, ok := rv.([]any)
		if !ok {
			return n, errors.New("operator 'in' needs an array")
		}
		for _, x := range arr {
			o, err := compileOperand(x)
			if err != nil {
				return n, err
			}
			if o.kind == kString || o.kind == kNumber {
				n.list = append(n.list, o)
			}
		}
	case cmpIPMatch:
		var items []any
		switch x := rv.(type) {
		case string:
			items = []any{x}
		case []any:
			items = x
		default:
			return n, errors.New("operator 'ipmatch' needs an IP, a CIDR or an array of them")
		}
		for _, x := range items {
			s, ok := x.(string)
			if !ok {
				return n, errors.New("operator 'ipmatch' needs an IP, a CIDR or an array of them")
			}
			p, err := parsePrefix(s)
			if err != nil {
				return n, fmt.Errorf("invalid ip address '%s'", s)
			}
			n.nets = append(n.nets, p)
		}
	}
	return n, nil
}

func compileOperand(v any) (operand, error) {
	switch x := v.(type) {
	case nil:
		return operand{kind: kNil}, nil
	case string:
		return operand{kind: kString, str: []byte(x)}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return operand{}, fmt.Errorf("invalid number %s", x)
		}
		return operand{kind: kNumber, str: []byte(x), num: f}, nil
	default:
		return operand{kind: kOther}, nil
	}
}

// parsePrefix parses an IP ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8") as
// a prefix; IPv4-mapped IPv6 addresses are unmapped.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (n *node) eval(c *evalCtx) bool {
	switch n.op {
	case opLeaf:
		return n.compare(c) != n.not
	case opAnd:
		return n.all(c)
	case opOr:
		return n.any(c)
	case opNotAnd:
		return !n.all(c)
	default: // opNotOr
		return !n.any(c)
	}
}

func (n *node) all(c *evalCtx) bool {
	for i := range n.kids {
		if !n.kids[i].eval(c) {
			return false
		}
	}
	return true
}

func (n *node) any(c *evalCtx) bool {
	for i := range n.kids {
		if n.kids[i].eval(c) {
			return true
		}
	}
	return false
}

// compare evaluates the comparison without its "!" (lua-resty-expr
// compare_funcs). l == nil means the variable is missing (Lua nil).
func (n *node) compare(c *evalCtx) bool {
	if n.cmp == cmpIPMatch {
		a, ok := c.addrOf(&n.v)
		if !ok {
			return false
		}
		for _, p := range n.nets {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	l := c.get(&n.v)
	switch n.cmp {
	case cmpEq:
		return equal(l, &n.r)
	case cmpNe:
		// ~= is exactly not == in lua-resty-expr, number and nil cases included.
		return !equal(l, &n.r)
	case cmpGt, cmpGe, cmpLt, cmpLe:
		if l == nil || !n.num {
			return false
		}
		x, ok := parseNumber(l)
		if !ok {
			return false
		}
		switch n.cmp {
		case cmpGt:
			return x > n.r.num
		case cmpGe:
			return x >= n.r.num
		case cmpLt:
			return x < n.r.num
		default:
			return x <= n.r.num
		}
	case cmpRe, cmpReI:
		return l != nil && n.re.Match(l)
	case cmpIn:
		if l == nil {
			return false
		}
		for i := range n.list {
			if equal(l, &n.list[i]) {
				return true
			}
		}
		return false
	case cmpHas:
		// lua-resty-expr's has wants an array on the left; every sluice
		// variable is a string, taken here as a one-element list.
		return l != nil && equal(l, &n.r)
	}
	return false
}

// equal is lua-resty-expr's ==: numeric when the right side is a number
// (tonumber on the left; not a number → false), nil == nil, and a string
// never equals a boolean or a table.
func equal(l []byte, r *operand) bool {
	switch r.kind {
	case kNil:
		return l == nil
	case kString:
		return l != nil && bytes.Equal(l, r.str)
	case kNumber:
		if l == nil {
			return false
		}
		x, ok := parseNumber(l)
		return ok && x == r.num
	}
	return false
}

// parseNumber is Lua's tonumber for a string, without allocating: optional
// surrounding white space, an optional sign, then a decimal number (digits,
// fraction, exponent) or a hexadecimal integer "0x1F". "inf" and "nan" are
// not numbers.
func parseNumber(b []byte) (float64, bool) {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	s := b
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		var v float64
		for _, ch := range s[2:] {
			d := hexVal(ch)
			if d < 0 {
				return 0, false
			}
			v = v*16 + float64(d)
		}
		if neg {
			v = -v
		}
		return v, true
	}
	// Validate the decimal grammar, noting the decimal magnitude (the power
	// of ten of the first significant digit) to keep ParseFloat away from
	// overflow and underflow, whose errors allocate.
	i, digits := 0, 0
	var iv uint64
	mag, sig := 0, false // mag is valid once sig (a non-zero digit was seen)
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if digits < 19 {
			iv = iv*10 + uint64(s[i]-'0')
		}
		if sig {
			mag++
		} else if s[i] != '0' {
			sig = true
		}
		i++
		digits++
	}
	if i == len(s) && digits > 0 && digits <= 15 {
		v := float64(iv) // exact: below 2^53
		if neg {
			v = -v
		}
		return v, true
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if !sig {
				mag--
				sig = s[i] != '0'
			}
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		e, ed := 0, 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if e < 100000 {
				e = e*10 + int(s[i]-'0')
			}
			i++
			ed++
		}
		if ed == 0 {
			return 0, false
		}
		if eneg {
			e = -e
		}
		mag += e
	}
	if i != len(s) {
		return 0, false
	}
	switch {
	case !sig:
		return 0, true
	case mag > 308: // beyond float64: +-Inf, as Lua
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case mag < -324: // below the smallest denormal
		if neg {
			return math.Copysign(0, -1), true
		}
		return 0, true
	}
	// The grammar and magnitude are fine, so ParseFloat does not fail
	// (except within a hair of MaxFloat64, where it returns ±Inf and an
	// allocated ErrRange).
	v, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	return v, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
