//go:build !race

package router

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatchNoAlloc proves Match (and the vars it evaluates) allocates
// nothing per request (STYLE §4). The race detector allocates, hence the
// build tag.
func TestMatchNoAlloc(t *testing.T) {
	tbl := buildTable(t,
		route("exact", "/v1/chat/completions", withMethods("POST")),
		route("prefix", "/v1/*"),
		route("host", "/h/*", withHosts("API.example.com")),
		route("wild", "/w/*", withHosts("*.example.com")),
		route("vars", "/canary", withVars(`[["http_x_canary","==","1"],["arg_user","~~","^j"],["arg_age",">",18],
			["host","==","api.example.com"],["remote_addr","ipmatch",["127.0.0.0/8"]],["cookie_s","in",["a","b"]]]`)),
		route("remote", "/r", withRemote("10.0.0.0/8")),
		route("fallback", "/*"),
	)
	f := func(r *Request, wantID string) {
		t.Helper()
		require.Equal(t, wantID, matchID(tbl, r), string(r.Target))
		allocs := testing.AllocsPerRun(200, func() { tbl.Match(r) })
		assert.Zero(t, allocs, string(r.Target))
	}
	f(newRequest(t, "POST", "/v1/chat/completions"), "exact")
	f(newRequest(t, "GET", "/v1/chat/completions"), "prefix")
	f(newRequest(t, "GET", "/h/x", "Host: Api.Example.COM:9080"), "host")
	f(newRequest(t, "GET", "/w/x", "Host: a.b.example.com"), "wild")
	f(newRequest(t, "GET", "/canary?user=jack&age=20", "Host: api.example.com", "X-Canary: 1", "Cookie: s=b"), "vars")
	f(newRequest(t, "GET", "/canary?user=jack&age=x", "Host: api.example.com", "X-Canary: 1"), "fallback")
	f(from(newRequest(t, "GET", "/r"), "10.1.1.1"), "remote")
	f(newRequest(t, "GET", "/nothing/here"), "fallback")
}

func TestEvalNoAlloc(t *testing.T) {
	r := varsReq(t)
	for _, expr := range []string{
		`[["http_x_forwarded_for","ipmatch",["10.0.0.0/8"]],["http_x_num","==",16],["arg_age","<=","1e2"]]`,
		`["OR",["arg_name","~*","^J"],["request_method","==","GET"]]`,
		`[["arg_name","!","ipmatch","::1"],["host","has","api.example.com"],["remote_addr","~~","^192"]]`,
		`[["arg_age",">",1.5e300],["post_arg.model","==","x"]]`,
	} {
		e, err := CompileVars(json.RawMessage(expr))
		require.NoError(t, err, expr)
		e.Eval(r)
		assert.Zero(t, testing.AllocsPerRun(200, func() { e.Eval(r) }), expr)
	}
}

func TestParseNumberNoAlloc(t *testing.T) {
	for _, in := range []string{"12", "1.5e3", "0x1F", "1e400", "-1e-999", "1e99999999999999999999", "17976931348623157e292", "abc"} {
		b := []byte(in)
		assert.Zero(t, testing.AllocsPerRun(10, func() { parseNumber(b) }), in)
	}
}
