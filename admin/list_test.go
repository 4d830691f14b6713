package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listIDs GETs path and returns total and the ids listed.
func (e *env) listIDs(path string) (int, []string) {
	e.t.Helper()
	l := e.must(http.StatusOK, "GET", path, "").json(e.t)
	var ids []string
	for _, it := range l["list"].([]any) {
		ids = append(ids, it.(map[string]any)["value"].(map[string]any)["id"].(string))
	}
	return int(l["total"].(float64)), ids
}

// APISIX t/admin/filter.t: name is a pattern searched in name, label a key
// of labels, uri a pattern searched in uri or uris; total counts what the
// filters kept. A filter that matches nothing lists nothing, never
// everything.
func TestListFilters(t *testing.T) {
	e := newEnv(t, envOpt{})
	for i := 1; i <= 11; i++ { // filter.t TEST 6
		e.must(http.StatusCreated, "PUT", fmt.Sprintf("/apisix/admin/services/%d", i),
			fmt.Sprintf(`{"upstream":{"nodes":{"127.0.0.1:1980":1}},"name":"%d","labels":{"%d":"%d"}}`, i, i, i))
	}
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/anon", `{"upstream":{"nodes":{"127.0.0.1:1980":1}}}`)
	f := func(path string, wantTotal int, wantIDs ...string) {
		t.Helper()
		total, ids := e.listIDs(path)
		assert.Equal(t, wantTotal, total, path)
		assert.Equal(t, wantIDs, ids, path)
	}
	f("/apisix/admin/services", 12, "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9", "anon")
	f("/apisix/admin/services?name=1", 3, "1", "10", "11")
	f("/apisix/admin/services?name=x", 0)
	f("/apisix/admin/services?name=", 11, "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9") // no name: never listed
	f("/apisix/admin/services?name=^1$", 1, "1")                                                   // a pattern, as APISIX's re.find
	f("/apisix/admin/services?label=1", 1, "1")
	f("/apisix/admin/services?label=", 0) // filter.t TEST 15
	f("/apisix/admin/services?name=1&label=10", 1, "10")
	f("/apisix/admin/services?uri=1", 0) // services have no uri
	// total is the filtered count; paging comes after (filter.t TEST 9)
	f("/apisix/admin/services?name=1&page=1&page_size=10", 3, "1", "10", "11")
	f("/apisix/admin/services?name=1&page=2&page_size=10", 3)

	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"127.0.0.1:1980":1}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r1", `{"uri":"/hello","upstream_id":"u1","labels":{"env":"production"},"name":"chat-v1"}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r2", `{"uris":["/a","/world"],"service_id":"1","labels":{"build":"16"}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r3", `{"uri":"/x","service_id":1,"upstream_id":"u1","name":"chat-v2"}`)
	f("/apisix/admin/routes?uri=hello", 1, "r1")
	f("/apisix/admin/routes?uri=world", 1, "r2") // filter.t TEST 12: any of uris
	f("/apisix/admin/routes?uri=/", 3, "r1", "r2", "r3")
	f("/apisix/admin/routes?label=env", 1, "r1")
	f("/apisix/admin/routes?label=production", 0) // filter.t TEST 11: keys only
	f("/apisix/admin/routes?uri=world&label=build", 1, "r2")
	f("/apisix/admin/routes?name=chat", 2, "r1", "r3")
	f("/apisix/admin/routes?name=chat-v2", 1, "r3")
	// filter=escape_uri(key=value&...) (3.13+, filter.t TEST 17–19)
	f("/apisix/admin/routes?filter="+url.QueryEscape("service_id=1"), 2, "r2", "r3")
	f("/apisix/admin/routes?filter="+url.QueryEscape("upstream_id=u1"), 2, "r1", "r3")
	f("/apisix/admin/routes?filter="+url.QueryEscape("service_id=1&upstream_id=u1"), 1, "r3")
	f("/apisix/admin/routes?filter="+url.QueryEscape("service_id=2"), 0)
	f("/apisix/admin/routes?filter=", 3, "r1", "r2", "r3")

	for path, want := range map[string]string{
		"/apisix/admin/routes?name=(":                                          "invalid argument name: ",
		"/apisix/admin/routes?uri=a(?=b)":                                      "invalid argument uri: ",
		"/apisix/admin/routes?name=a&name=b":                                   "invalid argument name: given more than once",
		"/apisix/admin/routes?filter=" + url.QueryEscape("plugin_config_id=1"): `invalid argument filter: routes cannot be filtered by "plugin_config_id"`,
		"/apisix/admin/upstreams?filter=" + url.QueryEscape("service_id=1"):    `invalid argument filter: upstreams cannot be filtered by "service_id"`,
	} {
		r := e.must(http.StatusBadRequest, "GET", path, "")
		msg, _ := r.json(t)["error_msg"].(string)
		require.NotEmpty(t, msg, path)
		assert.Contains(t, msg, want, path)
	}
}
