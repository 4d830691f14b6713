package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/proctest"
	"github.com/sluice-gw/sluice/metrics"
)

// llmUpstream answers like an OpenAI-compatible server: a JSON chat
// completion with usage {5, 7}, or, for "stream": true, an SSE stream
// (chunked) whose last event carries usage {11, 13}.
func llmUpstream(t *testing.T, name string) *upstream {
	return startUpstream(t, name, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}],\"usage\":null}\n\n", i)
				w.(http.Flusher).Flush()
			}
			fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":13,\"total_tokens\":24}}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`)
	})
}

// promServer is a real Prometheus started for one test.
type promServer struct {
	addr string
	proc proctest.Proc
	log  *proctest.Buffer
}

// startPrometheus starts Debian's prometheus (scripts/prometheus.sh) with
// its own config and storage in a temp dir, on a free port, scraping
// target's path every second; it is stopped by PID at cleanup.
func startPrometheus(t *testing.T, target, path string) *promServer {
	t.Helper()
	bin, err := proctest.Binary{Name: "prometheus", Script: "scripts/prometheus.sh (make deps)", Debian: "prometheus"}.Path()
	require.NoError(t, err)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sluice
    metrics_path: %s
    static_configs:
      - targets: [%q]
`, path, target)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg)
	p := &promServer{addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), log: &proctest.Buffer{}}
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr,
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = p.log, p.log
	require.NoError(t, p.proc.Start(cmd, nil))
	t.Cleanup(func() {
		p.proc.Stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	})
	err = p.proc.Wait(func() bool {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 50*time.Millisecond, 30*time.Second)
	require.NoError(t, err, "prometheus to be ready:\n%s", p.log.String())
	return p
}

// promResult is one sample of an instant query.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query; it returns the API status, error and
// results.
func (p *promServer) query(t *testing.T, q string) (string, string, []promResult) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r), q)
	return r.Status, r.Error, r.Data.Result
}

// number returns a sample's value; ok is false for NaN and ±Inf.
func (r promResult) number() (float64, bool) {
	s, _ := r.Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != v || v > 1e300 || v < -1e300 {
		return 0, false
	}
	return v, true
}

// scrapeSeries reads the export endpoint: "name{labels}" → value.
func scrapeSeries(t *testing.T, u string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out, string(b)
}

// TestPrometheusPlugin: a route with the prometheus plugin, JSON and
// streamed (SSE, chunked) LLM responses, and a traffic-split route; the
// export endpoint counts them with APISIX's names and sluice's LLM series,
// passes `promtool check metrics`, and a real Prometheus scraping it
// answers the latency quantile and every query of the Grafana dashboard.
func TestPrometheusPlugin(t *testing.T) {
	llm, armA, armB := llmUpstream(t, "llm"), llmUpstream(t, "arm-a"), llmUpstream(t, "arm-b")
	metricsPort := freePort(t)
	exportURI := "/apisix/prometheus/metrics"
	doc := routesDoc(
		route("prom-1", "/v1/*", "    plugins:\n      prometheus: {}\n", llm.addr()),
		route("prom-split", "/split/*", fmt.Sprintf(`    plugins:
      prometheus: {}
      traffic-split:
        rules:
          - weighted_upstreams:
              - upstream: {name: arm-a, type: roundrobin, nodes: {%q: 1}}
                weight: 1
              - upstream: {name: arm-b, type: roundrobin, nodes: {%q: 1}}
                weight: 1
`, armA.addr(), armB.addr()), llm.addr()),
		route("plain", "/plain", "", llm.addr()),
	)
	g := startGatewayConf(t, func(port int) string {
		return gatewayConfig(port, 2, "") + fmt.Sprintf(`plugin_attr:
  prometheus:
    export_addr: {ip: 127.0.0.1, port: %d}
    export_uri: %s
`, metricsPort, exportURI)
	}, doc)
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + exportURI
	g.waitListening("127.0.0.1:" + strconv.Itoa(metricsPort))

	get := func(path string) int {
		t.Helper()
		resp, err := client.Get(g.url(path))
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	const jsonN, streamN, splitN = 6, 4, 4
	for i := 0; i < jsonN; i++ {
		require.Equal(t, 200, get("/v1/chat/completions"))
	}
	for i := 0; i < streamN; i++ {
		require.Equal(t, 200, get("/v1/chat/completions?stream=1"))
	}
	for i := 0; i < splitN; i++ {
		require.Equal(t, 200, get("/split/chat"))
	}
	require.Equal(t, 200, get("/plain"))

	upIP := "127.0.0.1"
	// (a request is counted as its exchange ends, just after its last byte)
	var m map[string]float64
	var body string
	waitFor(t, 2*time.Second, "every request counted", func() bool {
		m, body = scrapeSeries(t, metricsURL)
		return m[`apisix_http_status{route="prom-1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`] >= jsonN+streamN
	})
	lbl := fmt.Sprintf(`route="prom-1",service="",consumer="",node=%q`, upIP)
	assert.Equal(t, float64(jsonN+streamN), m[`apisix_http_status{route="prom-1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`], "status")
	assert.Equal(t, float64(jsonN+streamN), m[`apisix_http_latency_count{type="request",`+lbl+`}`], "request latency")
	assert.Equal(t, float64(jsonN+streamN), m[`apisix_http_latency_count{type="upstream",`+lbl+`}`], "upstream latency")
	assert.Positive(t, m[`apisix_bandwidth{type="ingress",`+lbl+`}`], "ingress")
	assert.Positive(t, m[`apisix_bandwidth{type="egress",`+lbl+`}`], "egress")
	// usage from JSON bodies (5, 7) and from the streams' last events (11, 13)
	assert.Equal(t, float64(jsonN*5+streamN*11), m[`sluice_llm_tokens_total{route="prom-1",arm="",type="prompt"}`], "prompt tokens")
	assert.Equal(t, float64(jsonN*7+streamN*13), m[`sluice_llm_tokens_total{route="prom-1",arm="",type="completion"}`], "completion tokens")
	assert.Equal(t, float64(jsonN+streamN), m[`sluice_llm_ttft_seconds_count{route="prom-1",arm=""}`], "ttft")
	assert.Equal(t, float64(splitN), m[`apisix_http_status{route="prom-split",matched_uri="/split/*",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`], "split route status")
	assert.Zero(t, m[`sluice_llm_ttft_seconds_count{route="prom-split",arm=""}`], "split requests are counted on their arms")
	onArms := func(series, rest string) float64 {
		return m[series+`{route="prom-split",arm="arm-a"`+rest+`}`] + m[series+`{route="prom-split",arm="arm-b"`+rest+`}`]
	}
	assert.Equal(t, float64(splitN), onArms("sluice_llm_ttft_seconds_count", ""), "split requests' TTFT, on the arms")
	assert.Equal(t, float64(splitN*5), onArms("sluice_llm_tokens_total", `,type="prompt"`), "split requests' prompt tokens, on the arms")
	assert.Equal(t, float64(splitN*7), onArms("sluice_llm_tokens_total", `,type="completion"`), "split requests' completion tokens, on the arms")
	assert.Equal(t, float64(1), m[`apisix_upstream_status{name="/apisix/routes/prom-1",ip="127.0.0.1",port="`+llm.addr()[strings.LastIndexByte(llm.addr(), ':')+1:]+`"}`])
	assert.NotContains(t, body, `route="plain"`, "no prometheus plugin: no series")
	assert.Regexp(t, regexp.MustCompile(`(?m)^apisix_node_info\{hostname="[^"]*",version="[^"]+"\} 1$`), body)
	assert.Contains(t, body, "# TYPE apisix_nginx_http_current_connections gauge\n")

	// promtool accepts the real endpoint's output.
	if bin, err := exec.LookPath("promtool"); assert.NoError(t, err, "promtool: run scripts/prometheus.sh") {
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
			t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			assert.True(t, line == "" || metrics.PromtoolLintAllowed[line], "promtool: %s", line)
		}
	}

	// A real Prometheus scrapes sluice while traffic flows.
	prom := startPrometheus(t, "127.0.0.1:"+strconv.Itoa(metricsPort), exportURI)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		paths := []string{"/v1/chat/completions", "/v1/chat/completions?stream=1", "/split/chat"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if resp, err := client.Get(g.url(paths[i%len(paths)])); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	const p99 = `histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type="request"}[1m])) by (le))`
	var last string
	waitFor(t, 60*time.Second, "Prometheus to answer "+p99, func() bool {
		st, e, res := prom.query(t, p99)
		last = fmt.Sprintf("%s %s %v", st, e, res)
		if st != "success" || len(res) == 0 {
			return false
		}
		v, ok := res[0].number()
		return ok && v > 0
	})
	t.Logf("p99 request latency: %s ms (after %d background requests)", last, sent.Load())
	st, _, res := prom.query(t, `up{job="sluice"}`)
	require.Equal(t, "success", st)
	require.Len(t, res, 1)
	assert.Equal(t, "1", res[0].Value[1])

	// Every query of the Grafana dashboard is valid PromQL, and those whose
	// series this traffic creates return data.
	dash := dashboardQueries(t)
	require.NotEmpty(t, dash)
	withData := 0
	waitFor(t, 30*time.Second, "the dashboard's split and LLM panels to have data", func() bool {
		withData = 0
		for _, q := range dash {
			st, e, res := prom.query(t, q.expr)
			require.Equal(t, "success", st, "%s: %s: %s", q.panel, q.expr, e)
			if len(res) > 0 {
				withData++
			}
		}
		return withData == len(dash) // the arms' 5xx share reads 0 without any 5xx
	})
	for _, q := range dash {
		_, _, res := prom.query(t, q.expr)
		t.Logf("%-45s %d series", q.panel, len(res))
	}
}

type dashQuery struct{ panel, expr string }

// dashboardQueries returns conf/grafana/sluice.json's queries with the
// Grafana variables replaced ($__rate_interval → 1m, $route → .*).
func dashboardQueries(t *testing.T) []dashQuery {
	t.Helper()
	raw, err := os.ReadFile("../conf/grafana/sluice.json")
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	r := strings.NewReplacer("$__rate_interval", "1m", "$route", ".*")
	var out []dashQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, dashQuery{p.Title, r.Replace(tg.Expr)})
		}
	}
	return out
}

// prometheus in a global rule and on a route counts the route's requests
// once (APISIX run_policy prefer_route); the global rule alone counts the
// other routes, and the requests no route matched.
func TestPrometheusGlobalRuleCountsOnce(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	metricsPort := freePort(t)
	doc := routesDoc(
		route("both", "/both", "    plugins:\n      prometheus: {}\n", up.addr()),
		route("global-only", "/global-only", "", up.addr()),
	) + "global_rules:\n  - id: g1\n    plugins:\n      prometheus: {}\n"
	g := startGatewayConf(t, func(port int) string {
		return gatewayConfig(port, 1, "") + fmt.Sprintf(`plugin_attr:
  prometheus:
    export_addr: {ip: 127.0.0.1, port: %d}
`, metricsPort)
	}, doc)
	g.waitListening("127.0.0.1:" + strconv.Itoa(metricsPort))
	const n = 3
	for _, path := range []string{"/both", "/global-only"} {
		for i := 0; i < n; i++ {
			resp, err := client.Get(g.url(path))
			require.NoError(t, err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
		}
	}
	// a request is counted when its exchange ends, just after the last
	// byte went out: the client may read it a moment before
	key := func(id string) string {
		return fmt.Sprintf(`apisix_http_status{route=%q,matched_uri="/%s",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`, id, id)
	}
	var m map[string]float64
	waitFor(t, 2*time.Second, "every request counted", func() bool {
		m, _ = scrapeSeries(t, "http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/apisix/prometheus/metrics")
		return m[key("both")] >= n && m[key("global-only")] >= n
	})
	for _, id := range []string{"both", "global-only"} {
		assert.Equal(t, float64(n), m[key(id)], id)
	}

	// a request no route matches runs the global rules too (APISIX):
	// its 404 is counted with route=""
	for i := 0; i < n; i++ {
		resp, err := client.Get(g.url("/nope"))
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 404, resp.StatusCode)
	}
	notFound := `apisix_http_status{route="",matched_uri="",matched_host="",service="",consumer="",node="",code="404"}`
	var body string
	waitFor(t, 2*time.Second, "the 404s counted", func() bool {
		m, body = scrapeSeries(t, "http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/apisix/prometheus/metrics")
		return m[notFound] >= n
	})
	assert.Equal(t, float64(n), m[notFound], body)
	lat := `apisix_http_latency_sum{type="request",route="",service="",consumer="",node=""}`
	assert.Less(t, m[lat], float64(n*1000), "their latency is measured from their start (ms): %v", m[lat])
}

// A stream an arm's upstream cuts after its first event — the way an LLM
// stream usually fails — reaches the client cut (no clean end), keeps the
// 200 it was sent with in the status series, and is counted on its arm in
// sluice_split_aborted_total, with a gateway log line naming route and arm.
func TestSplitAbortedStream(t *testing.T) {
	cut := startUpstream(t, "cutter", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t0\"}}]}\n\n")
		w.(http.Flusher).Flush()
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close() // mid-stream, no last chunk
		}
	})
	metricsPort := freePort(t)
	doc := routesDoc(route("cut", "/cut/*", fmt.Sprintf(`    plugins:
      traffic-split:
        rules:
          - weighted_upstreams:
              - upstream: {name: canary, type: roundrobin, nodes: {%q: 1}}
                weight: 1
`, cut.addr()), cut.addr()))
	g := startGatewayConf(t, func(port int) string {
		return gatewayConfig(port, 1, "") + fmt.Sprintf("plugin_attr:\n  prometheus:\n    export_addr: {ip: 127.0.0.1, port: %d}\n", metricsPort)
	}, doc)
	g.waitListening("127.0.0.1:" + strconv.Itoa(metricsPort))

	resp, err := client.Get(g.url("/cut/chat"))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Error(t, err, "the client sees the stream cut")

	metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/apisix/prometheus/metrics"
	var m map[string]float64
	waitFor(t, 2*time.Second, "the request counted", func() bool {
		m, _ = scrapeSeries(t, metricsURL)
		return m[`sluice_split_requests_total{route="cut",rule="0",arm="canary"}`] == 1
	})
	assert.Equal(t, float64(1), m[`sluice_split_aborted_total{route="cut",rule="0",arm="canary"}`], "counted as cut")
	assert.Equal(t, float64(1), m[`sluice_split_status_total{route="cut",rule="0",arm="canary",code="200"}`], "with the status it was sent with")
	waitFor(t, 2*time.Second, "the gateway's warning", func() bool {
		s := g.log.String()
		return strings.Contains(s, "response cut mid-stream") && strings.Contains(s, "route=cut") && strings.Contains(s, "arm=canary")
	})
}

// prefer_name labels a route by its name, and a series labelled so (or
// route="", a 404 a global rule counted) stays through table changes: a
// later change to the routes must not drop it as a deleted route's.
func TestPreferNameSeriesSurviveReload(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	metricsPort := freePort(t)
	named := route("n1", "/named", "    name: chat-named\n    plugins:\n      prometheus:\n        prefer_name: true\n", up.addr())
	g := startGatewayConf(t, func(port int) string {
		return gatewayConfig(port, 1, "") + fmt.Sprintf("plugin_attr:\n  prometheus:\n    export_addr: {ip: 127.0.0.1, port: %d}\n", metricsPort)
	}, routesDoc(named))
	g.waitListening("127.0.0.1:" + strconv.Itoa(metricsPort))
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/apisix/prometheus/metrics"
	series := `apisix_http_status{route="chat-named",matched_uri="/named",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`
	get := func(path string) int {
		resp, err := client.Get(g.url(path))
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		require.Equal(t, 200, get("/named"))
	}
	var m map[string]float64
	waitFor(t, 2*time.Second, "three counted under the name", func() bool {
		m, _ = scrapeSeries(t, metricsURL)
		return m[series] == 3
	})
	// another route comes: a new table
	g.writeRoutes(routesDoc(named, route("n2", "/other", "", up.addr())))
	waitFor(t, 5*time.Second, "the new table", func() bool { return get("/other") == 200 })
	require.Equal(t, 200, get("/named"))
	waitFor(t, 2*time.Second, "the count carried on", func() bool {
		m, _ = scrapeSeries(t, metricsURL)
		return m[series] == 4
	})
}
