package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Conns is the data plane's connection and request counts, the numbers
// nginx's stub_status gives APISIX for apisix_nginx_http_current_connections
// and apisix_http_requests_total.
type Conns struct {
	Active   int64 // client connections open now
	Accepted int64 // client connections accepted since start
	Handled  int64 // accepted connections that were served (not dropped at once)
	Reading  int64 // connections reading a request head
	Writing  int64 // connections with a request in flight (proxying or writing)
	Waiting  int64 // idle keep-alive connections
	Requests int64 // requests received since start
}

// connStats is the engine's counter function (nil until set).
var connStats atomic.Pointer[func() Conns]

// SetConnStats installs the function the export server calls, at scrape
// time, for the connection gauges. It may be called from any goroutine;
// f must be safe to call from the scrape goroutine (read atomics).
func SetConnStats(f func() Conns) {
	if f == nil {
		connStats.Store(nil)
		return
	}
	connStats.Store(&f)
}

func currentConns() Conns {
	if f := connStats.Load(); f != nil {
		return (*f)()
	}
	return Conns{}
}

// The data plane's gauges, as APISIX names them; they read the engine's
// counters at scrape time.
func init() {
	for _, st := range []struct {
		state string
		get   func(Conns) int64
	}{
		{"active", func(c Conns) int64 { return c.Active }},
		{"accepted", func(c Conns) int64 { return c.Accepted }},
		{"handled", func(c Conns) int64 { return c.Handled }},
		{"reading", func(c Conns) int64 { return c.Reading }},
		{"writing", func(c Conns) int64 { return c.Writing }},
		{"waiting", func(c Conns) int64 { return c.Waiting }},
	} {
		get := st.get
		Set.NewGauge(Name("apisix_nginx_http_current_connections", "state", st.state),
			func() float64 { return float64(get(currentConns())) })
	}
	Set.NewGauge("apisix_http_requests_total", func() float64 { return float64(currentConns().Requests) })
}

var nodeInfoOnce sync.Once

// NodeInfo exports apisix_node_info{hostname,version} 1 (once; later calls
// do nothing).
func NodeInfo(version string) {
	nodeInfoOnce.Do(func() {
		host, _ := os.Hostname()
		Set.GetOrCreateGauge(Name("apisix_node_info", "hostname", host, "version", version), nil).Set(1)
	})
}

// help is the HELP text of each family sluice exports; families from other
// code get a generic one (promtool wants a HELP line for every family). It
// is read-only.
var (
	help = map[string]string{
		"apisix_http_status":                    "HTTP status codes per service in APISIX",
		"apisix_http_latency":                   "HTTP request latency in milliseconds per service in APISIX",
		"apisix_bandwidth":                      "Total bandwidth in bytes consumed per service in APISIX",
		"apisix_http_requests_total":            "The total number of client requests since APISIX started",
		"apisix_nginx_http_current_connections": "Number of HTTP connections",
		"apisix_node_info":                      "Info of APISIX node",
		"apisix_upstream_status":                "Upstream status from health check",
		"sluice_split_requests_total":           "Requests per traffic-split arm",
		"sluice_split_status_total":             "Responses per traffic-split arm and status code",
		"sluice_split_aborted_total":            "Responses per traffic-split arm cut after they started (upstream closed, timed out or broke framing mid-body; their status is the one sent)",
		"sluice_split_latency_seconds":          "Request latency in seconds per traffic-split arm",
		"sluice_split_weight":                   "Configured weight of each traffic-split arm",
		"sluice_llm_tokens_total":               "LLM tokens the upstream reported in its usage object, per route and arm",
		"sluice_llm_ttft_seconds":               "Time to the first body byte of a 2xx upstream response (time to first token), in seconds",
	}
)

func helpText(family string) string {
	if h, ok := help[family]; ok {
		return h
	}
	switch {
	case strings.HasPrefix(family, "go_"):
		return "Go runtime metric " + family + " (VictoriaMetrics/metrics)"
	case strings.HasPrefix(family, "process_"):
		return "Process metric " + family + " (VictoriaMetrics/metrics)"
	}
	return family
}

// WritePrometheus writes every series of Set, then the Go runtime and
// process metrics, in the Prometheus text format with a HELP and TYPE line
// per family. It runs on the scrape goroutine and allocates.
func WritePrometheus(w io.Writer) {
	vm.ExposeMetadata(true)
	var raw bytes.Buffer
	Set.WritePrometheus(&raw)
	vm.WriteProcessMetrics(&raw)
	bw := bufio.NewWriterSize(w, 64<<10)
	for line := range bytes.Lines(raw.Bytes()) {
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")):
			fam := string(bytes.TrimSpace(line[len("# HELP "):]))
			if i := strings.IndexByte(fam, ' '); i >= 0 {
				bw.Write(line) // already has a text
				continue
			}
			bw.WriteString("# HELP ")
			bw.WriteString(fam)
			bw.WriteByte(' ')
			bw.WriteString(helpText(fam)) // static texts: nothing to escape
			bw.WriteByte('\n')
		case bytes.HasPrefix(line, []byte("# TYPE ")):
			f := strings.Fields(string(line[len("# TYPE "):]))
			if len(f) != 2 {
				bw.Write(line)
				continue
			}
			typ := f[1]
			_, ours := help[f[0]]
			// VictoriaMetrics writes some cumulative process counters
			// (process_io_*_total) as gauges.
			if !ours && typ == "gauge" && strings.HasSuffix(f[0], "_total") {
				typ = "counter"
			}
			bw.WriteString("# TYPE ")
			bw.WriteString(f[0])
			bw.WriteByte(' ')
			bw.WriteString(typ)
			bw.WriteByte('\n')
		default:
			bw.Write(line)
		}
	}
	bw.Flush()
}

// Handler serves WritePrometheus (GET and HEAD).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if r.Method == http.MethodHead {
			return
		}
		WritePrometheus(w)
	})
}

// Serve starts the export server (APISIX's plugin_attr.prometheus
// export_addr and export_uri: 127.0.0.1:9091, /apisix/prometheus/metrics)
// on its own goroutine. It returns once addr is bound (an error when it
// cannot be) and a stop function that closes the listener and waits for
// the serving goroutine. Other paths answer 404.
func Serve(addr, uri string) (stop func(), err error) {
	if uri == "" || uri[0] != '/' {
		return nil, errors.New("metrics: export_uri must start with /")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(uri, Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed on stop
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if srv.Shutdown(ctx) != nil {
				srv.Close()
			}
			<-done
		})
	}, nil
}

// PromtoolLintAllowed are the `promtool check metrics` lint findings the
// export is known to have, for the tests that run promtool on it: APISIX's
// own names (kept so APISIX dashboards work) and VictoriaMetrics' Go
// runtime names. Anything else — a parse error, a missing HELP, a sluice_
// name that breaks the conventions — is a defect.
var PromtoolLintAllowed = map[string]bool{
	`apisix_http_status counter metrics should have "_total" suffix`:                           true,
	`apisix_bandwidth counter metrics should have "_total" suffix`:                             true,
	`apisix_http_requests_total non-counter metrics should not have "_total" suffix`:           true,
	`go_cgo_calls_count counter metrics should have "_total" suffix`:                           true,
	`go_cgo_calls_count non-histogram and non-summary metrics should not have "_count" suffix`: true,
	`go_cpu_count non-histogram and non-summary metrics should not have "_count" suffix`:       true,
	`go_gc_forced_count counter metrics should have "_total" suffix`:                           true,
	`go_gc_forced_count non-histogram and non-summary metrics should not have "_count" suffix`: true,
}
