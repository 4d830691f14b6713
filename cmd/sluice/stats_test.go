package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/metrics"

	"github.com/sluice-gw/sluice/internal/proctest"
)

func TestStatsParse(t *testing.T) {
	text := "# HELP sluice_split_requests_total requests per arm\n" +
		"# TYPE sluice_split_requests_total counter\n" +
		"\n" +
		"   # an indented comment\n" +
		`sluice_split_requests_total{route="1",rule="0",arm="blue"} 80` + "\n" +
		`esc{a="q\"b\\s\nl",b=""} -1.5e3 1700000000000` + "\n" +
		"plain 42\r\n" +
		"ns:colon_name\t{ x = \"1\" , } +Inf\n" +
		"empty{} NaN\n" +
		`h_bucket{le="0.005"}7` + "\n" + // no space after }
		"last 3" // no final newline
	ss, err := parseStatsText([]byte(text))
	require.NoError(t, err)
	require.Len(t, ss, 7)
	assert.Equal(t, statsSample{"sluice_split_requests_total", []statsLabel{{"route", "1"}, {"rule", "0"}, {"arm", "blue"}}, 80}, ss[0])
	assert.Equal(t, statsSample{"esc", []statsLabel{{"a", "q\"b\\s\nl"}, {"b", ""}}, -1500}, ss[1])
	assert.Equal(t, statsSample{"plain", nil, 42}, ss[2])
	assert.Equal(t, statsSample{"ns:colon_name", []statsLabel{{"x", "1"}}, math.Inf(1)}, ss[3])
	assert.Equal(t, "empty", ss[4].name)
	assert.True(t, math.IsNaN(ss[4].value))
	assert.Equal(t, statsSample{"h_bucket", []statsLabel{{"le", "0.005"}}, 7}, ss[5])
	assert.Equal(t, statsSample{"last", nil, 3}, ss[6])

	bad := func(text, want string) {
		t.Helper()
		ss, err := parseStatsText([]byte(text))
		assert.Nil(t, ss, text)
		assert.EqualError(t, err, want, text)
	}
	bad("ok 1\n{a=\"b\"} 1\n", `metrics line 2: want a metric name, got "{a=\"b\"} 1"`)
	bad("9lives 1", `metrics line 1: want a metric name, got "9lives 1"`)
	bad("a", "metrics line 1: a: want a value")
	bad("a{b=\"c\"}", "metrics line 1: a: want a value")
	bad("a one", `metrics line 1: a: bad value "one"`)
	bad("a 1 2 3", `metrics line 1: a: unexpected "3" after the timestamp`)
	bad("a 1 soon", `metrics line 1: a: bad timestamp "soon"`)
	bad(`a{b="\t"} 1`, `metrics line 1: a: label b: invalid escape \t`)
	bad(`a{b="c} 1`, "metrics line 1: a: label b: unterminated value")
	bad(`a{b="c\`, "metrics line 1: a: label b: unterminated value")
	bad(`a{b="c",b="d"} 1`, "metrics line 1: a: label b twice")
	bad(`a{b} 1`, "metrics line 1: a: label b: want =")
	bad(`a{b=c} 1`, "metrics line 1: a: label b: want a quoted value")
	bad(`a{b="c" d="e"} 1`, "metrics line 1: a: want , or } after label b")
	bad(`a{b:c="d"} 1`, "metrics line 1: a: label b: want =")
	bad(`a{1="d"} 1`, `metrics line 1: a: want a label name, got "1=\"d\"} 1"`)
	bad("a{b=\"c\n\"} 1", "metrics line 1: a: label b: unterminated value")
}

// TestStatsParseExport parses what the metrics package (the one sluice's
// endpoint is written with) exports, escapes included.
func TestStatsParseExport(t *testing.T) {
	route := "r\"1\\x\ny" // every escape
	metrics.Counter(statsSplitRequests, "route", route, "rule", "0", "arm", "blue").Add(5)
	h := metrics.NewHistogram("sluice_split_latency_seconds", metrics.SecondsBuckets, "route", route, "rule", "0", "arm", "blue")
	h.Update(0, 0.0015)
	h.Update(0, 0.3)
	buf := bytes.NewBuffer(exportOf(t, metrics.Name("", "route", route)))
	ss, err := parseStatsText(buf.Bytes())
	require.NoError(t, err, buf.String())

	byKey := map[string]float64{}
	for _, s := range ss {
		assert.Equal(t, route, s.label("route"), "%+v", s)
		byKey[s.name+" "+s.label("le")] = s.value
	}
	assert.Equal(t, 5.0, byKey[statsSplitRequests+" "])
	assert.Equal(t, 0.0, byKey[statsSplitLatency+" 0.001"])
	assert.Equal(t, 1.0, byKey[statsSplitLatency+" 0.002"])
	assert.Equal(t, 1.0, byKey[statsSplitLatency+" 0.2"])
	assert.Equal(t, 2.0, byKey[statsSplitLatency+" 0.5"])
	assert.Equal(t, 2.0, byKey[statsSplitLatency+" +Inf"])
	assert.Equal(t, 2.0, byKey["sluice_split_latency_seconds_count "])
	assert.InDelta(t, 0.3015, byKey["sluice_split_latency_seconds_sum "], 1e-9)
}

// exportOf is the metrics export (HELP and TYPE lines included) with only
// the series whose labels start with prefix's: other tests share the
// package's registry.
func exportOf(t *testing.T, prefix string) []byte {
	t.Helper()
	prefix = strings.TrimSuffix(prefix, "}")
	var all, b bytes.Buffer
	metrics.WritePrometheus(&all)
	for line := range bytes.Lines(all.Bytes()) {
		if line[0] == '#' || bytes.Contains(line, []byte(prefix)) {
			b.Write(line)
		}
	}
	return b.Bytes()
}

// formatStatsSamples writes samples back in the text format.
func formatStatsSamples(ss []statsSample) []byte {
	var b bytes.Buffer
	for _, s := range ss {
		kv := make([]string, 0, 2*len(s.labels))
		for _, l := range s.labels {
			kv = append(kv, l.name, l.value)
		}
		b.WriteString(metrics.Name(s.name, kv...))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(s.value, 'g', -1, 64))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzStatsParse: parseStatsText never panics, and what it parses, written
// back out, parses the same.
func FuzzStatsParse(f *testing.F) {
	f.Add([]byte(statsPrev))
	f.Add([]byte(statsCur))
	f.Add([]byte("# TYPE a counter\na{b=\"\\\\\\\"\\n\"} 1 123\r\nc NaN\n"))
	f.Add([]byte("a {x=\"1\",} -Inf\n\n\t# c\nb{}0x1p-2"))
	f.Add([]byte("a{b=\"c\" 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := parseStatsText(data)
		if err != nil {
			require.Nil(t, ss)
			return
		}
		out := formatStatsSamples(ss)
		ss2, err := parseStatsText(out)
		require.NoError(t, err, "%q", out)
		require.Len(t, ss2, len(ss), "%q", out)
		for i := range ss {
			require.Equal(t, ss[i].name, ss2[i].name)
			require.Equal(t, ss[i].labels, ss2[i].labels)
			require.Equal(t, math.Float64bits(ss[i].value), math.Float64bits(ss2[i].value), "%q", out)
		}
		// computing a table from any input never panics either
		sc := newStatsScrape(ss, time.Unix(10, 0))
		_ = computeStats(newStatsScrape(nil, time.Unix(0, 0)), sc)
		_ = computeStats(sc, sc)
	})
}

func TestStatsQuantile(t *testing.T) {
	inf := math.Inf(1)
	f := func(h statsHist, q, want float64) {
		t.Helper()
		got := h.quantile(q, 1)
		if math.IsNaN(want) {
			assert.True(t, math.IsNaN(got), "%v q=%v: got %v", h, q, got)
			return
		}
		assert.InDelta(t, want, got, 1e-9, "%v q=%v", h, q)
	}
	// interpolation from 0 in the first bucket
	f(statsHist{10: 100, inf: 100}, 0.5, 5)
	f(statsHist{10: 100, inf: 100}, 0.99, 9.9)
	// within a later bucket
	f(statsHist{1: 0, 5: 30, 10: 70, 50: 100, inf: 100}, 0.5, 7.5)
	f(statsHist{1: 0, 5: 30, 10: 70, 50: 100, inf: 100}, 0.99, 10+40*29.0/30)
	// in the +Inf bucket: the last finite upper bound
	f(statsHist{1: 10, 2: 20, inf: 100}, 0.5, 2)
	// a first bucket at or below 0: its upper bound
	f(statsHist{-1: 10, 2: 20, inf: 20}, 0.1, -1)
	// no observations, no +Inf bucket, a single bucket: none
	f(statsHist{1: 0, inf: 0}, 0.5, math.NaN())
	f(statsHist{1: 5, 2: 10}, 0.5, math.NaN())
	f(statsHist{inf: 10}, 0.5, math.NaN())
	// non-monotonic counts (a reset bucket) are made monotonic
	f(statsHist{1: 10, 2: 4, 4: 20, inf: 20}, 0.75, 3) // 2 + 2*(15-10)/(20-10); unfixed: 3.375
	// scale: seconds to ms
	assert.InDelta(t, 7.5, statsHist{0.005: 20, 0.01: 60, 0.05: 79, inf: 80}.quantile(0.5, 1000), 1e-9)
}

// statsPrev and statsCur are two scrapes 10 s apart: route 1 splits rule 0
// 80/20 between blue and green and has the prometheus plugin; route 2 only
// the plugin, with a counter reset; route 10 is idle; route chat has a split
// and no plugin; route "" (no route matched) is left out.
const statsPrev = `# HELP apisix_http_status HTTP status codes per service in APISIX
# TYPE apisix_http_status counter
apisix_http_status{code="200",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.1"} 500
apisix_http_status{code="200",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.2"} 500
apisix_http_status{code="500",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.1"} 10
apisix_http_status{code="200",route="2",matched_uri="/b",matched_host="",service="",consumer="",node="10.0.0.3"} 500
apisix_http_status{code="404",route="10",matched_uri="/c",matched_host="",service="",consumer="",node=""} 7
apisix_http_status{code="404",route="",matched_uri="",matched_host="",service="",consumer="",node=""} 1
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="1"} 0
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="5"} 100
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="10"} 200
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="50"} 300
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="+Inf"} 300
apisix_http_latency_bucket{type="upstream",route="1",service="",consumer="",node="10.0.0.1",le="1"} 0
apisix_http_latency_bucket{type="upstream",route="1",service="",consumer="",node="10.0.0.1",le="+Inf"} 0
sluice_split_weight{route="1",rule="0",arm="blue"} 80
sluice_split_weight{route="1",rule="0",arm="green"} 20
sluice_split_requests_total{route="1",rule="0",arm="blue"} 1000
sluice_split_requests_total{route="1",rule="0",arm="green"} 250
sluice_split_status_total{route="1",rule="0",arm="blue",code="200"} 990
sluice_split_status_total{route="1",rule="0",arm="blue",code="500"} 10
sluice_split_status_total{route="1",rule="0",arm="green",code="200"} 250
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="0.005"} 100
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="0.01"} 300
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="0.05"} 390
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="+Inf"} 400
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="0.005"} 0
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="0.01"} 50
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="0.02"} 100
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="+Inf"} 100
sluice_split_weight{route="chat",rule="0",arm="a"} 1
sluice_split_weight{route="chat",rule="0",arm="b"} 1
sluice_split_requests_total{route="chat",rule="0",arm="a"} 3
sluice_split_requests_total{route="chat",rule="0",arm="b"} 3
apisix_nginx_http_current_connections{state="active"} 3
`

const statsCur = `# TYPE apisix_http_status counter
apisix_http_status{code="200",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.1"} 550
apisix_http_status{code="200",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.2"} 545
apisix_http_status{code="500",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.1"} 14
apisix_http_status{code="404",route="1",matched_uri="/v1/*",matched_host="",service="",consumer="",node="10.0.0.2"} 1
apisix_http_status{code="200",route="2",matched_uri="/b",matched_host="",service="",consumer="",node="10.0.0.3"} 30
apisix_http_status{code="404",route="10",matched_uri="/c",matched_host="",service="",consumer="",node=""} 7
apisix_http_status{code="404",route="",matched_uri="",matched_host="",service="",consumer="",node=""} 99
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="1"} 0
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="5"} 130
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="10"} 270
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="50"} 400
apisix_http_latency_bucket{type="request",route="1",service="",consumer="",node="10.0.0.1",le="+Inf"} 400
apisix_http_latency_bucket{type="upstream",route="1",service="",consumer="",node="10.0.0.1",le="1"} 1000
apisix_http_latency_bucket{type="upstream",route="1",service="",consumer="",node="10.0.0.1",le="+Inf"} 1000
sluice_split_weight{route="1",rule="0",arm="blue"} 80
sluice_split_weight{route="1",rule="0",arm="green"} 20
sluice_split_requests_total{route="1",rule="0",arm="blue"} 1080
sluice_split_requests_total{route="1",rule="0",arm="green"} 270
sluice_split_status_total{route="1",rule="0",arm="blue",code="200"} 1066
sluice_split_status_total{route="1",rule="0",arm="blue",code="500"} 14
sluice_split_status_total{route="1",rule="0",arm="green",code="200"} 269
sluice_split_status_total{route="1",rule="0",arm="green",code="404"} 1
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="0.005"} 120
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="0.01"} 360
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="0.05"} 469
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="blue",le="+Inf"} 480
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="0.005"} 0
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="0.01"} 60
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="0.02"} 120
sluice_split_latency_seconds_bucket{route="1",rule="0",arm="green",le="+Inf"} 120
sluice_split_weight{route="chat",rule="0",arm="a"} 1
sluice_split_weight{route="chat",rule="0",arm="b"} 1
sluice_split_requests_total{route="chat",rule="0",arm="a"} 8
sluice_split_requests_total{route="chat",rule="0",arm="b"} 8
apisix_nginx_http_current_connections{state="active"} 3
`

func statsScrapeOf(t testing.TB, text string, at time.Time) *statsScrape {
	t.Helper()
	ss, err := parseStatsText([]byte(text))
	require.NoError(t, err)
	return newStatsScrape(ss, at)
}

func TestStatsCompute(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	rows := computeStats(statsScrapeOf(t, statsPrev, t0), statsScrapeOf(t, statsCur, t0.Add(10*time.Second)))
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	require.Equal(t, []string{"1", "  0/blue", "  0/green", "2", "10", "chat", "  0/a", "  0/b"}, names)

	blue, green := rows[1], rows[2]
	assert.Equal(t, 80.0, blue.weight)
	assert.Equal(t, 20.0, green.weight)
	assert.InDelta(t, 80.0, blue.share, 1e-9)
	assert.InDelta(t, 20.0, green.share, 1e-9)
	assert.InDelta(t, 8.0, blue.rps, 1e-9)
	assert.InDelta(t, 2.0, green.rps, 1e-9)
	assert.InDelta(t, 5.0, blue.p5xx, 1e-9)  // 4 of 80
	assert.InDelta(t, 5.0, green.p4xx, 1e-9) // 1 of 20
	assert.InDelta(t, 7.5, blue.p50, 1e-9)   // 0.005 + 0.005*(40-20)/40 s
	assert.InDelta(t, 50.0, blue.p99, 1e-9)  // rank 79.2 > 79: the +Inf bucket
	assert.InDelta(t, 10.0, green.p50, 1e-9)
	assert.InDelta(t, 19.8, green.p99, 1e-9) // 0.01 + 0.01*(19.8-10)/10 s

	var b bytes.Buffer
	writeStatsTable(&b, rows)
	assert.Equal(t, `ROUTE      WEIGHT  SHARE  REQ/S   4XX   5XX   P50   P99
1               -      -   10.0  1.0%  4.0%   7.5  48.7
  0/blue       80  80.0%    8.0  0.0%  5.0%   7.5  50.0
  0/green      20  20.0%    2.0  5.0%  0.0%  10.0  19.8
2               -      -    3.0  0.0%  0.0%     -     -
10              -      -    0.0     -     -     -     -
chat            -      -    1.0     -     -     -     -
  0/a           1  50.0%    0.5     -     -     -     -
  0/b           1  50.0%    0.5     -     -     -     -
`, b.String())
}

// TestStatsComputeExport computes the table from two real exports of the
// metrics package.
func TestStatsComputeExport(t *testing.T) {
	lbl := func(arm string) []string { return []string{"route", "stats-compute", "rule", "0", "arm", arm} }
	metrics.Set.GetOrCreateGauge(metrics.Name(statsSplitWeight, lbl("v1")...), nil).Set(3)
	metrics.Set.GetOrCreateGauge(metrics.Name(statsSplitWeight, lbl("v2")...), nil).Set(1)
	req := func(arm string) *vm.Counter { return metrics.Counter(statsSplitRequests, lbl(arm)...) }
	lat := func(arm string) *metrics.Histogram {
		return metrics.NewHistogram("sluice_split_latency_seconds", metrics.SecondsBuckets, lbl(arm)...)
	}
	scrape := func(at time.Time) *statsScrape {
		return statsScrapeOf(t, string(exportOf(t, `{route="stats-compute"}`)), at)
	}
	req("v1").Add(1000)
	lat("v1").Update(0, 5)
	t0 := time.Unix(0, 0)
	prev := scrape(t0)
	for i := 0; i < 30; i++ {
		req("v1").Inc()
		lat("v1").Update(0, 0.0015) // (0.001, 0.002]
	}
	for i := 0; i < 10; i++ {
		req("v2").Inc()
		lat("v2").Update(0, 0.3) // (0.2, 0.5]
	}
	rows := computeStats(prev, scrape(t0.Add(2*time.Second)))
	require.Len(t, rows, 3)
	assert.Equal(t, "  0/v1", rows[1].name)
	assert.Equal(t, 3.0, rows[1].weight)
	assert.InDelta(t, 75.0, rows[1].share, 1e-9)
	assert.InDelta(t, 15.0, rows[1].rps, 1e-9)
	assert.InDelta(t, 1.5, rows[1].p50, 1e-9) // 1 + 1*(15/30) ms
	assert.InDelta(t, 25.0, rows[2].share, 1e-9)
	assert.InDelta(t, 350.0, rows[2].p50, 1e-9) // 200 + 300*(5/10) ms
	assert.InDelta(t, 20.0, rows[0].rps, 1e-9)
}

// statsServer serves metrics whose counters advance by one step at each
// scrape: route 1 splits rule 0 80/20 between blue and green.
func statsServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apisix/prometheus/metrics" {
			http.NotFound(w, r)
			return
		}
		k := n.Add(1) - 1 // 0 at the first scrape
		fmt.Fprintf(w, "# TYPE sluice_split_requests_total counter\n")
		for _, a := range []struct {
			arm            string
			weight, reqs   int64
			c4xx, c5xx     int64
			fast, slow, to int64 // per step: <=5ms, <=10ms, +Inf
		}{
			{"blue", 80, 80, 0, 8, 40, 40, 0},
			{"green", 20, 20, 1, 0, 0, 10, 10},
		} {
			l := `route="1",rule="0",arm="` + a.arm + `"`
			fmt.Fprintf(w, "sluice_split_weight{%s} %d\n", l, a.weight)
			fmt.Fprintf(w, "sluice_split_requests_total{%s} %d\n", l, 100+k*a.reqs)
			fmt.Fprintf(w, "sluice_split_status_total{%s,code=\"200\"} %d\n", l, 100+k*(a.reqs-a.c4xx-a.c5xx))
			fmt.Fprintf(w, "sluice_split_status_total{%s,code=\"429\"} %d\n", l, k*a.c4xx)
			fmt.Fprintf(w, "sluice_split_status_total{%s,code=\"502\"} %d\n", l, k*a.c5xx)
			fmt.Fprintf(w, "sluice_split_latency_seconds_bucket{%s,le=\"0.005\"} %d\n", l, k*a.fast)
			fmt.Fprintf(w, "sluice_split_latency_seconds_bucket{%s,le=\"0.01\"} %d\n", l, k*(a.fast+a.slow))
			fmt.Fprintf(w, "sluice_split_latency_seconds_bucket{%s,le=\"+Inf\"} %d\n", l, k*(a.fast+a.slow+a.to))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// statsFields returns the table rows of out by their first field.
func statsFields(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 8, "%q in\n%s", line, out)
		rows[f[0]] = f[1:]
	}
	return rows
}

func TestStatsOnce(t *testing.T) {
	srv, n := statsServer(t)
	var out, errb bytes.Buffer
	code := cmdStats([]string{"--url", srv.URL + "/apisix/prometheus/metrics", "--once", "--interval", "200ms"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Empty(t, errb.String())
	assert.Equal(t, int64(2), n.Load(), "two scrapes")
	assert.NotContains(t, out.String(), "\x1b", "--once prints plain text")

	rows := statsFields(t, out.String())
	require.Len(t, rows, 4, out.String())
	assert.Equal(t, []string{"WEIGHT", "SHARE", "REQ/S", "4XX", "5XX", "P50", "P99"}, rows["ROUTE"])
	// REQ/S depends on the clock: check it is a positive number, and the rest exactly.
	for name, want := range map[string][]string{
		"1":       {"-", "-", "", "1.0%", "8.0%", "6.0", "10.0"},
		"0/blue":  {"80", "80.0%", "", "0.0%", "10.0%", "5.0", "9.9"},
		"0/green": {"20", "20.0%", "", "5.0%", "0.0%", "10.0", "10.0"},
	} {
		got := rows[name]
		require.NotNil(t, got, "row %s in\n%s", name, out.String())
		rps, err := strconv.ParseFloat(got[2], 64)
		require.NoError(t, err, got[2])
		assert.Greater(t, rps, 0.0, name)
		got[2] = ""
		assert.Equal(t, want, got, name)
	}
	lines := strings.Split(out.String(), "\n")
	assert.Equal(t, []string{"1", "0/blue", "0/green"}, []string{
		strings.Fields(lines[1])[0], strings.Fields(lines[2])[0], strings.Fields(lines[3])[0]})
	assert.True(t, strings.HasPrefix(lines[2], "  0/blue"), "arms are indented")
}

func TestStatsLive(t *testing.T) {
	srv, _ := statsServer(t)
	out := &proctest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runStats(ctx, []string{"--url", srv.URL + "/apisix/prometheus/metrics", "--interval", "50ms"}, out, out)
	}()
	frames := func() []string { return strings.Split(out.String(), statsClear)[1:] }
	require.Eventually(t, func() bool { return len(frames()) >= 3 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.Equal(t, 0, <-done)
	f := frames()
	assert.Contains(t, f[0], "collecting")
	for _, fr := range f[1:3] {
		assert.Contains(t, fr, "sluice stats  "+srv.URL+"/apisix/prometheus/metrics  every 50ms")
		assert.Regexp(t, `(?m)^  0/blue +80 +80\.0% `, fr)
		assert.Regexp(t, `(?m)^  0/green +20 +20\.0% `, fr)
	}
}

func TestStatsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + ln.Addr().String() + "/apisix/prometheus/metrics"
	require.NoError(t, ln.Close())
	for _, args := range [][]string{{"--once"}, {}} {
		var out, errb bytes.Buffer
		code := cmdStats(append([]string{"--url", u, "--interval", "10ms"}, args...), &out, &errb)
		assert.Equal(t, 1, code)
		assert.Empty(t, out.String())
		assert.Regexp(t, `^sluice stats: cannot scrape `+u+`: .*connection refused\n$`, errb.String())
	}

	srv, _ := statsServer(t)
	var out, errb bytes.Buffer
	assert.Equal(t, 1, cmdStats([]string{"--url", srv.URL + "/nope", "--once"}, &out, &errb))
	assert.Equal(t, "sluice stats: cannot scrape "+srv.URL+"/nope: 404 Not Found\n", errb.String())
}

func TestStatsNothingToShow(t *testing.T) {
	var body atomic.Pointer[string]
	body.Store(new(string))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, *body.Load()) }))
	t.Cleanup(srv.Close)
	run := func() string {
		var out, errb bytes.Buffer
		require.Equal(t, 0, cmdStats([]string{"--url", srv.URL, "--once", "--interval", "1ms"}, &out, &errb), errb.String())
		return out.String()
	}
	assert.Equal(t, "no metrics at "+srv.URL+" (empty response)\n", run())
	b := "# TYPE apisix_nginx_http_current_connections gauge\napisix_nginx_http_current_connections{state=\"active\"} 1\n"
	body.Store(&b)
	assert.Equal(t, "no routes in the metrics at "+srv.URL+": enable the prometheus plugin (or a traffic-split) on a route and send traffic\n", run())

	b = "apisix_http_status{code=\"200\",route=\"1\"} 1\nbad line\n"
	body.Store(&b)
	var out, errb bytes.Buffer
	assert.Equal(t, 1, cmdStats([]string{"--url", srv.URL, "--once", "--interval", "1ms"}, &out, &errb))
	assert.Equal(t, "sluice stats: "+srv.URL+`: metrics line 2: bad: bad value "line"`+"\n", errb.String())
}

// TestStatsURLFromConfig: the URL comes from plugin_attr.prometheus, and
// reading the config writes nothing (no admin key is generated).
func TestStatsURLFromConfig(t *testing.T) {
	srv, _ := statsServer(t)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`deployment:
  role: traditional
  role_traditional:
    config_provider: embedded
  admin:
    admin_key_required: true
  embedded:
    path: `+data+`
plugin_attr:
  prometheus:
    export_addr: {ip: `+host+`, port: `+port+`}
    export_uri: /apisix/prometheus/metrics
`), 0o600))
	u, err := statsURL(cfg, "")
	require.NoError(t, err)
	assert.Equal(t, srv.URL+"/apisix/prometheus/metrics", u)

	var out, errb bytes.Buffer
	require.Equal(t, 0, cmdStats([]string{"-c", cfg, "--once", "--interval", "10ms"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "  0/blue")
	_, err = os.Stat(data)
	assert.True(t, os.IsNotExist(err), "stats must not create the data directory or an admin key")

	u, err = statsURL("", "") // no conf/config.yaml beside the test
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9091/apisix/prometheus/metrics", u)
	u, err = statsURL("", "10.0.0.1:9091/m")
	require.NoError(t, err)
	assert.Equal(t, "http://10.0.0.1:9091/m", u)

	require.NoError(t, os.WriteFile(cfg, []byte("plugin_attr:\n  prometheus:\n    export_addr: {ip: 0.0.0.0, port: 19091}\n"), 0o600))
	u, err = statsURL(cfg, "")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:19091/apisix/prometheus/metrics", u)
}

func TestStatsUsage(t *testing.T) {
	f := func(want int, wantErr string, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		assert.Equal(t, want, cmdStats(args, &out, &errb), "%v", args)
		assert.Contains(t, errb.String(), wantErr, "%v", args)
	}
	f(2, "flag provided but not defined: -x", "-x")
	f(2, "--interval 0s: want a positive duration", "--interval", "0")
	f(2, "--interval -1s: want a positive duration", "--interval", "-1s")
	f(2, `unexpected argument "extra"`, "--once", "extra")
	f(2, `--url "ftp://x/m": want http://host:port/path`, "--url", "ftp://x/m")
	f(0, "usage: sluice stats", "-h")
	f(1, "no such file", "-c", filepath.Join(t.TempDir(), "missing.yaml"), "--once")
}

func TestStatsCompareAndPrintable(t *testing.T) {
	ids := []string{"b", "10", "2", "a", "1", "01"}
	slices.SortFunc(ids, statsCompare)
	assert.Equal(t, []string{"01", "1", "2", "10", "a", "b"}, ids)
	assert.Equal(t, "chat", statsPrintable("chat"))
	assert.Equal(t, "modèle", statsPrintable("modèle"))
	assert.Equal(t, `"a\x1b[2Jb"`, statsPrintable("a\x1b[2Jb"))
	assert.Equal(t, `"a\nb"`, statsPrintable("a\nb"))
}

// TestStatsOnceRealExporter reads the real export handler (HELP and TYPE
// lines, Go runtime series, the handles the plugins create), with traffic
// recorded between the two scrapes.
func TestStatsOnceRealExporter(t *testing.T) {
	lbl := func(arm string) []string { return []string{"route", "stats-exp", "rule", "0", "arm", arm} }
	metrics.Set.GetOrCreateGauge(metrics.Name(statsSplitWeight, lbl("blue")...), nil).Set(3)
	metrics.Set.GetOrCreateGauge(metrics.Name(statsSplitWeight, lbl("green")...), nil).Set(1)
	traffic := func(arm string, n, n5xx int, secs float64) {
		reqs := metrics.Counter(statsSplitRequests, lbl(arm)...)
		st := metrics.NewStatuses(statsSplitStatus, lbl(arm)...)
		h := metrics.NewHistogram("sluice_split_latency_seconds", metrics.SecondsBuckets, lbl(arm)...)
		for i := 0; i < n; i++ {
			reqs.Inc()
			if i < n5xx {
				st.Inc(503)
			} else {
				st.Inc(200)
			}
			h.Update(0, secs)
		}
	}
	var scrapes atomic.Int64
	exp := metrics.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scrapes.Add(1) == 2 { // traffic between the scrapes
			traffic("blue", 30, 0, 0.0015)
			traffic("green", 10, 1, 0.3)
		}
		exp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	var out, errb bytes.Buffer
	require.Equal(t, 0, cmdStats([]string{"--url", srv.URL, "--once", "--interval", "10ms"}, &out, &errb), errb.String())
	rows := statsFields(t, out.String())
	for name, want := range map[string][]string{
		"0/blue":  {"3", "75.0%", "", "0.0%", "0.0%", "1.5", "2.0"},
		"0/green": {"1", "25.0%", "", "0.0%", "10.0%", "350.0", "497.0"},
	} {
		got := rows[name]
		require.NotNil(t, got, "row %s in\n%s", name, out.String())
		got[2] = ""
		assert.Equal(t, want, got, name)
	}
	assert.Contains(t, rows, "stats-exp")
}
