package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// e2eAdminKey is a 43-character key, as `sluice keygen` prints.
const e2eAdminKey = "e2e-admin-key-0123456789-abcdefghijklmnopqr"

// adminGateway is a sluice with the embedded store and the Admin API.
type adminGateway struct {
	*gateway
	adminPort int
}

func (g *adminGateway) adminURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(g.adminPort) + path
}

// adminConfig is config.yaml for config_provider embedded with the Admin
// API on adminPort; key "" leaves admin_key out (sluice generates one).
func adminConfig(port, adminPort int, dataDir, key string) string {
	keys := ""
	if key != "" {
		keys = fmt.Sprintf(`    admin_key:
      - name: admin
        key: %s
        role: admin
`, key)
	}
	return fmt.Sprintf(`apisix:
  node_listen:
    - ip: 127.0.0.1
      port: %d
  enable_admin: true
deployment:
  role: traditional
  role_traditional:
    config_provider: embedded
  admin:
    admin_key_required: true
%s    allow_admin:
      - 127.0.0.0/24
    admin_listen:
      ip: 127.0.0.1
      port: %d
  embedded:
    path: %s
nginx_config:
  worker_processes: 1
`, port, keys, adminPort, dataDir)
}

// newAdminGatewayDir writes conf/config.yaml into a fresh temp dir and
// returns the dir and the ports.
func newAdminGatewayDir(t *testing.T, key string) (dir string, port, adminPort int) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	port, adminPort = freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "conf", "config.yaml"), adminConfig(port, adminPort, filepath.Join(dir, "data"), key))
	return dir, port, adminPort
}

// launch starts sluice in dir; it does not wait.
func launch(t *testing.T, dir string, port, adminPort int) *adminGateway {
	t.Helper()
	return &adminGateway{gateway: launchGateway(t, dir, port), adminPort: adminPort}
}

// startAdminGateway starts sluice in dir and waits for both listeners.
func startAdminGateway(t *testing.T, dir string, port, adminPort int) *adminGateway {
	t.Helper()
	g := launch(t, dir, port, adminPort)
	for _, p := range []int{port, adminPort} {
		g.waitListening("127.0.0.1:" + strconv.Itoa(p))
	}
	return g
}

// adminDo sends an Admin API request the way the guide's curl does
// (curl -d: Content-Type application/x-www-form-urlencoded).
func adminDo(t *testing.T, g *adminGateway, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.adminURL(path), rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(resp.Header.Get("Server"), "sluice/"), resp.Header.Get("Server"))
	var m map[string]any
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &m), string(b))
	}
	return resp.StatusCode, m
}

// The guide's Admin API bodies, word for word except that the node
// api.aimlapi.com:443 (https) becomes a local upstream (http): there is no
// internet here.
var (
	guideV1Body    = guideBody("routes-test-v1.json")
	guideV2Body    = guideBody("routes-test-v2.json")
	guideSplitBody = guideBody("routes-aimlapi-split.json")
)

// guideBody reads one of the guide's bodies from testdata/guide.
func guideBody(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "guide", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// localize points the guide body's nodes, in order, at addrs (plain HTTP).
func localize(body string, addrs ...string) string {
	for _, a := range addrs {
		body = strings.Replace(body, "api.aimlapi.com:443", a, 1)
	}
	body = strings.ReplaceAll(body, `"scheme": "https"`, `"scheme": "http"`)
	return strings.ReplaceAll(body, `"scheme":"https"`, `"scheme":"http"`)
}

func dataGet(t *testing.T, g *adminGateway, method, path, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url(path), rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAdminGuide(t *testing.T) {
	main, v1, v2 := startUpstream(t, "main", nil), startUpstream(t, "v1", nil), startUpstream(t, "v2", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)

	// The data plane starts empty.
	resp, _ := dataGet(t, g, "GET", "/test/v1", "")
	assert.Equal(t, 404, resp.StatusCode)

	code, r := adminDo(t, g, "PUT", "/apisix/admin/routes/test-v1", e2eAdminKey, localize(guideV1Body, v1.addr()))
	require.Equal(t, 201, code, r)
	assert.Equal(t, "/apisix/routes/test-v1", r["key"])
	// visible at once: the write was published before the response
	resp, _ = dataGet(t, g, "GET", "/test/v1", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "v1", resp.Header.Get("X-Upstream-Name"))
	assert.Equal(t, v1.addr(), resp.Header.Get("X-Upstream-Host"), "pass_host node: Host is the node, with its port")

	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/test-v2", e2eAdminKey, localize(guideV2Body, v2.addr()))
	require.Equal(t, 201, code, r)
	resp, _ = dataGet(t, g, "GET", "/test/v2", "")
	assert.Equal(t, "v2", resp.Header.Get("X-Upstream-Name"))

	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/aimlapi-split", e2eAdminKey, localize(guideSplitBody, main.addr(), v1.addr(), v2.addr()))
	require.Equal(t, 201, code, r)
	// The guide's split, word for word: APISIX ignores rules[]{weight,
	// upstream, rewrite}; sluice splits 50/50 (one keep-alive connection =
	// one event loop, so exactly) and sends each arm its rewritten path.
	chat := `{"model":"gpt-4","messages":[{"role":"user","content":"ping"}]}`
	seen := map[string]int{}
	for range 100 {
		resp, body := dataGet(t, g, "POST", "/chat/completions", chat)
		require.Equal(t, 200, resp.StatusCode, body)
		seen[resp.Header.Get("X-Upstream-Name")+" "+resp.Header.Get("X-Upstream-Path")]++
	}
	assert.Equal(t, map[string]int{"v1 /v1/chat/completions": 50, "v2 /v2/chat/completions": 50}, seen)
	_, got := v2.lastRequest()
	assert.Equal(t, chat, string(got), "the body reaches the arm")

	// the Admin API answers as APISIX does
	code, r = adminDo(t, g, "GET", "/apisix/admin/routes", e2eAdminKey, "")
	require.Equal(t, 200, code)
	assert.Equal(t, float64(3), r["total"])
	code, r = adminDo(t, g, "GET", "/apisix/admin/routes", "", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "failed to check token", r["error_msg"])
	code, _ = adminDo(t, g, "PUT", "/apisix/admin/routes/x", "wrong-key", localize(guideV1Body, v1.addr()))
	assert.Equal(t, 401, code)

	// update and delete reach the data plane at once too
	code, _ = adminDo(t, g, "PATCH", "/apisix/admin/routes/test-v1", e2eAdminKey, `{"uri":"/test/v1b"}`)
	require.Equal(t, 200, code)
	resp, _ = dataGet(t, g, "GET", "/test/v1b", "")
	assert.Equal(t, "v1", resp.Header.Get("X-Upstream-Name"))
	code, _ = adminDo(t, g, "DELETE", "/apisix/admin/routes/test-v2", e2eAdminKey, "")
	require.Equal(t, 200, code)
	resp, _ = dataGet(t, g, "GET", "/test/v2", "")
	assert.Equal(t, 404, resp.StatusCode)

	// measured: admin write → data plane, as a client sees it
	var lat []time.Duration
	for i := range 50 {
		path := fmt.Sprintf("/lat/%d", i)
		t0 := time.Now()
		code, _ := adminDo(t, g, "PUT", fmt.Sprintf("/apisix/admin/routes/lat%d", i), e2eAdminKey,
			fmt.Sprintf(`{"uri":%q,"upstream":{"nodes":{%q:1}}}`, path, v1.addr()))
		require.Equal(t, 201, code)
		resp, _ := dataGet(t, g, "GET", path, "")
		require.Equal(t, 200, resp.StatusCode, "write %d visible right after its response", i)
		lat = append(lat, time.Since(t0))
	}
	t.Logf("PUT + first routed request, over 50 writes: %v … %v", minDur(lat), maxDur(lat))
}

func minDur(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = min(m, x)
	}
	return m
}

func maxDur(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = max(m, x)
	}
	return m
}

// kill -9 right after a 2xx PUT: the write was durable before the 2xx.
func TestAdminWriteSurvivesKill9(t *testing.T) {
	up := startUpstream(t, "v1", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)
	for i := range 5 {
		code, r := adminDo(t, g, "PUT", fmt.Sprintf("/apisix/admin/routes/r%d", i), e2eAdminKey,
			fmt.Sprintf(`{"uri":"/k/%d","upstream":{"nodes":{%q:1}}}`, i, up.addr()))
		require.Equal(t, 201, code, r)
	}
	code, r := adminDo(t, g, "PUT", "/apisix/admin/routes/test-v1", e2eAdminKey, localize(guideV1Body, up.addr()))
	require.Equal(t, 201, code, r)
	require.NoError(t, g.cmd.Process.Kill()) // SIGKILL at once
	<-g.exited

	g2 := startAdminGateway(t, dir, port, adminPort)
	code, r = adminDo(t, g2, "GET", "/apisix/admin/routes/test-v1", e2eAdminKey, "")
	require.Equal(t, 200, code, r)
	assert.Equal(t, "/test/v1", r["value"].(map[string]any)["uri"])
	resp, _ := dataGet(t, g2, "GET", "/test/v1", "")
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = dataGet(t, g2, "GET", "/k/4", "")
	assert.Equal(t, 200, resp.StatusCode)
}

// A corrupt store file: sluice refuses to start and says why.
func TestAdminCorruptStoreRefusesToStart(t *testing.T) {
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data", "store.log"), []byte("this is not a sluice store\n"), 0o600))
	g := launch(t, dir, port, adminPort)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("sluice did not exit:\n%s", g.log.String())
	}
	require.Error(t, g.err, "a non-zero exit")
	out := g.log.String()
	assert.Contains(t, out, "store.log is corrupt")
	assert.Contains(t, out, "refusing to start")
	_, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
	assert.Error(t, err, "the data plane never listened")
}

// With no admin_key, sluice generates one, prints it once with the Admin
// API address, and reuses it (silently) on the next start.
func TestAdminGeneratedKeyPrintedOnce(t *testing.T) {
	dir, port, adminPort := newAdminGatewayDir(t, "")
	g := startAdminGateway(t, dir, port, adminPort)
	re := regexp.MustCompile(`admin key: ([A-Za-z0-9_-]{43})\n\s+Admin API: http://127\.0\.0\.1:` + strconv.Itoa(adminPort))
	var key string
	waitFor(t, 5*time.Second, "the key to be printed", func() bool {
		m := re.FindStringSubmatch(g.log.String())
		if m != nil {
			key = m[1]
		}
		return m != nil
	})
	code, _ := adminDo(t, g, "GET", "/apisix/admin/routes", key, "")
	assert.Equal(t, 200, code)
	g.stop()

	g2 := startAdminGateway(t, dir, port, adminPort)
	code, _ = adminDo(t, g2, "GET", "/apisix/admin/routes", key, "")
	assert.Equal(t, 200, code, "the kept key still works")
	assert.NotContains(t, g2.log.String(), "admin key:", "printed only once")
	assert.NotContains(t, g2.log.String(), key)
}
