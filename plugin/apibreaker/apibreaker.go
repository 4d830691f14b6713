// Package apibreaker is APISIX's api-breaker plugin (priority 1005, access
// and log phases; apisix/plugins/api-breaker.lua, policy "unhealthy-count").
//
// A breaker is kept per request Host + URI, as APISIX keys its shared dict,
// so traffic-split arms of one route share one breaker; unlike APISIX it is
// also per route (scope) and configuration, so two routes never share one.
// The log phase counts the upstream's status (gateway-made statuses do not
// count): each unhealthy status adds one and clears the healthy count, and
// every failures-th unhealthy status trips the breaker at the current
// second. While tripped, the access phase answers break_response_code
// without calling the upstream for 2^floor(unhealthy/failures) seconds
// (2 s, 4 s, 8 s, …, at most max_breaker_sec), measured in whole seconds
// as ngx.time() does. Then traffic flows again (no half-open state); healthy
// statuses, successes in a row, reset the breaker.
//
// Breakers live in a store per scope and configuration that outlives a
// table rebuild keeping both. The phases do not allocate once a breaker
// exists.
package apibreaker

import (
	"encoding/json"
	"strings"

	"github.com/sluice-gw/sluice/plugin"
)

const name = "api-breaker"

func init() { plugin.Register(apiBreaker{}) }

type apiBreaker struct{}

func (apiBreaker) Name() string  { return name }
func (apiBreaker) Priority() int { return 1005 } // apisix/plugins/api-breaker.lua

// defaultBody answers an open breaker without break_response_body (SPEC
// §7a: gateway answers carry a JSON error_msg).
var (
	defaultBody    = []byte(`{"error_msg":"breaker is open"}` + "\n")
	defaultHeaders = []byte("Content-Type: application/json\r\n")
)

// Compile checks conf and returns the breaker instance.
func (apiBreaker) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	c, err := decodeConf(raw)
	if err != nil {
		return nil, plugin.Errorf(name, "%s", err)
	}
	b := &breaker{
		failures:  c.Unhealthy.Failures,
		successes: c.Healthy.Successes,
		maxSec:    c.MaxBreakerSec,
	}
	for _, s := range c.Unhealthy.HTTPStatuses {
		b.unhealthy[s-500] = true
	}
	for _, s := range c.Healthy.HTTPStatuses {
		b.healthy[s-200] = true
	}
	b.result = plugin.Result{Status: c.BreakResponseCode, Body: defaultBody, Headers: defaultHeaders}
	if c.BreakResponseBody != nil {
		// APISIX adds break_response_headers only together with a body,
		// their values through resolve_var ("$remote_addr").
		ct := false
		for _, kv := range c.BreakResponseHeaders {
			h := hdrTpl{head: []byte(kv.Key + ": ")}
			for _, p := range plugin.ParseTemplate(kv.Value) {
				if p.Literal() {
					h.parts = append(h.parts, hdrPart{lit: []byte(p.Lit)})
					continue
				}
				v := plugin.ParseVar(p.Var)
				if v.Kind == plugin.VarNone || v.Kind == plugin.VarPostArg {
					return nil, plugin.Errorf(name, `property "break_response_headers" validation failed: variable %q is not supported by sluice (write \$ for a literal $)`, p.Var)
				}
				h.parts = append(h.parts, hdrPart{v: v, isVar: true, def: []byte(p.Def), hasDef: p.HasDef})
				b.dynamic = true
			}
			b.headers = append(b.headers, h)
			ct = ct || strings.EqualFold(kv.Key, "content-type")
		}
		if !ct {
			b.headers = append(b.headers, hdrTpl{head: []byte("Content-Type: "), parts: []hdrPart{{lit: []byte("text/plain; charset=utf-8")}}})
		}
		b.result.Body = []byte(*c.BreakResponseBody)
		b.result.Headers = b.appendHeaders(nil, nil)
	}
	canon, err := json.Marshal(c)
	if err != nil {
		return nil, plugin.Errorf(name, "%s", err)
	}
	scope := ""
	if env != nil {
		scope = env.Scope
	}
	b.store = storeFor(scope+"\x00"+string(canon), c.MaxBreakerSec)
	return b, nil
}

// breaker is a compiled api-breaker configuration.
type breaker struct {
	failures  int64
	successes int64
	maxSec    int64
	unhealthy [100]bool // unhealthy.http_statuses, indexed by status-500
	healthy   [300]bool // healthy.http_statuses, indexed by status-200
	result    plugin.Result
	headers   []hdrTpl // break_response_headers
	dynamic   bool     // some header value holds a variable: built per answer
	store     *store
}

// hdrTpl is one break_response_headers entry: "Key: " and its value's
// parts.
type hdrTpl struct {
	head  []byte
	parts []hdrPart
}

type hdrPart struct {
	lit    []byte
	v      plugin.Var
	isVar  bool
	def    []byte
	hasDef bool
}

// appendHeaders appends the header lines to dst, variables read from c
// (nil: at compile time, when only literal values are built).
func (b *breaker) appendHeaders(dst []byte, c *plugin.Ctx) []byte {
	for _, h := range b.headers {
		dst = append(dst, h.head...)
		for _, p := range h.parts {
			if !p.isVar {
				dst = append(dst, p.lit...)
				continue
			}
			if c == nil {
				continue
			}
			at := len(dst)
			var present bool
			dst, present = p.v.AppendCtx(dst, c)
			if !present && p.hasDef {
				dst = append(dst, p.def...)
			}
			dst = dropCtl(dst, at) // a value can never end the header line
		}
		dst = append(dst, "\r\n"...)
	}
	return dst
}

var (
	_ plugin.Accessor = (*breaker)(nil)
	_ plugin.Logger   = (*breaker)(nil)
)

// breakerSec is APISIX's breaker_time for an unhealthy count:
// 2^floor(count/failures) seconds, at least 2, at most max_breaker_sec.
func (b *breaker) breakerSec(count int64) int64 {
	n := count / b.failures
	if n < 1 {
		n = 1
	}
	if n >= 62 {
		return b.maxSec
	}
	return min(int64(1)<<n, b.maxSec)
}

// Access answers break_response_code while the request's breaker is open.
func (b *breaker) Access(c *plugin.Ctx) plugin.Result {
	if c.Req == nil || b.store.empty() { // no breaker yet: skip hashing
		return plugin.Result{}
	}
	st := b.store.load(key(c.Req))
	if st == nil {
		return plugin.Result{}
	}
	count := st.unhealthy.Load()
	if count < b.failures {
		return plugin.Result{}
	}
	last := st.last.Load()
	if last == 0 {
		return plugin.Result{}
	}
	if last+b.breakerSec(count) >= c.Now/1e9 {
		if !b.dynamic {
			return b.result
		}
		res := b.result
		start := len(c.Scratch)
		c.Scratch = b.appendHeaders(c.Scratch, c)
		res.Headers = c.Scratch[start:len(c.Scratch):len(c.Scratch)]
		return res
	}
	return plugin.Result{}
}

// Log counts the upstream's status (0, no upstream response, is ignored).
func (b *breaker) Log(c *plugin.Ctx) {
	s := c.UpstreamStatus
	if c.Req == nil {
		return
	}
	switch {
	case s >= 500 && s <= 599 && b.unhealthy[s-500]:
		st := b.store.loadOrCreate(key(c.Req), c.Now/1e9)
		if st == nil {
			return
		}
		n := st.unhealthy.Add(1)
		st.healthy.Store(0)
		if n%b.failures == 0 {
			st.last.Store(c.Now / 1e9)
		}
	case s >= 200 && s <= 499 && b.healthy[s-200]:
		if b.store.empty() {
			return
		}
		st := b.store.load(key(c.Req))
		if st == nil || st.unhealthy.Load() == 0 {
			return
		}
		if st.healthy.Add(1) >= b.successes {
			st.last.Store(0)
			st.unhealthy.Store(0)
			st.healthy.Store(0)
		}
	}
}

// dropCtl removes control bytes but HTAB from dst[from:].
func dropCtl(dst []byte, from int) []byte {
	w := from
	for _, c := range dst[from:] {
		if c < 0x20 && c != '\t' || c == 0x7f {
			continue
		}
		dst[w] = c
		w++
	}
	return dst[:w]
}
