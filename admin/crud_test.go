package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCRUDRoutes(t *testing.T) {
	clk := newClock(1700000000)
	e := newEnv(t, envOpt{opts: []Option{WithClock(clk.now)}})

	// PUT /routes/{id}: 201 then 200
	r := e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r1", `{"uri":"/a","upstream":{"nodes":[{"host":"127.0.0.1","port":8080,"weight":1}]}}`)
	assert.JSONEq(t, `{"key":"/apisix/routes/r1","value":{"id":"r1","uri":"/a","create_time":1700000000,"update_time":1700000000,
		"upstream":{"nodes":[{"host":"127.0.0.1","port":8080,"weight":1}]}}}`, r.body, "what was sent, plus id and timestamps")
	clk.set(1700000050)
	r = e.must(http.StatusOK, "PUT", "/apisix/admin/routes/r1", `{"uri":"/b","upstream":{"nodes":{"127.0.0.1:8080":1}}}`)
	assert.Equal(t, float64(1700000000), r.value(t)["create_time"])
	assert.Equal(t, float64(1700000050), r.value(t)["update_time"])
	assert.Equal(t, "r1", e.match("GET", "/b"))
	assert.Equal(t, "", e.match("GET", "/a"))

	// PUT /routes with the id in the body (string or integer)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes", `{"id":"r2","uri":"/r2","upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	r = e.must(http.StatusCreated, "PUT", "/apisix/admin/routes", `{"id":3,"uri":"/r3","upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Equal(t, "3", r.value(t)["id"])
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes", `{"uri":"/x","upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.JSONEq(t, `{"error_msg":"missing route id"}`, r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/r9", `{"id":"r8","uri":"/x","upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.JSONEq(t, `{"error_msg":"wrong route id"}`, r.body)

	// GET one: APISIX's item shape
	got := e.must(http.StatusOK, "GET", "/apisix/admin/routes/r2", "").json(t)
	assert.Equal(t, "/apisix/routes/r2", got["key"])
	assert.Greater(t, got["modifiedIndex"], float64(0))
	assert.Greater(t, got["createdIndex"], float64(0))
	assert.Equal(t, "/r2", got["value"].(map[string]any)["uri"])

	// list
	l := e.must(http.StatusOK, "GET", "/apisix/admin/routes", "").json(t)
	assert.Equal(t, float64(3), l["total"])
	first := l["list"].([]any)[0].(map[string]any)
	assert.Equal(t, "/apisix/routes/3", first["key"])
	assert.Contains(t, first, "modifiedIndex")
	assert.JSONEq(t, `{"total":0,"list":[]}`, e.must(http.StatusOK, "GET", "/apisix/admin/services", "").body)
	l = e.must(http.StatusOK, "GET", "/apisix/admin/routes?page=2&page_size=10", "").json(t)
	assert.Equal(t, float64(3), l["total"])
	assert.Empty(t, l["list"])
	e.must(http.StatusBadRequest, "GET", "/apisix/admin/routes?page_size=5", "")

	// DELETE
	r = e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/r2", "")
	assert.JSONEq(t, `{"deleted":"1","key":"/apisix/routes/r2"}`, r.body)
	assert.Equal(t, "", e.match("GET", "/r2"))
	r = e.must(http.StatusNotFound, "DELETE", "/apisix/admin/routes/r2", "")
	assert.JSONEq(t, `{"message":"Key not found"}`, r.body)
	e.must(http.StatusNotFound, "GET", "/apisix/admin/routes/r2", "")
}

func TestPOSTGeneratedIDs(t *testing.T) {
	e := newEnv(t, envOpt{})
	var ids []string
	for i := range 5 {
		r := e.must(http.StatusCreated, "POST", "/apisix/admin/routes", fmt.Sprintf(`{"uri":"/p%d","upstream":{"nodes":{"127.0.0.1:1":1}}}`, i))
		id := r.value(t)["id"].(string)
		assert.Regexp(t, regexp.MustCompile(`^\d{20}$`), id)
		assert.Equal(t, "/apisix/routes/"+id, r.json(t)["key"])
		assert.Equal(t, id, e.match("GET", fmt.Sprintf("/p%d", i)))
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		assert.Less(t, ids[i-1], ids[i], "ids increase")
	}
	r := e.must(http.StatusBadRequest, "POST", "/apisix/admin/routes", `{"id":"x","uri":"/p","upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.JSONEq(t, `{"error_msg":"wrong route id, do not need it"}`, r.body)
	e.must(http.StatusBadRequest, "POST", "/apisix/admin/routes/5", `{"uri":"/p","upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	r = e.must(http.StatusCreated, "POST", "/apisix/admin/upstreams", `{"nodes":{"127.0.0.1:1":1}}`)
	assert.Regexp(t, regexp.MustCompile(`^/apisix/upstreams/\d{20}$`), r.json(t)["key"])
	e.must(http.StatusCreated, "POST", "/apisix/admin/services", `{"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
}

func TestIDs(t *testing.T) {
	e := newEnv(t, envOpt{})
	ok := []string{"a", "A-b_c.d", strings.Repeat("x", 64), "00000000000000000001"}
	for _, id := range ok {
		e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/"+id, `{"nodes":{"127.0.0.1:1":1}}`)
	}
	bad := []string{strings.Repeat("x", 65), "a%20b", "a:b", "%C3%A9t%C3%A9", "a+b"}
	for _, id := range bad {
		r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/upstreams/"+id, `{"nodes":{"127.0.0.1:1":1}}`)
		assert.JSONEq(t, `{"error_msg":"invalid configuration: property \"id\" validation failed: object matches none of the required"}`, r.body, id)
	}
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/upstreams", `{"id":"a b","nodes":{"127.0.0.1:1":1}}`)
	assert.Contains(t, r.body, `property \"id\" validation failed`)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/upstreams", `{"id":true,"nodes":{"127.0.0.1:1":1}}`)
	assert.Contains(t, r.body, `property \"id\" validation failed`)
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t, envOpt{})
	cases := []struct{ path, body, want string }{
		{"/apisix/admin/routes/1", `{"uri":"/a","uir":"/b","upstream":{"nodes":{"127.0.0.1:1":1}}}`,
			`invalid configuration: additional properties forbidden, found uir`},
		{"/apisix/admin/routes/1", `{"uri":1,"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
			`invalid configuration: property "uri" validation failed: wrong type: expected string, got number`},
		{"/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1},"timeout":{"connect":0,"send":1,"read":1}}}`,
			`invalid configuration: property "upstream" validation failed: property "timeout" validation failed: property "connect" validation failed: expected 0 to be greater than 0`},
		{"/apisix/admin/routes/1", `{"uri":"/a","vars":[["arg_x","=","1"]],"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
			`failed to validate the 'vars' expression: invalid operator '='`},
		{"/apisix/admin/routes/1", `{"uri":"/a","host":"a.com","hosts":["b.com"],"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
			`only one of host or hosts is allowed`},
		{"/apisix/admin/routes/1", `{"uri":"/a","create_time":1,"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
			`the property is forbidden:  create_time`},
		{"/apisix/admin/routes/1", `{"uri":"/a","upstream":{"update_time":1,"nodes":{"127.0.0.1:1":1}}}`,
			`the property is forbidden:  upstream.update_time`},
		{"/apisix/admin/upstreams/1", `{"nodes":{"127.0.0.1:1":1},"type":"chash"}`, `missing key`},
		{"/apisix/admin/upstreams/1", `{"nodes":{"127.0.0.1:70000":1}}`, `invalid port 70000`},
		{"/apisix/admin/services/1", `{"upstream":{"nodes":{"127.0.0.1:1":1}},"hosts":[]}`,
			`invalid configuration: property "hosts" validation failed: expect array to have at least 1 items`},
		{"/apisix/admin/consumers/jack", `{"username":"jack","plugins":{"key-auth":{}}}`,
			`invalid plugins configuration: failed to check the configuration of plugin key-auth err: property "key" is required`},
		{"/apisix/admin/consumers/jack", `{"username":"jack","foo":1}`, `invalid configuration: additional properties forbidden, found foo`},
		{"/apisix/admin/consumers/ja.ck", `{"plugins":{}}`, `invalid configuration: property "username" validation failed: failed to match pattern "^[a-zA-Z0-9_\\-]+$" with "ja.ck"`},
		{"/apisix/admin/consumers/jack", `{"username":"jill"}`, `wrong username`},
		{"/apisix/admin/global_rules/1", `{}`, `invalid configuration: property "plugins" is required`},
		{"/apisix/admin/global_rules/1", `{"plugins":{"x":1}}`, `invalid configuration: property "plugins" validation failed: property "x" validation failed: wrong type: expected object, got number`},
		{"/apisix/admin/plugin_configs/1", `{"plugins":{},"uri":"/a"}`, `invalid configuration: additional properties forbidden, found uri`},
		{"/apisix/admin/ssls/1", `{"cert":"x","key":"y","snis":["a.com"]}`, `failed to parse cert-key pair: tls: failed to find any PEM data in certificate input`},
		{"/apisix/admin/ssls/1", `{"snis":["a.com"]}`, `invalid configuration: property "cert" is required`},
		{"/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"traffic-split":{"rules":[{"match":[{"vars":[["arg_x","123","1"]]}]}]}}}`,
			`failed to validate the 'vars' expression: invalid operator '123'`},
		{"/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":{"nodes":{"127.0.0.1:1":1},"rewrite":{}},"weight":1}]}]}}}`,
			`failed to check the configuration of plugin traffic-split err: rules[1].weighted_upstreams[1].upstream: invalid configuration: additional properties forbidden, found rewrite`},
	}
	for _, c := range cases {
		r := e.do("PUT", c.path, c.body)
		if assert.Equal(t, http.StatusBadRequest, r.code, "%s %s: %s", c.path, c.body, r.body) {
			assert.Equal(t, c.want, r.json(t)["error_msg"], c.body)
		}
	}
	assert.JSONEq(t, `{"total":0,"list":[]}`, e.must(http.StatusOK, "GET", "/apisix/admin/routes", "").body, "nothing was stored")
}

func TestReferences(t *testing.T) {
	e := newEnv(t, envOpt{})
	up := `{"nodes":{"127.0.0.1:1":1}}`

	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream_id":"u1"}`)
	assert.JSONEq(t, `{"error_msg":"failed to fetch upstream info by upstream id [u1], response code: 404"}`, r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","service_id":"s1"}`)
	assert.JSONEq(t, `{"error_msg":"failed to fetch service info by service id [s1], response code: 404"}`, r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","plugin_config_id":"p1","upstream":`+up+`}`)
	assert.JSONEq(t, `{"error_msg":"failed to fetch plugin config info by plugin config id [p1], response code: 404"}`, r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/services/s1", `{"upstream_id":"u1"}`)
	assert.JSONEq(t, `{"error_msg":"failed to fetch upstream info by upstream id [u1], response code: 404"}`, r.body)
	split := `{"uri":"/split","upstream":` + up + `,"plugins":{"traffic-split":{"rules":[{"match":[{"vars":[["arg_v","==","2"]]}],"weighted_upstreams":[{"upstream_id":"u2","weight":1},{"weight":1}]}]}}}`
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/split", split)
	assert.Contains(t, r.json(t)["error_msg"], "failed to fetch upstream info by upstream id [u2], response code: 404")

	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u1", up)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u2", up)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s1", `{"upstream_id":"u1"}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/plugin_configs/p1", `{"plugins":{"proxy-rewrite":{"uri":"/x"}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream_id":"u1","plugin_config_id":"p1"}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/2", `{"uri":"/b","service_id":"s1"}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/split", split)
	assert.Equal(t, "2", e.match("GET", "/b"))
	assert.Equal(t, "upstreams/u1", e.pub.Load().Match(newRequest(t, "GET", "/b")).Upstream.Key)

	del := func(path, want string) {
		t.Helper()
		r := e.must(http.StatusBadRequest, "DELETE", path, "")
		assert.JSONEq(t, `{"error_msg":"`+want+`"}`, r.body)
	}
	del("/apisix/admin/upstreams/u1", "can not delete this upstream, route [1] is still using it now")
	del("/apisix/admin/upstreams/u2", "can not delete this upstream, plugin in route [split] is still using it now")
	del("/apisix/admin/services/s1", "can not delete this service directly, route [2] is still using it now")
	del("/apisix/admin/plugin_configs/p1", "can not delete this plugin config, route [1] is still using it now")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/1", "")
	del("/apisix/admin/upstreams/u1", "can not delete this upstream, service [s1] is still using it now")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/plugin_configs/p1", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/2", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/services/s1", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/upstreams/u1", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/split", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/upstreams/u2", "")
}

// The guide form's rule-level upstream_id ({"weight":1,"upstream_id":"gx"})
// is a reference like a weighted_upstreams arm's: it must exist, and the
// upstream cannot be deleted while a route, service, plugin config or
// global rule names it.
func TestGuideFormUpstreamIDReferences(t *testing.T) {
	e := newEnv(t, envOpt{})
	up := `{"nodes":{"127.0.0.1:1":1}}`
	guide := func(uri, id string) string {
		return `{"uri":"` + uri + `","upstream":` + up + `,"plugins":{"traffic-split":{"rules":[{"weight":1,"upstream_id":"` + id + `"},{"weight":1}]}}}`
	}
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/g", guide("/g", "gx"))
	assert.Contains(t, r.json(t)["error_msg"], "failed to fetch upstream info by upstream id [gx], response code: 404")

	for _, id := range []string{"gx", "gs", "gp", "gg"} {
		e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/"+id, up)
	}
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/g", guide("/g", "gx"))
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s", `{"upstream":`+up+`,"plugins":{"traffic-split":{"rules":[{"weight":1,"upstream_id":"gs"}]}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/plugin_configs/p", `{"plugins":{"traffic-split":{"rules":[{"weight":1,"upstream_id":"gp"}]}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/global_rules/1", `{"plugins":{"traffic-split":{"rules":[{"weight":1,"upstream_id":"gg"},{"weight":9}]}}}`)
	for id, owner := range map[string]string{"gx": "route [g]", "gs": "service [s]", "gp": "plugin_config [p]", "gg": "global_rule [1]"} {
		r = e.must(http.StatusBadRequest, "DELETE", "/apisix/admin/upstreams/"+id, "")
		assert.JSONEq(t, `{"error_msg":"can not delete this upstream, plugin in `+owner+` is still using it now"}`, r.body)
	}
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/g", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/upstreams/gx", "")

	// a route another writer stored: an id that does not read does not
	// hide the one that does
	e.foreign(t, "/apisix/routes/f", `{"uri":"/f","upstream":`+up+`,"plugins":{"traffic-split":{"rules":[{"weight":1,"upstream_id":true},{"weight":1,"upstream_id":"gs"}]}}}`)
	e.must(http.StatusOK, "DELETE", "/apisix/admin/services/s", "")
	r = e.must(http.StatusBadRequest, "DELETE", "/apisix/admin/upstreams/gs", "")
	assert.Contains(t, r.body, "plugin in route [f] is still using it now")
}

func TestPatch(t *testing.T) {
	clk := newClock(1700000000)
	e := newEnv(t, envOpt{opts: []Option{WithClock(clk.now)}})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/1",
		`{"uri":"/a","desc":"d","labels":{"env":"prod","team":"ai"},"methods":["GET","POST"],"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:1":1}}}`)
	clk.set(1700000009)

	// merge: objects merge, null deletes, arrays are replaced
	r := e.must(http.StatusOK, "PATCH", "/apisix/admin/routes/1", `{"uri":"/b","desc":null,"labels":{"team":null,"tier":"x"},"methods":["PUT"]}`)
	v := r.value(t)
	assert.Equal(t, "/b", v["uri"])
	assert.NotContains(t, v, "desc")
	assert.Equal(t, map[string]any{"env": "prod", "tier": "x"}, v["labels"])
	assert.Equal(t, []any{"PUT"}, v["methods"])
	assert.Equal(t, float64(1700000000), v["create_time"])
	assert.Equal(t, float64(1700000009), v["update_time"])
	assert.Equal(t, "1", e.match("PUT", "/b"))
	assert.Equal(t, "", e.match("GET", "/b"))

	// sub-path: the subtree is replaced
	r = e.must(http.StatusOK, "PATCH", "/apisix/admin/routes/1/upstream/nodes", `{"127.0.0.2:2":5}`)
	assert.Equal(t, map[string]any{"127.0.0.2:2": float64(5)}, r.value(t)["upstream"].(map[string]any)["nodes"])
	assert.Equal(t, "roundrobin", r.value(t)["upstream"].(map[string]any)["type"])
	addr := e.pub.Load().Match(newRequest(t, "PUT", "/b")).Upstream.Nodes[0].Addrs[0].String()
	assert.Equal(t, "127.0.0.2:2", addr)
	r = e.must(http.StatusOK, "PATCH", "/apisix/admin/routes/1/uri", `"/c"`)
	assert.Equal(t, "/c", r.value(t)["uri"])
	r = e.must(http.StatusOK, "PATCH", "/apisix/admin/routes/1/methods", `["GET"]`)
	assert.Equal(t, []any{"GET"}, r.value(t)["methods"])
	assert.Equal(t, "1", e.match("GET", "/c"))

	// errors
	r = e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1", `{"uri":7}`)
	assert.Contains(t, r.body, `property \"uri\" validation failed`)
	r = e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1/uri/x", `"/d"`)
	assert.JSONEq(t, `{"error_msg":"invalid sub-path: /uri"}`, r.body)
	r = e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1", `{"update_time":5}`)
	assert.JSONEq(t, `{"error_msg":"the property is forbidden:  update_time"}`, r.body)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1/create_time", `5`)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1", `{"id":"2"}`)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1", `[1]`)
	e.must(http.StatusNotFound, "PATCH", "/apisix/admin/routes/9", `{"uri":"/x"}`)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1", ``)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1", `{"upstream":null}`) // nothing to route to
	assert.Equal(t, "/c", e.must(http.StatusOK, "GET", "/apisix/admin/routes/1", "").value(t)["uri"], "failed patches changed nothing")

	// PATCH on an upstream used by a route rebuilds the route
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u", `{"nodes":{"127.0.0.1:1":1}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/2", `{"uri":"/u","upstream_id":"u"}`)
	// (a merge patch merges the nodes map: RFC 7386, and APISIX's docs)
	r = e.must(http.StatusOK, "PATCH", "/apisix/admin/upstreams/u", `{"nodes":{"127.0.0.3:3":1,"127.0.0.1:1":null}}`)
	assert.Equal(t, map[string]any{"127.0.0.3:3": float64(1)}, r.value(t)["nodes"])
	assert.Equal(t, "127.0.0.3:3", e.pub.Load().Match(newRequest(t, "GET", "/u")).Upstream.Nodes[0].Addrs[0].String())
}

func TestConsumers(t *testing.T) {
	e := newEnv(t, envOpt{})
	r := e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{"key-auth":{"key":"auth-one"}}}`)
	assert.Equal(t, "/apisix/consumers/jack", r.json(t)["key"])
	v := r.value(t)
	assert.Equal(t, "jack", v["username"])
	assert.NotContains(t, v, "id", "APISIX's consumer has no id")
	assert.Equal(t, mask, v["plugins"].(map[string]any)["key-auth"].(map[string]any)["key"], "the key is masked in the PUT response")

	e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers/jill", `{"plugins":{"key-auth":{"key":"auth-two"}}}`)
	e.must(http.StatusOK, "PUT", "/apisix/admin/consumers/jill", `{"username":"jill","plugins":{"key-auth":{"key":"auth-two"}}}`)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/consumers/john", `{"plugins":{"key-auth":{"key":"auth-one"}}}`)
	assert.JSONEq(t, `{"error_msg":"duplicate key found with consumer: jack"}`, r.body)
	e.must(http.StatusBadRequest, "PUT", "/apisix/admin/consumers", `{"plugins":{}}`)

	for _, path := range []string{"/apisix/admin/consumers/jack", "/apisix/admin/consumers"} {
		body := e.must(http.StatusOK, "GET", path, "").body
		assert.NotContains(t, body, "auth-one", path)
		assert.Contains(t, body, `"key":"******"`, path)
	}
	// the store keeps the secret
	kv, ok, err := e.st.Get(t.Context(), "/apisix/consumers/jack")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Contains(t, string(kv.Value), "auth-one")

	e.must(http.StatusOK, "DELETE", "/apisix/admin/consumers/jack", "")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers/john", `{"plugins":{"key-auth":{"key":"auth-one"}}}`)
}

func TestSecretsMasked(t *testing.T) {
	e := newEnv(t, envOpt{})
	cert, key := selfSigned(t, "example.com")
	body, _ := json.Marshal(map[string]any{"cert": cert, "key": key, "snis": []string{"example.com", "*.example.com"}})
	r := e.must(http.StatusCreated, "PUT", "/apisix/admin/ssls/1", string(body))
	assert.NotContains(t, r.value(t), "key", "APISIX never returns an ssl's key")
	assert.Equal(t, cert, r.value(t)["cert"])
	for _, path := range []string{"/apisix/admin/ssls/1", "/apisix/admin/ssls"} {
		b := e.must(http.StatusOK, "GET", path, "").body
		assert.NotContains(t, b, "PRIVATE KEY", path)
		assert.Contains(t, b, "CERTIFICATE", path)
	}
	r = e.must(http.StatusOK, "PATCH", "/apisix/admin/ssls/1", `{"snis":["example.org"]}`)
	assert.NotContains(t, r.body, "PRIVATE KEY")
	_, otherKey := selfSigned(t, "other.com")
	bad, _ := json.Marshal(map[string]any{"cert": cert, "key": otherKey, "snis": []string{"example.com"}})
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/ssls/2", string(bad))
	assert.Contains(t, r.body, "failed to parse cert-key pair: tls: private key does not match public key")

	// a route's plugin passwords and an upstream's TLS client key
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1}},
		"plugins":{"limit-count":{"count":1,"time_window":1,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_password":"hunter2"}}}`)
	b := e.must(http.StatusOK, "GET", "/apisix/admin/routes/1", "").body
	assert.NotContains(t, b, "hunter2")
	assert.Contains(t, b, `"key":"remote_addr"`, "a route plugin's key is not a secret")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"127.0.0.1:1":1},"tls":{"client_cert":%q,"client_key":%q}}`, cert, key))
	b = e.must(http.StatusOK, "GET", "/apisix/admin/upstreams", "").body
	assert.NotContains(t, b, "PRIVATE KEY")
	assert.Contains(t, b, `"client_key":"******"`)

	// a field name spelled with a JSON escape is still masked
	e.must(http.StatusOK, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1}},
		"plugins":{"limit-count":{"count":1,"time_window":1,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_\u0070assword":"TOPSECRET"}}}`)
	for _, path := range []string{"/apisix/admin/routes/1", "/apisix/admin/routes"} {
		assert.NotContains(t, e.must(http.StatusOK, "GET", path, "").body, "TOPSECRET", path)
	}
}

// TestMaskNotStoredAsSecret: the mask GET shows in place of a secret, sent
// back by a GET → edit → PUT round trip, is refused instead of becoming
// the secret (a consumer whose key-auth key is "******").
func TestMaskNotStoredAsSecret(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers/jack", `{"plugins":{"key-auth":{"key":"auth-one"}}}`)
	got := e.must(http.StatusOK, "GET", "/apisix/admin/consumers/jack", "").value(t)
	delete(got, "create_time") // (PUT refuses the timestamps, as APISIX)
	delete(got, "update_time")
	back, _ := json.Marshal(got)
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/consumers/jack", string(back))
	assert.Contains(t, r.body, "plugins.key-auth.key")
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1}},
		"plugins":{"limit-count":{"count":1,"time_window":1,"policy":"redis","redis_host":"127.0.0.1","redis_password":"******"}}}`)
	assert.Contains(t, r.body, "redis_password")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":1}},
		"plugins":{"limit-count":{"count":1,"time_window":1,"policy":"redis","redis_host":"127.0.0.1","redis_password":"hunter2"}}}`)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/1/plugins/limit-count/redis_password", `"******"`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/2", `{"uri":"/b","desc":"******","upstream":{"nodes":{"127.0.0.1:1":1}}}`) // not a secret field
}

func TestGlobalRulesAndPluginConfigs(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/global_rules/1", `{"plugins":{"prometheus":{}}}`)
	e.must(http.StatusOK, "PATCH", "/apisix/admin/global_rules/1", `{"plugins":{"limit-count":{"count":2,"time_window":60}}}`)
	v := e.must(http.StatusOK, "GET", "/apisix/admin/global_rules/1", "").value(t)
	assert.Len(t, v["plugins"], 2)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/plugin_configs/1", `{"desc":"d","plugins":{"proxy-rewrite":{"uri":"/x"}}}`)
	e.must(http.StatusOK, "DELETE", "/apisix/admin/global_rules/1", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/plugin_configs/1", "")
}

// selfSigned returns a PEM certificate and ECDSA key for host.
func selfSigned(t testing.TB, host string) (certPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
}

// ?ttl= asks APISIX for a key that expires; sluice has none, so a write
// carrying it is refused instead of storing a route that never expires.
func TestTTLRefused(t *testing.T) {
	e := newEnv(t, envOpt{})
	body := `{"uri":"/tmp","upstream":{"nodes":{"127.0.0.1:1":1}}}`
	for _, c := range []struct{ method, path string }{
		{"PUT", "/apisix/admin/routes/tmp?ttl=60"},
		{"PUT", "/apisix/admin/routes/tmp?ttl=abc"},
		{"PUT", "/apisix/admin/routes/tmp?ttl="},
		{"PUT", "/apisix/admin/routes/tmp?ttl=5;x"},
		{"PUT", "/apisix/admin/routes/tmp?a=1&%74tl=5"},
		{"POST", "/apisix/admin/routes?ttl=60"},
	} {
		r := e.must(http.StatusBadRequest, c.method, c.path, body)
		assert.Contains(t, r.json(t)["error_msg"], "sluice", c.path)
		assert.Contains(t, r.json(t)["error_msg"], "ttl", c.path)
	}
	l := e.must(http.StatusOK, "GET", "/apisix/admin/routes", "").json(t)
	assert.Equal(t, float64(0), l["total"], "nothing was stored")
	assert.Equal(t, "", e.match("GET", "/tmp"))

	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/tmp", body)
	e.must(http.StatusBadRequest, "PATCH", "/apisix/admin/routes/tmp?ttl=60", `{"uri":"/tmp2"}`)
	assert.Equal(t, "tmp", e.match("GET", "/tmp"), "the refused PATCH changed nothing")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/tmp?ttl=60", "") // nothing to expire: ignored, as APISIX
}

// An integer may be written as any number whose value is integral, as
// APISIX's jsonschema (on lua-cjson's doubles) accepts it: the reviewer's
// {"priority":10.0} and node weight 1.0, and the same in every plugin.
func TestIntegralNumbers(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":[{"host":"127.0.0.1","port":8.0e1,"weight":1.0}],"retries":1.0}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/low", `{"uri":"/p/*","upstream_id":"u1"}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/high", `{"uri":"/p/*","priority":10.0,"status":1.0,
		"upstream":{"nodes":{"127.0.0.1:8080":1.0},"keepalive_pool":{"size":1e2,"idle_timeout":60,"requests":1E3}},
		"plugins":{"limit-count":{"count":1e2,"time_window":60.0},
			"api-breaker":{"break_response_code":5.02e2,"unhealthy":{"http_statuses":[500.0],"failures":3.0}},
			"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u1","weight":1.0},{"weight":1e0}]}]}}}`)
	assert.Equal(t, "high", e.match("GET", "/p/x"), "priority 10.0 is 10")
	e.must(http.StatusOK, "PATCH", "/apisix/admin/routes/low", `{"priority":2e1}`)
	assert.Equal(t, "low", e.match("GET", "/p/x"), "priority 2e1 is 20")
	r := e.must(http.StatusCreated, "PUT", "/apisix/admin/routes", `{"id":7.0,"uri":"/seven","upstream_id":"u1"}`)
	assert.Equal(t, "7", r.value(t)["id"])
	// an integral id in another syntax names the same upstream everywhere
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/9", `{"nodes":{"127.0.0.1:1":1}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/nine", `{"uri":"/nine","upstream_id":9.0,
		"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":9e0}]}]}}}`)
	e.must(http.StatusOK, "PUT", "/apisix/admin/routes/nine", `{"uri":"/nine","upstream_id":"u1",
		"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":9e0}]}]}}}`)
	r = e.must(http.StatusBadRequest, "DELETE", "/apisix/admin/upstreams/9", "")
	assert.JSONEq(t, `{"error_msg":"can not delete this upstream, plugin in route [nine] is still using it now"}`, r.body)

	for body, want := range map[string]string{
		`{"uri":"/a","priority":10.5,"upstream_id":"u1"}`:                                                                                    `invalid configuration: property "priority" validation failed: wrong type: expected integer, got number`,
		`{"uri":"/a","priority":1e19,"upstream_id":"u1"}`:                                                                                    `invalid configuration: property "priority" validation failed: wrong type: expected integer, got number`,
		`{"uri":"/a","upstream":{"nodes":{"127.0.0.1:1":0.5}}}`:                                                                              `failed to validate 127.0.0.1:1 (matching ".*"): wrong type: expected integer, got number`,
		`{"uri":"/a","upstream_id":"u1","plugins":{"limit-count":{"count":1.5,"time_window":60}}}`:                                           `property "count" validation failed: wrong type: expected integer, got number`,
		`{"uri":"/a","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"u1","weight":0.5}]}]}},"upstream_id":"u1"}`: `weight: wrong type: expected integer, got number`,
	} {
		r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/bad", body)
		assert.Contains(t, r.json(t)["error_msg"], want, body)
	}
}
