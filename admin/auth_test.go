package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, envOpt{})
	body := `{"uri":"/a","upstream":{"nodes":{"127.0.0.1:80":1}}}`
	tokenErr := func(r resp, desc string) {
		t.Helper()
		assert.Equal(t, http.StatusUnauthorized, r.code, r.body)
		assert.JSONEq(t, `{"error_msg":"failed to check token","description":"`+desc+`"}`, r.body)
		assert.True(t, strings.HasSuffix(r.body, "}\n"), "a trailing newline, as APISIX")
		assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
		assert.Equal(t, "v3", r.hdr.Get("X-API-VERSION"))
	}

	tokenErr(e.do("GET", "/apisix/admin/routes", "", "nokey"), "missing apikey")
	tokenErr(e.do("PUT", "/apisix/admin/routes/1", body, "nokey"), "missing apikey")
	tokenErr(e.do("GET", "/apisix/admin/routes", "", "X-API-KEY: wrong"), "wrong apikey")
	tokenErr(e.do("GET", "/apisix/admin/routes", "", "X-API-KEY: "+testAdminKey+"x"), "wrong apikey")
	tokenErr(e.do("GET", "/apisix/admin/routes", "", "X-API-KEY: "+testAdminKey[:40]), "wrong apikey")

	// admin key: read and write
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/1", body)
	e.must(http.StatusOK, "GET", "/apisix/admin/routes/1", "")

	// viewer: GET only
	e.must(http.StatusOK, "GET", "/apisix/admin/routes/1", "", "X-API-KEY: "+testViewerKey)
	e.must(http.StatusOK, "GET", "/apisix/admin/routes", "", "X-API-KEY: "+testViewerKey)
	for _, m := range []string{"PUT", "POST", "PATCH", "DELETE"} {
		path := "/apisix/admin/routes/1"
		if m == "POST" {
			path = "/apisix/admin/routes"
		}
		tokenErr(e.do(m, path, body, "X-API-KEY: "+testViewerKey), "invalid method for role viewer")
	}
	e.must(http.StatusOK, "GET", "/apisix/admin/routes/1", "") // untouched

	// ?api_key= and the X-API-KEY cookie
	e.must(http.StatusOK, "GET", "/apisix/admin/routes?api_key="+testAdminKey, "", "nokey")
	e.must(http.StatusOK, "PUT", "/apisix/admin/routes/1?api_key="+testAdminKey, body, "nokey")
	e.must(http.StatusOK, "GET", "/apisix/admin/routes", "", "nokey", "Cookie: X-API-KEY="+testAdminKey)
	// APISIX order: the argument wins over the header, the header over the cookie.
	tokenErr(e.do("GET", "/apisix/admin/routes?api_key=wrong", "", "X-API-KEY: "+testAdminKey), "wrong apikey")
	e.must(http.StatusOK, "GET", "/apisix/admin/routes?api_key="+testAdminKey, "", "X-API-KEY: wrong")
	tokenErr(e.do("GET", "/apisix/admin/routes", "", "X-API-KEY: wrong", "Cookie: X-API-KEY="+testAdminKey), "wrong apikey")
	tokenErr(e.do("PUT", "/apisix/admin/routes/1?api_key="+testViewerKey, body, "nokey"), "invalid method for role viewer")

	// HEAD /apisix/admin: 200 without a key (APISIX http_head_route)
	r := e.do("HEAD", "/apisix/admin", "", "nokey")
	assert.Equal(t, http.StatusOK, r.code)
	assert.Empty(t, r.body)
	tokenErr(e.do("HEAD", "/apisix/admin/routes", "", "nokey"), "missing apikey")

	// allow_admin (default 127.0.0.0/24) is checked before the key
	for _, addr := range []string{"10.1.2.3:5000", "127.0.1.1:5000", "[2001:db8::1]:5000"} {
		r := e.do("GET", "/apisix/admin/routes", "", "RemoteAddr: "+addr)
		assert.Equal(t, http.StatusForbidden, r.code, addr)
		assert.Contains(t, r.json(t)["error_msg"], "is not allowed to use the Admin API", addr)
		r = e.do("HEAD", "/apisix/admin", "", "nokey", "RemoteAddr: "+addr)
		assert.Equal(t, http.StatusForbidden, r.code, addr)
	}
	e.must(http.StatusOK, "GET", "/apisix/admin/routes", "", "RemoteAddr: 127.0.0.200:5000")
	e.must(http.StatusOK, "GET", "/apisix/admin/routes", "", "RemoteAddr: [::ffff:127.0.0.9]:5000")
	assert.Contains(t, e.log.String(), `msg="admin write" key=admin client=127.0.0.1:40000 method=PUT path=/apisix/admin/routes/1 status=201`)
	assert.Contains(t, e.log.String(), `msg="admin write" key=viewer client=127.0.0.1:40000 method=DELETE path=/apisix/admin/routes/1 status=401`)
	assert.NotContains(t, e.log.String(), testAdminKey, "keys are never logged")
}

func TestAuthAllowAdminAndKeyNotRequired(t *testing.T) {
	cfg := testConfig()
	cfg.Deployment.Admin.AllowAdmin = []string{"10.0.0.0/8", "192.168.1.7/32"}
	cfg.Deployment.Admin.AdminKeyRequired = false
	e := newEnv(t, envOpt{cfg: cfg})
	e.must(http.StatusOK, "GET", "/apisix/admin/routes", "", "nokey", "RemoteAddr: 10.9.8.7:1")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/1", `{"nodes":{"127.0.0.1:80":1}}`, "X-API-KEY: whatever", "RemoteAddr: 192.168.1.7:1")
	e.must(http.StatusForbidden, "GET", "/apisix/admin/routes", "", "RemoteAddr: 127.0.0.1:1")
	e.must(http.StatusForbidden, "GET", "/apisix/admin/routes", "", "RemoteAddr: 192.168.1.8:1")
}

func TestAuthNoKeys(t *testing.T) {
	// admin_key_required with no key (yaml mode): nothing authenticates.
	cfg := testConfig()
	cfg.Deployment.Admin.AdminKey = nil
	e := newEnv(t, envOpt{cfg: cfg})
	assert.Equal(t, http.StatusUnauthorized, e.do("GET", "/apisix/admin/routes", "", "X-API-KEY: "+testAdminKey).code)
	assert.Equal(t, http.StatusUnauthorized, e.do("GET", "/apisix/admin/routes", "", "X-API-KEY: ").code)
}

func TestPathsAndMethods(t *testing.T) {
	e := newEnv(t, envOpt{})
	r := e.must(http.StatusNotFound, "GET", "/apisix/admin/foo", "")
	assert.JSONEq(t, `{"error_msg":"Unsupported resource type: foo"}`, r.body)
	r = e.must(http.StatusNotFound, "GET", "/apisix/admin/routes/1", "")
	assert.JSONEq(t, `{"message":"Key not found"}`, r.body)
	e.must(http.StatusNotFound, "GET", "/other", "")
	e.must(http.StatusNotFound, "OPTIONS", "/apisix/admin/routes", "")

	r = e.must(http.StatusMethodNotAllowed, "POST", "/apisix/admin/consumers", `{"username":"jack"}`)
	assert.JSONEq(t, "{\"error_msg\":\"not supported `POST` method for consumer\"}", r.body)
	r = e.must(http.StatusMethodNotAllowed, "PATCH", "/apisix/admin/consumers/jack", `{"desc":"x"}`)
	assert.JSONEq(t, "{\"error_msg\":\"not supported `PATCH` method for consumer\"}", r.body)
	r = e.must(http.StatusMethodNotAllowed, "POST", "/apisix/admin/global_rules", `{"plugins":{}}`)
	assert.JSONEq(t, "{\"error_msg\":\"not supported `POST` method for global rule\"}", r.body)
	r = e.must(http.StatusMethodNotAllowed, "POST", "/apisix/admin/plugin_configs", `{"plugins":{}}`)
	assert.JSONEq(t, "{\"error_msg\":\"not supported `POST` method for plugin config\"}", r.body)

	// bad JSON
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `{"uri":`)
	assert.True(t, strings.HasPrefix(r.json(t)["error_msg"].(string), "invalid request body: "), r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `{"uri":"/a"} x`)
	assert.True(t, strings.HasPrefix(r.json(t)["error_msg"].(string), "invalid request body: "), r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", ``)
	assert.JSONEq(t, `{"error_msg":"missing configurations"}`, r.body)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/1", `[1]`)
	assert.JSONEq(t, `{"error_msg":"invalid configuration: wrong type: expected object, got table"}`, r.body)
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, envOpt{})
	// A valid route body of exactly 1 MiB is accepted; one byte more is 413.
	base := `{"uri":"/big","upstream":{"nodes":{"127.0.0.1:80":1}},"desc":"x"}`
	pad := strings.Repeat(" ", maxBody-len(base))
	exact := base[:len(base)-1] + pad + "}"
	require.Len(t, exact, maxBody)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/big", exact)
	r := e.must(http.StatusRequestEntityTooLarge, "PUT", "/apisix/admin/routes/big", exact+" ")
	assert.Contains(t, r.json(t)["error_msg"], "greater than the maximum size 1048576 allowed")

	// Without a Content-Length (chunked), the limit holds while reading.
	req := strings.NewReader(exact + " ")
	rr := e.doReader("PUT", "/apisix/admin/routes/big", req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rr.code, rr.body)
}
