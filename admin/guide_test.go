package admin

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The AI guide's Admin API commands (shared/guide/000_95a6bc03f13b6fc1.txt,
// the APISIX blog "Load Balancing AI/ML API with Apache APISIX"), bodies
// word for word: `curl -i http://127.0.0.1:9180/apisix/admin/routes/<id>
// -X PUT -H "X-API-KEY: ..." -d '<body>'` (curl -d sends
// Content-Type: application/x-www-form-urlencoded, which must not matter).
var (
	guideV1    = guideBody("routes-test-v1.json")
	guideV2    = guideBody("routes-test-v2.json")
	guideSplit = guideBody("routes-aimlapi-split.json")
)

// guideBody reads one of the guide's bodies from testdata/guide.
func guideBody(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "guide", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestGuideCommands(t *testing.T) {
	clk := newClock(1700000000)
	e := newEnv(t, envOpt{opts: []Option{WithClock(clk.now)}})
	form := "Content-Type: application/x-www-form-urlencoded"

	r1 := e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/test-v1", guideV1, form)
	r := r1
	assert.Equal(t, "application/json", r.hdr.Get("Content-Type"))
	assert.Equal(t, "sluice/test", r.hdr.Get("Server"))
	assert.Equal(t, "v3", r.hdr.Get("X-API-VERSION"))
	assert.Equal(t, "/apisix/routes/test-v1", r.json(t)["key"])
	v := r.value(t)
	assert.Equal(t, "test-v1", v["id"])
	assert.Equal(t, "/test/v1", v["uri"])
	assert.Equal(t, map[string]any{"api.aimlapi.com:443": float64(1)}, v["upstream"].(map[string]any)["nodes"], "nodes echo the form sent")
	assert.NotZero(t, v["create_time"])
	assert.Equal(t, v["create_time"], v["update_time"])

	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/test-v2", guideV2, form)
	r = e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/aimlapi-split", guideSplit, form)
	v = r.value(t)
	assert.Equal(t, "aimlapi-split", v["id"])
	rules := v["plugins"].(map[string]any)["traffic-split"].(map[string]any)["rules"].([]any)
	require.Len(t, rules, 2)
	assert.Equal(t, map[string]any{"uri": "/v1/chat/completions"}, rules[0].(map[string]any)["rewrite"], "the guide's rewrite is stored as given")

	// Published before the responses were sent.
	assert.Equal(t, "test-v1", e.match("GET", "/test/v1"))
	assert.Equal(t, "test-v2", e.match("GET", "/test/v2"))
	assert.Equal(t, "aimlapi-split", e.match("POST", "/chat/completions"))
	assert.Equal(t, "", e.match("GET", "/test/v3"))
	rt := e.pub.Load().Match(newRequest(t, "POST", "/chat/completions"))
	require.NotNil(t, rt.Upstream)
	require.Len(t, rt.Upstream.Nodes, 1)
	assert.Len(t, rt.Upstream.Nodes[0].Addrs, 2, "api.aimlapi.com resolved to both addresses")

	// Running the same commands again replaces (200) and keeps create_time.
	clk.set(1700000100)
	r2 := e.must(http.StatusOK, "PUT", "/apisix/admin/routes/test-v1", guideV1, form)
	assert.Equal(t, float64(1700000000), unixField(t, r1, "create_time"))
	assert.Equal(t, float64(1700000000), unixField(t, r2, "create_time"), "PUT keeps create_time")
	assert.Equal(t, float64(1700000100), unixField(t, r2, "update_time"))

	list := e.must(http.StatusOK, "GET", "/apisix/admin/routes", "").json(t)
	assert.Equal(t, float64(3), list["total"])
	keys := []string{}
	for _, it := range list["list"].([]any) {
		keys = append(keys, it.(map[string]any)["key"].(string))
	}
	assert.Equal(t, []string{"/apisix/routes/aimlapi-split", "/apisix/routes/test-v1", "/apisix/routes/test-v2"}, keys)
}

func unixField(t *testing.T, r resp, field string) float64 {
	t.Helper()
	f, ok := r.value(t)[field].(float64)
	require.True(t, ok, r.body)
	return f
}
