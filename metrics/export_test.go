package metrics

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// fill sets handles the way the prometheus plugin and traffic-split do,
// and the connection counters the engine reports.
func fill() {
	lbl := []string{"route", "exp-1", "service", "", "consumer", "", "node", "127.0.0.1"}
	st := NewStatuses("apisix_http_status", append([]string{"route", "exp-1", "matched_uri", "/v1/*", "matched_host", ""}, lbl[2:]...)...)
	st.Inc(200)
	st.Inc(200)
	st.Inc(503)
	NewHistogram("apisix_http_latency", LatencyBuckets, append([]string{"type", "request"}, lbl...)...).Update(0, 12.5)
	Counter("apisix_bandwidth", append([]string{"type", "egress"}, lbl...)...).Add(1420)
	Counter("sluice_split_requests_total", "route", "exp-1", "rule", "0", "arm", "gpt-4o").Inc()
	NewHistogram("sluice_split_latency_seconds", SecondsBuckets, "route", "exp-1", "rule", "0", "arm", "gpt-4o").Update(0, 0.25)
	Set.GetOrCreateGauge(Name("sluice_split_weight", "route", "exp-1", "rule", "0", "arm", "gpt-4o"), nil).Set(3)
	Counter("sluice_llm_tokens_total", "route", "exp-1", "arm", "", "type", "prompt").Add(19)
	NewHistogram("sluice_llm_ttft_seconds", SecondsBuckets, "route", "exp-1", "arm", "").Update(0, 0.04)
	Counter("sluice_test_odd_label_total", "v", "a \"quoted\" \\ value\nwith newline").Inc()
	SetConnStats(func() Conns {
		return Conns{Active: 3, Accepted: 10, Handled: 10, Reading: 1, Writing: 1, Waiting: 1, Requests: 42}
	})
	NodeInfo("1.2.3")
}

func TestServe(t *testing.T) {
	fill()
	defer SetConnStats(nil)
	addr := freeAddr(t)
	stop, err := Serve(addr, "/apisix/prometheus/metrics")
	require.NoError(t, err)
	defer stop()

	code, h, body := get(t, "GET", "http://"+addr+"/apisix/prometheus/metrics")
	require.Equal(t, 200, code)
	assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", h.Get("Content-Type"))
	for _, want := range []string{
		"# HELP apisix_http_status HTTP status codes per service in APISIX\n# TYPE apisix_http_status counter\n",
		`apisix_http_status{route="exp-1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="127.0.0.1",code="200"} 2` + "\n",
		"# TYPE apisix_http_latency histogram\n",
		`apisix_http_latency_bucket{type="request",route="exp-1",service="",consumer="",node="127.0.0.1",le="20"} 1` + "\n",
		`apisix_bandwidth{type="egress",route="exp-1",service="",consumer="",node="127.0.0.1"} 1420` + "\n",
		`apisix_nginx_http_current_connections{state="active"} 3` + "\n",
		`apisix_nginx_http_current_connections{state="accepted"} 10` + "\n",
		"# TYPE apisix_http_requests_total gauge\napisix_http_requests_total 42\n",
		`sluice_split_weight{route="exp-1",rule="0",arm="gpt-4o"} 3` + "\n",
		"# TYPE sluice_llm_ttft_seconds histogram\n",
		"# TYPE process_io_read_bytes_total counter\n",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		assert.Contains(t, body, want)
	}
	assert.Regexp(t, `apisix_node_info\{hostname="[^"]*",version="1.2.3"\} 1`, body)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "# HELP ") {
			assert.Len(t, strings.SplitN(line, " ", 4), 4, "HELP without text: %s", line)
		}
	}

	code, _, _ = get(t, "HEAD", "http://"+addr+"/apisix/prometheus/metrics")
	assert.Equal(t, 200, code)
	code, _, _ = get(t, "POST", "http://"+addr+"/apisix/prometheus/metrics")
	assert.Equal(t, 405, code)
	code, _, _ = get(t, "GET", "http://"+addr+"/other")
	assert.Equal(t, 404, code)

	// The address is taken: Serve says so at once.
	_, err = Serve(addr, "/m")
	require.Error(t, err)
	_, err = Serve(freeAddr(t), "m")
	require.Error(t, err)

	stop()
	stop() // idempotent
	_, err = http.Get("http://" + addr + "/apisix/prometheus/metrics")
	require.Error(t, err)
}

// promtool returns the promtool binary (Debian's prometheus package,
// installed by scripts/prometheus.sh); it fails the test when missing.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found on PATH: run scripts/prometheus.sh (make deps) to install Debian's prometheus package")
	}
	return p
}

// TestPromtoolCheckMetrics runs `promtool check metrics` on what the real
// endpoint serves.
func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	fill()
	defer SetConnStats(nil)
	addr := freeAddr(t)
	stop, err := Serve(addr, "/apisix/prometheus/metrics")
	require.NoError(t, err)
	defer stop()
	code, _, body := get(t, "GET", "http://"+addr+"/apisix/prometheus/metrics")
	require.Equal(t, 200, code)

	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) { // 3: lint findings only
		t.Fatalf("promtool check metrics: %v\n%s\n--- input:\n%s", err, out.String(), body)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		assert.True(t, PromtoolLintAllowed[line], "promtool: %s", line)
	}
	if t.Failed() {
		t.Logf("input:\n%s", body)
	}
}

func TestWritePrometheusOneTypePerFamily(t *testing.T) {
	Counter("sluice_test_help_total").Inc()
	var b bytes.Buffer
	WritePrometheus(&b)
	assert.Contains(t, b.String(), "# HELP sluice_test_help_total sluice_test_help_total\n# TYPE sluice_test_help_total counter\nsluice_test_help_total 1\n")
	assert.Equal(t, 1, strings.Count(b.String(), "# TYPE apisix_nginx_http_current_connections "), "one TYPE per family")
}
