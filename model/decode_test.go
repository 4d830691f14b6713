package model

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeRoute(t *testing.T) {
	r, err := DecodeRoute([]byte(`{
		"id": 1,
		"name": "chat",
		"uri": "/chat/completions",
		"methods": ["POST"],
		"hosts": ["*.example.com"],
		"remote_addrs": ["10.0.0.0/8"],
		"vars": [["http_x_canary", "==", "1"]],
		"priority": 10,
		"status": 0,
		"enable_websocket": true,
		"labels": {"team": "ai"},
		"timeout": {"connect": 1, "send": 2.5, "read": 60},
		"plugins": {"proxy-rewrite": {"uri": "/v1/chat/completions"}},
		"plugin_config_id": "pc1",
		"service_id": 7,
		"upstream": {
			"type": "chash", "hash_on": "header", "key": "x-user",
			"nodes": {"127.0.0.1:8000": 1},
			"scheme": "https", "pass_host": "rewrite", "upstream_host": "api.example.com",
			"retries": 0, "retry_timeout": 1.5,
			"tls": {"verify": false},
			"checks": {"active": {"http_path": "/healthz"}}
		}
	}`))
	require.NoError(t, err)
	require.NoError(t, r.Validate())
	zero, retries, verify := 0, 0, false
	assert.Equal(t, ID("1"), r.ID)
	assert.Equal(t, "/chat/completions", r.URI)
	assert.Equal(t, []string{"POST"}, r.Methods)
	assert.Equal(t, []string{"*.example.com"}, r.Hosts)
	assert.Equal(t, []string{"10.0.0.0/8"}, r.RemoteAddrs)
	assert.JSONEq(t, `[["http_x_canary", "==", "1"]]`, string(r.Vars))
	assert.Equal(t, 10, r.Priority)
	assert.Equal(t, &zero, r.Status)
	assert.True(t, r.EnableWebsocket)
	assert.Equal(t, map[string]string{"team": "ai"}, r.Labels)
	assert.Equal(t, &Timeout{Connect: 1, Send: 2.5, Read: 60}, r.Timeout)
	assert.JSONEq(t, `{"uri": "/v1/chat/completions"}`, string(r.Plugins["proxy-rewrite"]))
	assert.Equal(t, ID("pc1"), r.PluginConfigID)
	assert.Equal(t, ID("7"), r.ServiceID)
	u := r.Upstream
	require.NotNil(t, u)
	assert.Equal(t, "chash", u.Type)
	assert.Equal(t, "header", u.HashOn)
	assert.Equal(t, "x-user", u.Key)
	assert.Equal(t, Nodes{{Host: "127.0.0.1", Port: 8000, Weight: 1}}, u.Nodes)
	assert.Equal(t, "https", u.Scheme)
	assert.Equal(t, "rewrite", u.PassHost)
	assert.Equal(t, "api.example.com", u.UpstreamHost)
	assert.Equal(t, &retries, u.Retries)
	assert.Equal(t, 1.5, u.RetryTimeout)
	assert.Equal(t, &UpstreamTLS{Verify: &verify}, u.TLS)
	assert.JSONEq(t, `{"active": {"http_path": "/healthz"}}`, string(u.Checks))
}

// An integer field takes an integral value in any number syntax, as
// APISIX's jsonschema does (lua-cjson reads every number as a double):
// {"priority":10.0} is priority 10. A fraction is still refused.
func TestDecodeIntegralNumbers(t *testing.T) {
	r, err := DecodeRoute([]byte(`{"uri":"/","priority":10.0,"status":1.0,"id":2e0,
		"plugins":{"limit-count":{"count":1.0}},"vars":[["arg_x","==",1.0]],
		"upstream":{"nodes":[{"host":"a","weight":1.0}],"retries":2.0,"retry_timeout":1.0,
			"keepalive_pool":{"size":1e2,"idle_timeout":60,"requests":1E3}}}`))
	require.NoError(t, err)
	require.NoError(t, r.Validate())
	one, two := 1, 2
	assert.Equal(t, 10, r.Priority)
	assert.Equal(t, &one, r.Status)
	assert.Equal(t, ID("2"), r.ID)
	assert.Equal(t, `{"count":1.0}`, string(r.Plugins["limit-count"]), "raw fields are left as sent")
	assert.Equal(t, `[["arg_x","==",1.0]]`, string(r.Vars))
	require.NotNil(t, r.Upstream)
	assert.Equal(t, Nodes{{Host: "a", Weight: 1}}, r.Upstream.Nodes)
	assert.Equal(t, &two, r.Upstream.Retries)
	assert.Equal(t, &KeepalivePool{Size: 100, IdleTimeout: 60, Requests: 1000}, r.Upstream.KeepalivePool)

	r, err = DecodeRoute([]byte(`{"uri":"/","priority":-1e1}`))
	require.NoError(t, err)
	assert.Equal(t, -10, r.Priority)
	u, err := DecodeUpstream([]byte(`{"nodes":{"a:80":1.0},"retries":0.0}`))
	require.NoError(t, err)
	assert.Equal(t, Nodes{{Host: "a", Port: 80, Weight: 1}}, u.Nodes)
	b, err := json.Marshal(u)
	require.NoError(t, err)
	assert.JSONEq(t, `{"nodes":{"a:80":1.0},"retries":0}`, string(b), "nodes echoed as sent")

	// the lenient reader of a route another writer stored broken agrees
	m := DecodeRouteMatch([]byte(`{"uri":"/","priority":10.0}`), errors.New("x"))
	require.NotNil(t, m)
	assert.Equal(t, 10, m.Priority)

	const ic = "invalid configuration: "
	for in, want := range map[string]string{
		`{"uri":"/","priority":10.5}`:                                        ic + `property "priority" validation failed: wrong type: expected integer, got number`,
		`{"uri":"/","priority":1e19}`:                                        ic + `property "priority" validation failed: wrong type: expected integer, got number`,
		`{"uri":"/","upstream":{"nodes":{},"retries":0.5}}`:                  ic + `property "upstream" validation failed: property "retries" validation failed: wrong type: expected integer, got number`,
		`{"uri":"/","upstream":{"nodes":{},"keepalive_pool":{"size":1e-1}}}`: ic + `property "upstream" validation failed: property "keepalive_pool" validation failed: property "size" validation failed: wrong type: expected integer, got number`,
	} {
		_, err := DecodeRoute([]byte(in))
		assert.EqualError(t, err, want, in)
	}
}

func TestDecodeRouteErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		r, err := DecodeRoute([]byte(in))
		assert.Nil(t, r, in)
		assert.EqualError(t, err, want, in)
	}
	const ic = "invalid configuration: "

	// Syntax, and the top-level type.
	f(`{"uri":`, "invalid request body: unexpected end of JSON input")
	f(`{"uri":"/"} {}`, "invalid request body: invalid character '{' after top-level value")
	f(``, "invalid request body: unexpected end of JSON input")
	f(`[]`, ic+"wrong type: expected object, got table")
	f(`null`, ic+"wrong type: expected object, got userdata")

	// additionalProperties=false, with exact-case keys and nested paths.
	f(`{"uri":"/","foo":1}`, ic+"additional properties forbidden, found foo")
	f(`{"URI":"/"}`, ic+"additional properties forbidden, found URI")
	f(`{"uri":"/","upstream":{"nodes":{},"Type":"chash"}}`, ic+`property "upstream" validation failed: additional properties forbidden, found Type`)
	f(`{"uri":"/","timeout":{"connect":1,"send":1,"read":1,"write":1}}`, ic+`property "timeout" validation failed: additional properties forbidden, found write`)
	f(`{"uri":"/","upstream":{"nodes":{},"keepalive_pool":{"max":1}}}`, ic+`property "upstream" validation failed: property "keepalive_pool" validation failed: additional properties forbidden, found max`)
	f(`{"uri":"/","upstream":{"nodes":{},"tls":{"client_cert_id":1}}}`, ic+`property "upstream" validation failed: property "tls" validation failed: property "client_cert_id" validation failed: not supported by sluice`)
	f(`{"uri":"/","filter_func":"function(vars) return true end"}`, ic+`property "filter_func" validation failed: not supported by sluice`)
	f(`{"uri":"/","upstream":{"service_name":"a","discovery_type":"dns"}}`, ic+`property "upstream" validation failed: property "discovery_type" validation failed: not supported by sluice`)

	// Types.
	f(`{"uri":5}`, ic+`property "uri" validation failed: wrong type: expected string, got number`)
	f(`{"uri":"/","methods":"GET"}`, ic+`property "methods" validation failed: wrong type: expected array, got string`)
	f(`{"uri":"/","methods":[1]}`, ic+`property "methods" validation failed: wrong type: expected string, got number`)
	f(`{"uri":"/","priority":"1"}`, ic+`property "priority" validation failed: wrong type: expected integer, got string`)
	f(`{"uri":"/","priority":1.5}`, ic+`property "priority" validation failed: wrong type: expected integer, got number`)
	f(`{"uri":"/","enable_websocket":"yes"}`, ic+`property "enable_websocket" validation failed: wrong type: expected boolean, got string`)
	f(`{"uri":"/","plugins":[]}`, ic+`property "plugins" validation failed: wrong type: expected object, got table`)
	f(`{"uri":"/","labels":{"a":1}}`, ic+`property "labels" validation failed: wrong type: expected string, got number`)
	f(`{"uri":"/","timeout":"5s"}`, ic+`property "timeout" validation failed: wrong type: expected object, got string`)
	f(`{"uri":"/","upstream":"u1"}`, ic+`property "upstream" validation failed: wrong type: expected object, got string`)
	f(`{"uri":"/","upstream":{"nodes":{},"retries":true}}`, ic+`property "upstream" validation failed: property "retries" validation failed: wrong type: expected integer, got boolean`)
	f(`{"uri":"/","upstream":{"nodes":{},"timeout":{"connect":"1","send":1,"read":1}}}`, ic+`property "upstream" validation failed: property "timeout" validation failed: property "connect" validation failed: wrong type: expected number, got string`)
	f(`{"uri":"/","upstream":{"nodes":{},"keepalive_pool":{"size":1.5}}}`, ic+`property "upstream" validation failed: property "keepalive_pool" validation failed: property "size" validation failed: wrong type: expected integer, got number`)
	f(`{"uri":"/","upstream":{"nodes":{},"tls":{"verify":"no"}}}`, ic+`property "upstream" validation failed: property "tls" validation failed: property "verify" validation failed: wrong type: expected boolean, got string`)

	// ids: a string of 1–64 or an integer ≥ 1 (APISIX's anyOf text).
	f(`{"uri":"/","id":true}`, ic+`property "id" validation failed: object matches none of the required`)
	f(`{"uri":"/","id":""}`, ic+`property "id" validation failed: object matches none of the required`)
	f(`{"uri":"/","upstream_id":0}`, ic+`property "upstream_id" validation failed: object matches none of the required`)
	f(`{"uri":"/","service_id":1.5}`, ic+`property "service_id" validation failed: object matches none of the required`)

	// Required keys and empty strings.
	f(`{"uri":"/","timeout":{"connect":1,"read":1}}`, ic+`property "timeout" validation failed: property "send" is required`)
	f(`{"uri":""}`, ic+`property "uri" validation failed: string too short, expected at least 1, got 0`)
	f(`{"uri":"/","name":""}`, ic+`property "name" validation failed: string too short, expected at least 1, got 0`)
	f(`{"uri":"/","upstream":{"nodes":{},"scheme":""}}`, ic+`property "upstream" validation failed: property "scheme" validation failed: matches none of the enum values`)

	// Nodes, with their path.
	f(`{"uri":"/","upstream":{"nodes":"a"}}`, ic+`property "upstream" validation failed: property "nodes" validation failed: object matches none of the required`)
	f(`{"uri":"/","upstream":{"nodes":[{"host":"a"}]}}`, ic+`property "upstream" validation failed: property "nodes" validation failed: failed to validate item 1: property "weight" is required`)
	f(`{"uri":"/","upstream":{"nodes":{"a:99999":1}}}`, `invalid port 99999`)
}

func TestDecodeUpstream(t *testing.T) {
	u, err := DecodeUpstream([]byte(`{"id":"u1","nodes":[{"host":"a","port":80,"weight":1,"priority":1}],"timeout":{"connect":1,"send":2,"read":3}}`))
	require.NoError(t, err)
	require.NoError(t, u.Validate())
	assert.Equal(t, ID("u1"), u.ID)
	assert.Equal(t, Nodes{{Host: "a", Port: 80, Weight: 1, Priority: 1}}, u.Nodes)

	_, err = DecodeUpstream([]byte(`{"nodes":{},"upstream_id":"1"}`))
	assert.EqualError(t, err, "invalid configuration: additional properties forbidden, found upstream_id")
	_, err = DecodeUpstream([]byte(`{"nodes":{},"timeout":{"connect":1,"send":1,"read":"x"}}`))
	assert.EqualError(t, err, `invalid configuration: property "timeout" validation failed: property "read" validation failed: wrong type: expected number, got string`)
	_, err = DecodeUpstream([]byte(`{"nodes":{"a:1":-1}}`))
	require.NoError(t, err, "ranges are Validate's")
	_, err = DecodeUpstream([]byte(`{"nodes":{"a":"1"}}`))
	assert.EqualError(t, err, `invalid configuration: property "nodes" validation failed: failed to validate a (matching ".*"): wrong type: expected integer, got string`)
}

func TestDecodeService(t *testing.T) {
	s, err := DecodeService([]byte(`{"id":"s1","upstream_id":3,"plugins":{"limit-count":{"count":1}},"hosts":["a.com"],"enable_websocket":true}`))
	require.NoError(t, err)
	require.NoError(t, s.Validate())
	assert.Equal(t, ID("3"), s.UpstreamID)
	assert.Equal(t, []string{"a.com"}, s.Hosts)

	_, err = DecodeService([]byte(`{"uri":"/"}`))
	assert.EqualError(t, err, "invalid configuration: additional properties forbidden, found uri")
	_, err = DecodeService([]byte(`{"upstream":{"nodes":{},"bad":1}}`))
	assert.EqualError(t, err, `invalid configuration: property "upstream" validation failed: additional properties forbidden, found bad`)
	_, err = DecodeService([]byte(`{"script":"local x = 1"}`))
	assert.EqualError(t, err, `invalid configuration: property "script" validation failed: not supported by sluice`)
}

func TestDecodeErrorIsError(t *testing.T) {
	_, err := DecodeRoute([]byte(`{"uri":"/","upstream":{"nodes":{},"timeout":{"connect":1}}}`))
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, []string{"upstream", "timeout"}, e.Path)
	assert.Equal(t, `property "send" is required`, e.Reason)
}

func TestForbidTimestamps(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		err := ForbidTimestamps([]byte(in))
		if want == "" {
			assert.NoError(t, err, in)
			return
		}
		assert.EqualError(t, err, want, in)
	}
	f(`{"uri":"/"}`, "")
	f(`not json`, "")
	f(`[1]`, "")
	f(`{"uri":"/","create_time":1}`, "the property is forbidden:  create_time")
	f(`{"uri":"/","update_time":1,"create_time":1}`, "the property is forbidden:  create_time")
	f(`{"uri":"/","update_time":null}`, "the property is forbidden:  update_time")
	f(`{"upstream":{"nodes":{},"update_time":1}}`, "the property is forbidden:  upstream.update_time")
	f(`{"plugins":{"create_time":1}}`, "the property is forbidden:  plugins.create_time")
	f(`{"upstream":"x","plugins":3}`, "")
}

// The timestamps are part of the schema (the server writes them), so the
// decoders accept them; ForbidTimestamps is the Admin API's check.
func TestDecodeKeepsTimestamps(t *testing.T) {
	r, err := DecodeRoute([]byte(`{"uri":"/","plugins":{"a":{}},"create_time":1700000000,"update_time":1700000001}`))
	require.NoError(t, err)
	assert.Equal(t, int64(1700000000), r.CreateTime)
	assert.Equal(t, int64(1700000001), r.UpdateTime)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"uri":"/","plugins":{"a":{}},"create_time":1700000000,"update_time":1700000001}`, string(b))
}
