package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/sluice-gw/sluice/admin/store/etcdtest"
)

// resource is one Admin API object: kind is "upstreams" or "routes".
type resource struct {
	kind string
	id   string
	body map[string]any
}

// nodes is an APISIX nodes map {"host:port": weight}.
func nodes(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func inline(nodeMap map[string]any) map[string]any {
	return map[string]any{"type": "roundrobin", "nodes": nodeMap}
}

// providerUpstreams are the upstream names the routing table uses; each
// is a real server echoing its name in X-Upstream-Name.
var providerUpstreams = []string{
	"exact", "prefix", "longer", "low", "high", "post", "get", "wild", "nohost",
	"canary", "stable", "argmodel", "shared", "w3", "w1",
}

// readyPath is routed last: once it answers, the whole table is in.
const readyPath = "/__ready"

// providerTable is the routing table every provider must serve, in
// configuration order (upstreams first, so upstream_id resolves).
func providerTable(addr map[string]string) []resource {
	up := func(name string) map[string]any { return inline(nodes(addr[name], 1)) }
	r := func(id string, body map[string]any) resource { return resource{kind: "routes", id: id, body: body} }
	return []resource{
		{kind: "upstreams", id: "shared-up", body: inline(nodes(addr["shared"], 1))},

		// exact uri, a prefix, and a longer prefix that wins even though
		// the shorter one has the higher priority
		r("exact", map[string]any{"uri": "/v1/models", "upstream": up("exact")}),
		r("prefix", map[string]any{"uri": "/v1/*", "priority": 5, "upstream": up("prefix")}),
		r("longer", map[string]any{"uri": "/v1/chat/*", "upstream": up("longer")}),

		// same uri: the higher priority wins, whatever the order
		r("prio-1-low", map[string]any{"uri": "/prio", "priority": 1, "upstream": up("low")}),
		r("prio-2-high", map[string]any{"uri": "/prio", "priority": 10, "upstream": up("high")}),

		// methods narrow a candidate
		r("m-post", map[string]any{"uri": "/m", "methods": []string{"POST"}, "upstream": up("post")}),
		r("m-get", map[string]any{"uri": "/m", "methods": []string{"GET"}, "upstream": up("get")}),

		// hosts with a wildcard; the host-less route catches the rest
		r("h-wild", map[string]any{"uri": "/h", "hosts": []string{"*.example.com"}, "upstream": up("wild")}),
		r("h-any", map[string]any{"uri": "/h", "upstream": up("nohost")}),

		// vars on a header (falls through to the plain route) and an arg
		r("canary", map[string]any{"uri": "/canary", "priority": 1,
			"vars": [][]string{{"http_x_canary", "==", "1"}}, "upstream": up("canary")}),
		r("stable", map[string]any{"uri": "/canary", "upstream": up("stable")}),
		r("arg", map[string]any{"uri": "/arg", "vars": [][]string{{"arg_model", "==", "gpt-4"}}, "upstream": up("argmodel")}),

		// an upstream_id reference
		r("ref", map[string]any{"uri": "/ref/*", "upstream_id": "shared-up"}),

		// weighted 3:1, smooth WRR
		r("split", map[string]any{"uri": "/split", "upstream": inline(nodes(addr["w3"], 3, addr["w1"], 1))}),

		r("zz-ready", map[string]any{"uri": readyPath, "upstream_id": "shared-up"}),
	}
}

// routeCase is one request and the upstream that must answer it ("" = 404).
type routeCase struct {
	method, path, host string
	header             map[string]string
	want               string
}

var providerCases = []routeCase{
	{method: "GET", path: "/v1/models", want: "exact"},
	{method: "GET", path: "/v1/models?limit=5", want: "exact"},
	{method: "GET", path: "/v1/models/gpt-4", want: "prefix"},
	{method: "GET", path: "/v1/embeddings", want: "prefix"},
	{method: "GET", path: "/v1/", want: "prefix"},
	{method: "GET", path: "/v1", want: ""}, // "/v1/*" is the prefix "/v1/"
	{method: "POST", path: "/v1/chat/completions", want: "longer"},
	{method: "GET", path: "/v1/chat/", want: "longer"},
	{method: "GET", path: "/v2/models", want: ""},

	{method: "GET", path: "/prio", want: "high"},

	{method: "POST", path: "/m", want: "post"},
	{method: "GET", path: "/m", want: "get"},
	{method: "DELETE", path: "/m", want: ""},
	{method: "PUT", path: "/m", want: ""},

	{method: "GET", path: "/h", host: "a.example.com", want: "wild"},
	{method: "GET", path: "/h", host: "a.example.com:8443", want: "wild"},
	{method: "GET", path: "/h", host: "deep.a.example.com", want: "wild"},
	{method: "GET", path: "/h", host: "A.Example.COM", want: "wild"},
	{method: "GET", path: "/h", host: "example.com", want: "nohost"},
	{method: "GET", path: "/h", host: "example.org", want: "nohost"},
	{method: "GET", path: "/h", want: "nohost"},
	{method: "GET", path: "/v1/models", host: "a.example.com", want: "exact"}, // host routes fall back to host-less ones

	{method: "GET", path: "/canary", header: map[string]string{"X-Canary": "1"}, want: "canary"},
	{method: "GET", path: "/canary", header: map[string]string{"X-Canary": "0"}, want: "stable"},
	{method: "GET", path: "/canary", want: "stable"},
	{method: "GET", path: "/arg?model=gpt-4", want: "argmodel"},
	{method: "GET", path: "/arg?x=1&model=gpt-4", want: "argmodel"},
	{method: "GET", path: "/arg?model=gpt-3", want: ""},
	{method: "GET", path: "/arg", want: ""},

	{method: "GET", path: "/ref/anything", want: "shared"},
	{method: "POST", path: "/ref/a/b?c=d", want: "shared"},

	{method: "GET", path: "/nothing", want: ""},
	{method: "GET", path: "/", want: ""},
}

func (c routeCase) String() string {
	s := c.method + " " + c.path
	if c.host != "" {
		s += " Host:" + c.host
	}
	for k, v := range c.header {
		s += " " + k + ":" + v
	}
	return s
}

// sendCase sends c to the data plane at base and returns the status, the
// upstream that answered and the body.
func sendCase(t *testing.T, base string, c routeCase) (int, string, string) {
	t.Helper()
	var body io.Reader
	if c.method == "POST" || c.method == "PUT" {
		body = strings.NewReader(`{"model":"gpt-4"}`)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	require.NoError(t, err)
	if c.host != "" {
		req.Host = c.host
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	require.NoError(t, err, c.String())
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Upstream-Name"), string(b)
}

// standaloneYAML renders the table as conf/apisix.yaml (without #END,
// which writeRoutes appends).
func standaloneYAML(t *testing.T, table []resource) string {
	t.Helper()
	doc := map[string][]map[string]any{}
	for _, r := range table {
		item := map[string]any{"id": r.id}
		for k, v := range r.body {
			item[k] = v
		}
		doc[r.kind] = append(doc[r.kind], item)
	}
	// upstreams before routes, as an APISIX user writes the file
	var b strings.Builder
	for _, kind := range []string{"upstreams", "routes"} {
		out, err := yaml.Marshal(map[string]any{kind: doc[kind]})
		require.NoError(t, err)
		b.Write(out)
	}
	return b.String()
}

// putTable PUTs every resource through g's Admin API, in order.
func putTable(t *testing.T, g *adminGateway, table []resource) {
	t.Helper()
	for _, r := range table {
		body, err := json.Marshal(r.body)
		require.NoError(t, err)
		code, resp := adminDo(t, g, "PUT", "/apisix/admin/"+r.kind+"/"+r.id, e2eAdminKey, string(body))
		require.Equal(t, 201, code, "PUT %s/%s: %v", r.kind, r.id, resp)
		assert.Equal(t, "/apisix/"+r.kind+"/"+r.id, resp["key"])
	}
}

// etcdAdminConfig is adminConfig (admin_guide_test.go) with
// config_provider etcd at endpoint instead of the embedded store.
func etcdAdminConfig(t *testing.T, port, adminPort int, endpoint string, timeoutSec int) string {
	t.Helper()
	const marker = "/__embedded_path__"
	c := adminConfig(port, adminPort, marker, e2eAdminKey)
	embedded := "  embedded:\n    path: " + marker + "\n"
	require.Equal(t, 1, strings.Count(c, embedded), "adminConfig changed shape:\n%s", c)
	require.Equal(t, 1, strings.Count(c, "config_provider: embedded"), "adminConfig changed shape:\n%s", c)
	c = strings.Replace(c, "config_provider: embedded", "config_provider: etcd", 1)
	return strings.Replace(c, embedded, fmt.Sprintf("  etcd:\n    host:\n      - %q\n    prefix: /apisix\n    timeout: %d\n", endpoint, timeoutSec), 1)
}

// startEtcdGateway starts sluice with config_provider etcd at endpoint
// (the Admin API keyed with e2eAdminKey, one event loop).
func startEtcdGateway(t *testing.T, endpoint string, timeoutSec int) *adminGateway {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	port, adminPort := freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "conf", "config.yaml"), etcdAdminConfig(t, port, adminPort, endpoint, timeoutSec))
	return startAdminGateway(t, dir, port, adminPort)
}

// TestProvidersRouting: the yaml, embedded and etcd providers serve the
// same routing table with the same answers.
func TestProvidersRouting(t *testing.T) {
	providers := []struct {
		name  string
		start func(t *testing.T, table []resource) string // returns the data plane's base URL
	}{
		{"yaml", func(t *testing.T, table []resource) string {
			return startGateway(t, 1, "", standaloneYAML(t, table)).url("")
		}},
		{"embedded", func(t *testing.T, table []resource) string {
			dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
			g := startAdminGateway(t, dir, port, adminPort)
			putTable(t, g, table)
			return g.url("")
		}},
		{"etcd", func(t *testing.T, table []resource) string {
			etcd := etcdtest.StartServer(t)
			g := startEtcdGateway(t, etcd.Endpoint(), 5)
			putTable(t, g, table)
			return g.url("")
		}},
	}
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			ups := map[string]*upstream{}
			addr := map[string]string{}
			for _, n := range providerUpstreams {
				ups[n] = startUpstream(t, n, nil)
				addr[n] = ups[n].addr()
			}
			base := p.start(t, providerTable(addr))
			waitFor(t, 10*time.Second, "the whole table ("+readyPath+")", func() bool {
				resp, err := client.Get(base + readyPath)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})

			for _, c := range providerCases {
				code, name, body := sendCase(t, base, c)
				if c.want == "" {
					if assert.Equal(t, 404, code, "%s: answered by %q", c, name) {
						assert.JSONEq(t, `{"error_msg":"404 Route Not Found"}`, body, c.String())
					}
					continue
				}
				assert.Equal(t, 200, code, "%s: %s", c, body)
				assert.Equal(t, c.want, name, c.String())
			}

			// smooth weighted round-robin on one event loop: every window of
			// 4 consecutive requests holds 3 for w3 and 1 for w1
			before3, before1 := ups["w3"].count(), ups["w1"].count()
			var seq []string
			for range 40 {
				code, name, body := sendCase(t, base, routeCase{method: "POST", path: "/split"})
				require.Equal(t, 200, code, body)
				seq = append(seq, name)
			}
			for i := 0; i+4 <= len(seq); i++ {
				n := 0
				for _, s := range seq[i : i+4] {
					if s == "w3" {
						n++
					}
				}
				if !assert.Equal(t, 3, n, "window at %d: %v", i, seq[i:i+4]) {
					t.Logf("sequence: %s", strings.Join(seq, " "))
					break
				}
			}
			assert.Equal(t, 30, ups["w3"].count()-before3)
			assert.Equal(t, 10, ups["w1"].count()-before1)
		})
	}
}

// itoa is strconv.Itoa for the cluster tests' ids.
func itoa(i int) string { return strconv.Itoa(i) }
