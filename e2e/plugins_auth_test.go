package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authGet sends method path to the gateway with optional headers
// ("Name: value") and returns the response and its body.
func authGet(t *testing.T, base, method, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	for _, h := range headers {
		n, v, _ := strings.Cut(h, ": ")
		req.Header.Add(n, v)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

const (
	missingKeyBody = `{"message":"Missing API key in request"}` + "\n" // core.response.exit's newline
	invalidKeyBody = `{"message":"Invalid API key in request"}` + "\n"
)

// checkKeyAuth runs key-auth's guide against a route at path (key-auth
// with default settings) whose consumer user has key: no key → 401
// Missing; a wrong key → 401 Invalid; the right key in the apikey header
// or ?apikey= → 200, and the upstream sees the request with the key.
func checkKeyAuth(t *testing.T, base, path, key, user string, up *upstream) {
	t.Helper()
	hits := up.count()
	resp, body := authGet(t, base, "GET", path)
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, missingKeyBody, body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, `apikey realm="key"`, resp.Header.Get("WWW-Authenticate"))

	resp, body = authGet(t, base, "GET", path, "apikey: wrong-key")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, invalidKeyBody, body)
	assert.Equal(t, `apikey realm="key"`, resp.Header.Get("WWW-Authenticate"))
	resp, body = authGet(t, base, "GET", path+"?apikey=wrong-key")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, invalidKeyBody, body)
	assert.Equal(t, hits, up.count(), "a refused request never reaches the upstream")

	// the client's own consumer headers are replaced: the upstream learns
	// who authenticated from sluice (APISIX attach_consumer), not the client
	resp, body = authGet(t, base, "GET", path, "apikey: "+key, "X-Consumer-Username: admin", "X-Consumer-Custom-ID: 0")
	require.Equal(t, 200, resp.StatusCode, body)
	r, _ := up.lastRequest()
	assert.Equal(t, key, r.Header.Get("apikey"), "without hide_credentials the key goes upstream")
	assert.Len(t, r.Header.Values("X-Consumer-Username"), 1)
	assert.Equal(t, user, r.Header.Get("X-Consumer-Username"), "the consumer's name, not the client's")
	assert.Empty(t, r.Header.Values("X-Consumer-Custom-ID"))

	resp, body = authGet(t, base, "GET", path+"?apikey="+key+"&a=1")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, path+"?apikey="+key+"&a=1", resp.Header.Get("X-Upstream-Path"))
	assert.Equal(t, hits+2, up.count())
}

// TestKeyAuthStandalone: key-auth with consumers from apisix.yaml, on the
// same keep-alive connection as the 401s (a 401 keeps the connection).
func TestKeyAuthStandalone(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", `consumers:
  - username: jack
    plugins:
      key-auth:
        key: auth-one
  - username: rose
    plugins:
      key-auth:
        key: auth-two
`+routesDoc(
		route("1", "/anything", `    plugins:
      key-auth: {}
`, up.addr()),
		route("2", "/hide", `    plugins:
      key-auth:
        hide_credentials: true
`, up.addr()),
		route("3", "/custom", `    plugins:
      key-auth:
        header: X-API-Key
        query: token
`, up.addr()),
		route("4", "/open", "", up.addr()),
	))
	base := gw.url("")
	checkKeyAuth(t, base, "/anything", "auth-one", "jack", up)
	checkKeyAuth(t, base, "/anything", "auth-two", "rose", up)

	// hide_credentials: the header or query argument that carried the
	// key does not reach the upstream; the rest of the request does.
	resp, body := authGet(t, base, "GET", "/hide?a=1", "apikey: auth-one", "X-Other: kept")
	require.Equal(t, 200, resp.StatusCode, body)
	r, _ := up.lastRequest()
	assert.Empty(t, r.Header.Values("apikey"))
	assert.Equal(t, "kept", r.Header.Get("X-Other"))
	assert.Equal(t, "/hide?a=1", r.URL.RequestURI())

	resp, body = authGet(t, base, "GET", "/hide?a=1&apikey=auth-two&b=2")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "/hide?a=1&b=2", resp.Header.Get("X-Upstream-Path"))
	resp, body = authGet(t, base, "GET", "/hide?apikey=auth-two")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "/hide", resp.Header.Get("X-Upstream-Path"))

	// Custom header and query names.
	resp, _ = authGet(t, base, "GET", "/custom", "x-api-key: auth-one")
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = authGet(t, base, "GET", "/custom?token=auth-two")
	assert.Equal(t, 200, resp.StatusCode)
	resp, body = authGet(t, base, "GET", "/custom", "apikey: auth-one")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, missingKeyBody, body)

	// A route without key-auth is open.
	resp, _ = authGet(t, base, "GET", "/open")
	assert.Equal(t, 200, resp.StatusCode)

	// A consumer added to the file is picked up by the watcher.
	gw.writeRoutes(`consumers:
  - username: jack
    plugins:
      key-auth:
        key: auth-new
` + routesDoc(route("1", "/anything", `    plugins:
      key-auth: {}
`, up.addr())))
	waitFor(t, 10*time.Second, "the new key", func() bool {
		resp, _ := authGet(t, base, "GET", "/anything", "apikey: auth-new")
		return resp.StatusCode == 200
	})
	resp, body = authGet(t, base, "GET", "/anything", "apikey: auth-one")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, invalidKeyBody, body)
}

// TestKeyAuthAdminAPI: APISIX's key-auth guide through the Admin API — a
// consumer created with PUT /apisix/admin/consumers, then a route with
// key-auth.
func TestKeyAuthAdminAPI(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)

	code, r := adminDo(t, g, "PUT", "/apisix/admin/consumers", e2eAdminKey, `{"username":"jack","plugins":{"key-auth":{"key":"jack-key"}}}`)
	require.Equal(t, 201, code, r)
	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/1", e2eAdminKey, fmt.Sprintf(`{
  "uri": "/anything",
  "plugins": {"key-auth": {}},
  "upstream": {"type": "roundrobin", "nodes": {%q: 1}}
}`, up.addr()))
	require.Equal(t, 201, code, r)
	checkKeyAuth(t, g.url(""), "/anything", "jack-key", "jack", up)

	// A second consumer, then jack's key changes: the old key stops
	// working at once.
	code, r = adminDo(t, g, "PUT", "/apisix/admin/consumers/rose", e2eAdminKey, `{"plugins":{"key-auth":{"key":"rose-key"}}}`)
	require.Equal(t, 201, code, r)
	code, r = adminDo(t, g, "PUT", "/apisix/admin/consumers", e2eAdminKey, `{"username":"jack","plugins":{"key-auth":{"key":"jack-key-2"}}}`)
	require.Equal(t, 200, code, r)
	resp, _ := authGet(t, g.url(""), "GET", "/anything", "apikey: rose-key")
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = authGet(t, g.url(""), "GET", "/anything", "apikey: jack-key-2")
	assert.Equal(t, 200, resp.StatusCode)
	resp, body := authGet(t, g.url(""), "GET", "/anything", "apikey: jack-key")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, invalidKeyBody, body)

	// A bad key-auth configuration on a route is refused with APISIX's text.
	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/2", e2eAdminKey, fmt.Sprintf(`{
  "uri": "/x", "plugins": {"key-auth": {"hide_credentials": "yes"}},
  "upstream": {"nodes": {%q: 1}}
}`, up.addr()))
	assert.Equal(t, 400, code)
	assert.Contains(t, r["error_msg"], `failed to check the configuration of plugin key-auth err: property "hide_credentials" validation failed: wrong type: expected boolean, got string`)
}

// TestProxyRewrite: the upstream sees the rewritten request.
func TestProxyRewrite(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", routesDoc(
		route("1", "/rewrite", `    plugins:
      proxy-rewrite:
        uri: /get
        host: iresty.com
        method: POST
        headers:
          add: {X-Add: added}
          set: {X-Api-Version: v2, X-Replaced: new}
          remove: [X-Drop]
`, up.addr()),
		route("2", "/re/*", `    plugins:
      proxy-rewrite:
        regex_uri: ["^/re/([^/]+)/(.*)", "/r/$2/$1"]
        headers:
          X-Legacy: "1"
          X-Ver: "$1"
`, up.addr()),
		route("3", "/q", `    plugins:
      proxy-rewrite:
        uri: /get?from=gw
`, up.addr()),
		route("4", "/v1/*", `    plugins:
      proxy-rewrite:
        uri: /api$uri
        headers:
          set: {X-User: "${arg_user ?? anonymous}"}
`, up.addr()),
	))
	base := gw.url("")

	// uri (the client's query kept), host, method, headers add/set/remove.
	resp, body := authGet(t, base, "GET", "/rewrite?a=1&b=2", "X-Drop: gone", "X-Replaced: old", "X-Add: client", "X-Keep: yes")
	require.Equal(t, 200, resp.StatusCode, body)
	r, _ := up.lastRequest()
	assert.Equal(t, "/get?a=1&b=2", r.URL.RequestURI())
	assert.Equal(t, "iresty.com", r.Host)
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "v2", r.Header.Get("X-Api-Version"))
	assert.Equal(t, []string{"new"}, r.Header.Values("X-Replaced"))
	assert.Equal(t, []string{"client", "added"}, r.Header.Values("X-Add"))
	assert.Empty(t, r.Header.Values("X-Drop"))
	assert.Equal(t, "yes", r.Header.Get("X-Keep"))

	// regex_uri with captures, in the path and in a header; legacy headers.
	resp, body = authGet(t, base, "GET", "/re/abc/def/g?x=1")
	require.Equal(t, 200, resp.StatusCode, body)
	r, _ = up.lastRequest()
	assert.Equal(t, "/r/def/g/abc?x=1", r.URL.RequestURI())
	assert.Equal(t, "GET", r.Method)
	assert.Equal(t, "1", r.Header.Get("X-Legacy"))
	assert.Equal(t, "abc", r.Header.Get("X-Ver"))

	// A uri with its own query: the client's follows after '&'.
	resp, _ = authGet(t, base, "GET", "/q?k=v")
	assert.Equal(t, "/get?from=gw&k=v", resp.Header.Get("X-Upstream-Path"))
	resp, _ = authGet(t, base, "GET", "/q")
	assert.Equal(t, "/get?from=gw", resp.Header.Get("X-Upstream-Path"))

	// Variables.
	resp, _ = authGet(t, base, "GET", "/v1/chat/completions?user=jo")
	assert.Equal(t, "/api/v1/chat/completions?user=jo", resp.Header.Get("X-Upstream-Path"))
	r, _ = up.lastRequest()
	assert.Equal(t, "jo", r.Header.Get("X-User"))
	authGet(t, base, "GET", "/v1/models")
	r, _ = up.lastRequest()
	assert.Equal(t, "anonymous", r.Header.Get("X-User"))
}

// TestKeyAuthThenProxyRewrite: key-auth (2500) runs before proxy-rewrite
// (1008): the key taken out of the query by hide_credentials stays out
// after the uri is rewritten.
func TestKeyAuthThenProxyRewrite(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", `consumers:
  - username: jack
    plugins:
      key-auth: {key: auth-one}
`+routesDoc(route("1", "/combo", `    plugins:
      proxy-rewrite:
        uri: /new?x=1
      key-auth:
        hide_credentials: true
`, up.addr())))
	resp, body := authGet(t, gw.url(""), "GET", "/combo?apikey=auth-one&a=1")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "/new?x=1&a=1", resp.Header.Get("X-Upstream-Path"))
	resp, body = authGet(t, gw.url(""), "GET", "/combo?a=1")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, missingKeyBody, body)
}

// TestHiddenKeyStaysHidden: a rewrite that copies request values
// ($args, $arg_apikey, $http_apikey) after key-auth's hide_credentials
// reads the request as key-auth left it, so the key does not come back
// (APISIX rewrites its args and clears the header's cached variable).
func TestHiddenKeyStaysHidden(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", `consumers:
  - username: jack
    plugins:
      key-auth: {key: auth-one}
`+routesDoc(route("1", "/combo", `    plugins:
      proxy-rewrite:
        uri: /new?$args
        headers:
          set:
            X-Orig-Key: "k=$http_apikey"
            X-Orig-Arg: "a=$arg_apikey"
      key-auth:
        hide_credentials: true
`, up.addr())))
	resp, body := authGet(t, gw.url(""), "GET", "/combo?apikey=auth-one&a=1")
	require.Equal(t, 200, resp.StatusCode, body)
	// ($args, then the request's args appended, as APISIX does for a uri with '?')
	assert.Equal(t, "/new?a=1&a=1", resp.Header.Get("X-Upstream-Path"))
	r, _ := up.lastRequest()
	assert.Equal(t, "a=1&a=1", r.URL.RawQuery, "the hidden key came back in the query")
	assert.Equal(t, "a=", r.Header.Get("X-Orig-Arg"), "the hidden argument's value came back")
	resp, body = authGet(t, gw.url(""), "GET", "/combo?b=2", "apikey: auth-one")
	require.Equal(t, 200, resp.StatusCode, body)
	r, _ = up.lastRequest()
	assert.Equal(t, "k=", r.Header.Get("X-Orig-Key"), "the hidden header's value came back")
}

// Global rules run for a request no route matches, as in APISIX: a global
// key-auth answers 401 before anyone learns which paths exist, a global
// limit-count counts those requests, and a request they let through gets
// the 404.
func TestGlobalRulesBeforeNotFound(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", `consumers:
  - username: jack
    plugins:
      key-auth:
        key: auth-one
`+routesDoc(route("1", "/anything", "", up.addr()))+`global_rules:
  - id: g1
    plugins:
      key-auth: {}
      limit-count:
        count: 3
        time_window: 60
        key_type: constant
        key: all
`)
	base := gw.url("")
	resp, body := authGet(t, base, "GET", "/nope")
	assert.Equal(t, 401, resp.StatusCode, body)
	assert.Equal(t, missingKeyBody, body)
	resp, body = authGet(t, base, "GET", "/nope", "apikey: auth-one")
	assert.Equal(t, 404, resp.StatusCode, body)
	assert.Equal(t, `{"error_msg":"404 Route Not Found"}`+"\n", body)
	assert.Equal(t, "2", resp.Header.Get("X-RateLimit-Remaining"), "with the headers the global rules added")
	resp, body = authGet(t, base, "HEAD", "/nope", "apikey: auth-one")
	assert.Equal(t, 404, resp.StatusCode)
	assert.Empty(t, body, "HEAD: no body")
	resp, _ = authGet(t, base, "GET", "/anything", "apikey: auth-one")
	assert.Equal(t, 200, resp.StatusCode, "the route shares the global counter")
	resp, _ = authGet(t, base, "GET", "/nope", "apikey: auth-one")
	assert.Equal(t, 503, resp.StatusCode, "limit-count counted the 404s too")
}

// A traffic-split rule may match on the consumer key-auth found
// (consumer_name), as in APISIX: jack's requests take the canary arm,
// rose's stay on the route's upstream.
func TestSplitOnConsumer(t *testing.T) {
	stable, canary := startUpstream(t, "stable", nil), startUpstream(t, "canary", nil)
	gw := startGateway(t, 1, "", `consumers:
  - username: jack
    plugins:
      key-auth:
        key: auth-one
  - username: rose
    plugins:
      key-auth:
        key: auth-two
`+routesDoc(route("1", "/chat", fmt.Sprintf(`    plugins:
      key-auth: {}
      traffic-split:
        rules:
          - match:
              - vars: [["consumer_name", "==", "jack"]]
            weighted_upstreams:
              - upstream: {name: canary, type: roundrobin, nodes: {%q: 1}}
                weight: 1
`, canary.addr()), stable.addr())))
	for key, want := range map[string]string{"auth-one": "canary", "auth-two": "stable"} {
		resp, body := authGet(t, gw.url(""), "GET", "/chat", "apikey: "+key)
		require.Equal(t, 200, resp.StatusCode, body)
		assert.Equal(t, want, resp.Header.Get("X-Upstream-Name"), key)
	}
}

// chash on $consumer_name hashes on the consumer key-auth found, as
// APISIX's ctx.var does: each consumer sticks to one node and the
// consumers spread over both (all from one client address).
func TestCHashOnConsumer(t *testing.T) {
	a, b := startUpstream(t, "a", nil), startUpstream(t, "b", nil)
	var consumers strings.Builder
	names := []string{"ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"}
	for _, n := range names {
		fmt.Fprintf(&consumers, "  - username: %s\n    plugins:\n      key-auth:\n        key: key-%s\n", n, n)
	}
	gw := startGateway(t, 1, "", "consumers:\n"+consumers.String()+`routes:
  - id: "1"
    uri: /chat
    plugins:
      key-auth: {}
    upstream:
      type: chash
      hash_on: vars_combinations
      key: "$consumer_name"
      nodes:
        "`+a.addr()+`": 1
        "`+b.addr()+`": 1
`)
	seen := map[string]bool{}
	for _, n := range names {
		var node string
		for i := 0; i < 3; i++ {
			resp, body := authGet(t, gw.url(""), "GET", "/chat", "apikey: key-"+n)
			require.Equal(t, 200, resp.StatusCode, body)
			got := resp.Header.Get("X-Upstream-Name")
			if node != "" {
				assert.Equal(t, node, got, "%s sticks to one node", n)
			}
			node = got
		}
		seen[node] = true
	}
	assert.Len(t, seen, 2, "the consumers spread over both nodes")
}
