package main

// `sluice stats`: a table, read from the gateway's Prometheus endpoint, of
// each route and of each arm of its traffic-split: configured weight vs
// observed share, requests per second, 4xx and 5xx (% of the responses in
// the interval), p50 and p99 latency (ms).
//
// Rates need two scrapes. The live mode scrapes every --interval (default
// 2s), clears the screen with ANSI codes and prints the deltas between the
// last two scrapes, like top; --once scrapes twice, --interval apart
// (default 1s), prints the table once in plain text and exits, for scripts.
//
// Families read. Arm level, exported by traffic-split:
// sluice_split_requests_total{route,rule,arm}, sluice_split_status_total
// {route,rule,arm,code}, sluice_split_latency_seconds_bucket{route,rule,arm,le}
// and the gauge sluice_split_weight{route,rule,arm}. Route level, the
// prometheus plugin's APISIX names: apisix_http_status{code,route,...} and
// apisix_http_latency_bucket{type="request",route,...,le} (ms). A route row
// uses the route-level families when the endpoint has them for that route
// (the prometheus plugin is on), else the sum of its arms. Series of the
// same route (or arm) that differ in other labels (node, consumer, ...) are
// summed; a counter lower than at the previous scrape was reset and counts
// from zero, as in Prometheus' rate(). Quantiles are Prometheus'
// histogram_quantile over the bucket deltas (linear interpolation within
// the bucket, the upper bound of the last finite bucket for +Inf). Series
// with an empty route label (requests no route matched) are left out.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/conf"
)

const (
	// statsDefaultConfig is read for the metrics address when -c is not
	// given and the file exists.
	statsDefaultConfig = "conf/config.yaml"
	// statsOnceInterval and statsLiveInterval are --interval's defaults.
	statsOnceInterval = time.Second
	statsLiveInterval = 2 * time.Second
	// statsTimeout bounds one scrape.
	statsTimeout = 10 * time.Second
	// statsMaxBody bounds the size of one scrape.
	statsMaxBody = 64 << 20
	// statsClear moves the cursor home and clears the screen.
	statsClear = "\x1b[H\x1b[2J"
)

// The metric families stats reads.
const (
	statsSplitRequests = "sluice_split_requests_total"
	statsSplitStatus   = "sluice_split_status_total"
	statsSplitLatency  = "sluice_split_latency_seconds_bucket"
	statsSplitWeight   = "sluice_split_weight"
	statsHTTPStatus    = "apisix_http_status"
	statsHTTPLatency   = "apisix_http_latency_bucket"
)

func statsUsage(w io.Writer) {
	fmt.Fprint(w, `usage: sluice stats [-c conf/config.yaml] [--url URL] [--once] [--interval D]

Reads the gateway's Prometheus endpoint and prints, per route and per
traffic-split arm ("rule/arm" under its route): the configured WEIGHT, the
observed SHARE of the rule's requests, REQ/S, 4XX and 5XX (% of the
responses), P50 and P99 latency in ms, over the last interval.

  -c FILE        config file giving plugin_attr.prometheus.export_addr and
                 export_uri (default conf/config.yaml when present); read
                 only, nothing is generated or written
  --url URL      metrics endpoint (default from the config, else
                 http://127.0.0.1:9091/apisix/prometheus/metrics)
  --once         scrape twice, --interval apart, print plain text and exit
  --interval D   time between scrapes (default 2s live, 1s with --once)

Live mode redraws every --interval until Ctrl-C. Exit 0 on success, 1 when
the endpoint cannot be scraped, 2 on a usage error.
`)
}

// cmdStats is `sluice stats`.
func cmdStats(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runStats(ctx, args, stdout, stderr)
}

// runStats is cmdStats with the context that ends the live mode.
func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { statsUsage(stderr) }
	cfgPath := fs.String("c", "", "config file (default conf/config.yaml when present)")
	rawURL := fs.String("url", "", "metrics endpoint")
	once := fs.Bool("once", false, "print once and exit")
	interval := fs.Duration("interval", 0, "time between scrapes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice stats: unexpected argument %q\n", fs.Arg(0))
		statsUsage(stderr)
		return 2
	}
	switch {
	case *interval < 0 || (*interval == 0 && statsFlagSet(fs, "interval")):
		fmt.Fprintf(stderr, "sluice stats: --interval %s: want a positive duration\n", *interval)
		return 2
	case *interval == 0 && *once:
		*interval = statsOnceInterval
	case *interval == 0:
		*interval = statsLiveInterval
	}
	u, err := statsURL(*cfgPath, *rawURL)
	if err != nil {
		fmt.Fprintln(stderr, "sluice stats:", err)
		if errors.Is(err, errStatsUsage) {
			return 2
		}
		return 1
	}
	sc := &statsScraper{url: u, hc: &http.Client{Timeout: statsTimeout}}
	if *once {
		return statsOnce(ctx, sc, *interval, stdout, stderr)
	}
	return statsLive(ctx, sc, *interval, stdout, stderr)
}

func statsFlagSet(fs *flag.FlagSet, name string) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// errStatsUsage marks a bad --url.
var errStatsUsage = errors.New("usage")

// statsURL returns the metrics URL: rawURL, else
// http://<plugin_attr.prometheus.export_addr><export_uri> from cfgPath (or
// conf/config.yaml when present), read with conf.Parse so that nothing is
// generated or written; else the built-in default.
func statsURL(cfgPath, rawURL string) (string, error) {
	if rawURL == "" {
		cfg := conf.Default()
		path := cfgPath
		if path == "" {
			if _, err := os.Stat(statsDefaultConfig); err == nil {
				path = statsDefaultConfig
			}
		}
		if path != "" {
			c, err := conf.Parse(path)
			if err != nil {
				return "", err
			}
			cfg = c
		}
		p := cfg.PluginAttr.Prometheus
		ip := strings.Trim(p.ExportAddr.IP, "[]")
		switch ip {
		case "", "0.0.0.0":
			ip = "127.0.0.1"
		case "::":
			ip = "::1"
		}
		return "http://" + net.JoinHostPort(ip, strconv.Itoa(p.ExportAddr.Port)) + p.ExportURI, nil
	}
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url %q: want http://host:port/path: %w", rawURL, errStatsUsage)
	}
	return rawURL, nil
}

// statsOnce prints one table from two scrapes interval apart.
func statsOnce(ctx context.Context, sc *statsScraper, interval time.Duration, stdout, stderr io.Writer) int {
	first, err := sc.scrape(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "sluice stats:", err)
		return 1
	}
	select {
	case <-ctx.Done():
		return 1
	case <-time.After(interval):
	}
	second, err := sc.scrape(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "sluice stats:", err)
		return 1
	}
	var b bytes.Buffer
	writeStatsReport(&b, sc.url, first, second)
	_, _ = stdout.Write(b.Bytes())
	return 0
}

// statsLive redraws the table every interval until ctx ends. The first
// scrape failing is an error (exit 1); a later one is shown on the screen
// and the next tick tries again from the last good scrape.
func statsLive(ctx context.Context, sc *statsScraper, interval time.Duration, stdout, stderr io.Writer) int {
	prev, err := sc.scrape(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintln(stderr, "sluice stats:", err)
		return 1
	}
	var b bytes.Buffer
	frame := func(now time.Time) {
		b.Reset()
		b.WriteString(statsClear)
		fmt.Fprintf(&b, "sluice stats  %s  every %s  %s  (latency in ms; Ctrl-C quits)\n\n",
			sc.url, interval, now.Format("15:04:05"))
	}
	frame(time.Now())
	fmt.Fprintf(&b, "collecting: the first numbers come in %s\n", interval)
	_, _ = stdout.Write(b.Bytes())
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
		cur, err := sc.scrape(ctx)
		if ctx.Err() != nil {
			return 0
		}
		frame(time.Now())
		if err != nil {
			fmt.Fprintf(&b, "error: %v (retrying every %s)\n", err, interval)
		} else {
			writeStatsReport(&b, sc.url, prev, cur)
			prev = cur
		}
		_, _ = stdout.Write(b.Bytes()) // one write per frame: no flicker
	}
}

// writeStatsReport writes the table of the deltas from prev to cur, or a
// message saying why there is none.
func writeStatsReport(w io.Writer, u string, prev, cur *statsScrape) {
	if len(cur.samples) == 0 {
		fmt.Fprintf(w, "no metrics at %s (empty response)\n", u)
		return
	}
	rows := computeStats(prev, cur)
	if len(rows) == 0 {
		fmt.Fprintf(w, "no routes in the metrics at %s: enable the prometheus plugin (or a traffic-split) on a route and send traffic\n", u)
		return
	}
	writeStatsTable(w, rows)
}

// ---- scraping ----

// statsScraper GETs the metrics endpoint.
type statsScraper struct {
	url string
	hc  *http.Client
}

// scrape GETs and parses the endpoint. Errors are one line naming the URL.
func (sc *statsScraper) scrape(ctx context.Context) (*statsScrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sc.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.url, err)
	}
	req.Header.Set("Accept", "text/plain")
	at := time.Now()
	resp, err := sc.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot scrape %s: %w", sc.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot scrape %s: %s", sc.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, statsMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: %w", sc.url, err)
	}
	if len(body) > statsMaxBody {
		return nil, fmt.Errorf("cannot scrape %s: response over %d MiB", sc.url, statsMaxBody>>20)
	}
	samples, err := parseStatsText(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.url, err)
	}
	return newStatsScrape(samples, at), nil
}

// statsScrape is one parsed scrape.
type statsScrape struct {
	at      time.Time
	samples []statsSample      // one per series, in the order of the text
	values  map[string]float64 // series key → value
}

// newStatsScrape indexes samples taken at at; a series repeated in the
// text keeps its last value.
func newStatsScrape(samples []statsSample, at time.Time) *statsScrape {
	s := &statsScrape{at: at, values: make(map[string]float64, len(samples))}
	pos := make(map[string]int, len(samples))
	for _, x := range samples {
		k := x.key()
		if i, ok := pos[k]; ok {
			s.samples[i].value = x.value
		} else {
			pos[k] = len(s.samples)
			s.samples = append(s.samples, x)
		}
		s.values[k] = x.value
	}
	return s
}

// ---- the text exposition format ----

// statsSample is one line of the Prometheus text format.
type statsSample struct {
	name   string
	labels []statsLabel // in the order of the text
	value  float64
}

type statsLabel struct{ name, value string }

// label returns the value of label name, "" when absent.
func (s *statsSample) label(name string) string {
	for _, l := range s.labels {
		if l.name == name {
			return l.value
		}
	}
	return ""
}

// key identifies the series: its name and its labels in name order.
func (s *statsSample) key() string {
	ls := slices.Clone(s.labels)
	slices.SortFunc(ls, func(a, b statsLabel) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	b.WriteString(s.name)
	for _, l := range ls {
		b.WriteByte(0)
		b.WriteString(l.name)
		b.WriteByte(0)
		b.WriteString(l.value)
	}
	return b.String()
}

// parseStatsText parses the Prometheus text exposition format (version
// 0.0.4): one `name{label="value",...} value [timestamp]` per line; blank
// lines and # lines (HELP, TYPE, comments) are skipped. Label values
// unescape \\, \" and \n; any other escape is an error. Errors name the
// line. Timestamps are checked and dropped.
func parseStatsText(data []byte) ([]statsSample, error) {
	var out []statsSample
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		s, ok, err := parseStatsLine(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func statsSpace(l []byte, i int) int {
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	return i
}

// statsNameByte reports whether c may be byte i of a metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*) or, without colons, of a label name.
func statsNameByte(c byte, first, colon bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9':
		return !first
	case c == ':':
		return colon
	}
	return false
}

// parseStatsLine parses one line; ok is false for a blank or # line.
func parseStatsLine(l []byte) (s statsSample, ok bool, err error) {
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	i := statsSpace(l, 0)
	if i == len(l) || l[i] == '#' {
		return s, false, nil
	}
	j := i
	for j < len(l) && statsNameByte(l[j], j == i, true) {
		j++
	}
	if j == i {
		return s, false, fmt.Errorf("want a metric name, got %q", l[i:])
	}
	s.name = string(l[i:j])
	i = statsSpace(l, j)
	if i < len(l) && l[i] == '{' {
		if i, err = s.parseLabels(l, i+1); err != nil {
			return s, false, err
		}
	}
	i = statsSpace(l, i)
	j = i
	for j < len(l) && l[j] != ' ' && l[j] != '\t' {
		j++
	}
	if j == i {
		return s, false, fmt.Errorf("%s: want a value", s.name)
	}
	if s.value, err = strconv.ParseFloat(string(l[i:j]), 64); err != nil {
		return s, false, fmt.Errorf("%s: bad value %q", s.name, l[i:j])
	}
	i = statsSpace(l, j)
	if i < len(l) {
		j = i
		for j < len(l) && l[j] != ' ' && l[j] != '\t' {
			j++
		}
		if _, err := strconv.ParseInt(string(l[i:j]), 10, 64); err != nil {
			return s, false, fmt.Errorf("%s: bad timestamp %q", s.name, l[i:j])
		}
		if k := statsSpace(l, j); k < len(l) {
			return s, false, fmt.Errorf("%s: unexpected %q after the timestamp", s.name, l[k:])
		}
	}
	return s, true, nil
}

// parseLabels parses the labels after '{' at l[i:] and returns the index
// after the closing '}'.
func (s *statsSample) parseLabels(l []byte, i int) (int, error) {
	for {
		i = statsSpace(l, i)
		if i < len(l) && l[i] == '}' {
			return i + 1, nil
		}
		k := i
		for i < len(l) && statsNameByte(l[i], i == k, false) {
			i++
		}
		if i == k {
			return i, fmt.Errorf("%s: want a label name, got %q", s.name, l[k:])
		}
		name := string(l[k:i])
		i = statsSpace(l, i)
		if i >= len(l) || l[i] != '=' {
			return i, fmt.Errorf("%s: label %s: want =", s.name, name)
		}
		i = statsSpace(l, i+1)
		if i >= len(l) || l[i] != '"' {
			return i, fmt.Errorf("%s: label %s: want a quoted value", s.name, name)
		}
		i++
		var v []byte
		closed := false
	value:
		for i < len(l) {
			switch c := l[i]; c {
			case '"':
				closed = true
				i++
				break value
			case '\\':
				if i+1 >= len(l) {
					break value
				}
				switch l[i+1] {
				case '\\', '"':
					v = append(v, l[i+1])
				case 'n':
					v = append(v, '\n')
				default:
					return i, fmt.Errorf("%s: label %s: invalid escape \\%c", s.name, name, l[i+1])
				}
				i += 2
			default:
				v = append(v, c)
				i++
			}
		}
		if !closed {
			return i, fmt.Errorf("%s: label %s: unterminated value", s.name, name)
		}
		for _, x := range s.labels {
			if x.name == name {
				return i, fmt.Errorf("%s: label %s twice", s.name, name)
			}
		}
		s.labels = append(s.labels, statsLabel{name, string(v)})
		i = statsSpace(l, i)
		switch {
		case i < len(l) && l[i] == ',':
			i++
		case i < len(l) && l[i] == '}':
			return i + 1, nil
		default:
			return i, fmt.Errorf("%s: want , or } after label %s", s.name, name)
		}
	}
}

// ---- the table ----

// statsRow is one line of the table; NaN is shown as "-".
type statsRow struct {
	name   string  // route id, or "  rule/arm"
	weight float64 // configured weight (arms)
	share  float64 // % of the rule's requests (arms)
	rps    float64 // requests per second
	p4xx   float64 // % of responses
	p5xx   float64 // % of responses
	p50    float64 // ms
	p99    float64 // ms
}

// statsCodes counts responses by class.
type statsCodes struct{ total, c4xx, c5xx float64 }

func (c *statsCodes) add(code string, n float64) {
	c.total += n
	if len(code) == 3 {
		switch code[0] {
		case '4':
			c.c4xx += n
		case '5':
			c.c5xx += n
		}
	}
}

func (c *statsCodes) sum(o statsCodes) {
	c.total += o.total
	c.c4xx += o.c4xx
	c.c5xx += o.c5xx
}

// statsHist is a classic histogram: upper bound → cumulative count.
type statsHist map[float64]float64

func (h statsHist) add(le string, n float64) {
	b, err := strconv.ParseFloat(le, 64)
	if err != nil || math.IsNaN(b) {
		return
	}
	h[b] += n
}

// quantile is Prometheus' histogram_quantile (promql/quantile.go,
// bucketQuantile) over h, scaled by scale; NaN without observations or
// without a +Inf bucket.
func (h statsHist) quantile(q, scale float64) float64 {
	type bucket struct{ ub, n float64 }
	bs := make([]bucket, 0, len(h))
	for ub, n := range h {
		bs = append(bs, bucket{ub, n})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].ub < bs[j].ub })
	if len(bs) < 2 || !math.IsInf(bs[len(bs)-1].ub, 1) {
		return math.NaN()
	}
	for i := 1; i < len(bs); i++ { // ensureMonotonic
		bs[i].n = max(bs[i].n, bs[i-1].n)
	}
	obs := bs[len(bs)-1].n
	if obs <= 0 {
		return math.NaN()
	}
	rank := q * obs
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].n >= rank })
	switch {
	case b == len(bs)-1:
		return bs[len(bs)-2].ub * scale
	case b == 0 && bs[0].ub <= 0:
		return bs[0].ub * scale
	}
	start, end, n := 0.0, bs[b].ub, bs[b].n
	if b > 0 {
		start = bs[b-1].ub
		n -= bs[b-1].n
		rank -= bs[b-1].n
	}
	return (start + (end-start)*(rank/n)) * scale
}

type statsArm struct {
	rule, arm string
	weight    float64 // NaN without a sluice_split_weight series
	reqs      float64
	codes     statsCodes
	lat       statsHist // seconds
}

type statsRoute struct {
	id       string
	hasCodes bool // apisix_http_status series exist
	codes    statsCodes
	hasLat   bool      // apisix_http_latency_bucket{type="request"} series exist
	lat      statsHist // ms
	arms     map[[2]string]*statsArm
}

// computeStats returns the rows of the deltas from prev to cur, sorted by
// route id, then rule, then arm (numbers in numeric order).
func computeStats(prev, cur *statsScrape) []statsRow {
	secs := cur.at.Sub(prev.at).Seconds()
	routes := map[string]*statsRoute{}
	route := func(id string) *statsRoute {
		r := routes[id]
		if r == nil {
			r = &statsRoute{id: id, lat: statsHist{}, arms: map[[2]string]*statsArm{}}
			routes[id] = r
		}
		return r
	}
	arm := func(r *statsRoute, s *statsSample) *statsArm {
		k := [2]string{s.label("rule"), s.label("arm")}
		a := r.arms[k]
		if a == nil {
			a = &statsArm{rule: k[0], arm: k[1], weight: math.NaN(), lat: statsHist{}}
			r.arms[k] = a
		}
		return a
	}
	for i := range cur.samples {
		s := &cur.samples[i]
		switch s.name {
		case statsSplitRequests, statsSplitStatus, statsSplitLatency, statsSplitWeight, statsHTTPStatus:
		case statsHTTPLatency:
			if s.label("type") != "request" {
				continue
			}
		default:
			continue
		}
		id := s.label("route")
		if id == "" {
			continue
		}
		// A counter below its previous value was reset (restart): it
		// counted from zero since, as rate() assumes.
		d := s.value
		if p, ok := prev.values[s.key()]; ok && p <= s.value {
			d = s.value - p
		}
		r := route(id)
		switch s.name {
		case statsSplitRequests:
			arm(r, s).reqs += d
		case statsSplitStatus:
			arm(r, s).codes.add(s.label("code"), d)
		case statsSplitLatency:
			arm(r, s).lat.add(s.label("le"), d)
		case statsSplitWeight:
			arm(r, s).weight = s.value // a gauge: the current value
		case statsHTTPStatus:
			r.hasCodes = true
			r.codes.add(s.label("code"), d)
		case statsHTTPLatency:
			r.hasLat = true
			r.lat.add(s.label("le"), d)
		}
	}

	ids := make([]string, 0, len(routes))
	for id := range routes {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, statsCompare)
	var rows []statsRow
	for _, id := range ids {
		r := routes[id]
		arms := make([]*statsArm, 0, len(r.arms))
		for _, a := range r.arms {
			arms = append(arms, a)
		}
		slices.SortFunc(arms, func(a, b *statsArm) int {
			if c := statsCompare(a.rule, b.rule); c != 0 {
				return c
			}
			return statsCompare(a.arm, b.arm)
		})
		ruleReqs := map[string]float64{}
		var armCodes statsCodes
		var armReqs float64
		armLat := statsHist{}
		for _, a := range arms {
			ruleReqs[a.rule] += a.reqs
			armReqs += a.reqs
			armCodes.sum(a.codes)
			for ub, n := range a.lat {
				armLat[ub] += n
			}
		}

		row := statsRow{name: statsPrintable(id), weight: math.NaN(), share: math.NaN()}
		codes, reqs := armCodes, armReqs
		if r.hasCodes {
			codes, reqs = r.codes, r.codes.total
		}
		row.rps = statsRate(reqs, secs)
		row.p4xx, row.p5xx = statsPct(codes.c4xx, codes.total), statsPct(codes.c5xx, codes.total)
		if r.hasLat {
			row.p50, row.p99 = r.lat.quantile(0.5, 1), r.lat.quantile(0.99, 1)
		} else {
			row.p50, row.p99 = armLat.quantile(0.5, 1000), armLat.quantile(0.99, 1000)
		}
		rows = append(rows, row)

		for _, a := range arms {
			rows = append(rows, statsRow{
				name:   "  " + statsPrintable(a.rule) + "/" + statsPrintable(a.arm),
				weight: a.weight,
				share:  statsPct(a.reqs, ruleReqs[a.rule]),
				rps:    statsRate(a.reqs, secs),
				p4xx:   statsPct(a.codes.c4xx, a.codes.total),
				p5xx:   statsPct(a.codes.c5xx, a.codes.total),
				p50:    a.lat.quantile(0.5, 1000),
				p99:    a.lat.quantile(0.99, 1000),
			})
		}
	}
	return rows
}

func statsRate(n, secs float64) float64 {
	if secs <= 0 {
		return math.NaN()
	}
	return n / secs
}

func statsPct(n, total float64) float64 {
	if total <= 0 {
		return math.NaN()
	}
	return 100 * n / total
}

// statsPrintable returns s, or s quoted when it holds a control character
// or invalid UTF-8, so that a label value cannot break the table or send
// escape sequences to the terminal.
func statsPrintable(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// statsCompare orders route, rule and arm names: two unsigned integers by
// value ("2" before "10"), anything else as strings.
func statsCompare(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil && x != y {
		if x < y {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// writeStatsTable writes rows under a header: the first column aligned
// left, the numbers right, columns two spaces apart.
func writeStatsTable(w io.Writer, rows []statsRow) {
	cells := [][]string{{"ROUTE", "WEIGHT", "SHARE", "REQ/S", "4XX", "5XX", "P50", "P99"}}
	for _, r := range rows {
		cells = append(cells, []string{
			r.name,
			statsNum(r.weight, -1, ""),
			statsNum(r.share, 1, "%"),
			statsNum(r.rps, 1, ""),
			statsNum(r.p4xx, 1, "%"),
			statsNum(r.p5xx, 1, "%"),
			statsNum(r.p50, 1, ""),
			statsNum(r.p99, 1, ""),
		})
	}
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b bytes.Buffer
	for _, row := range cells {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c)
				b.WriteString(pad)
				continue
			}
			b.WriteString("  ")
			b.WriteString(pad)
			b.WriteString(c)
		}
		b.WriteByte('\n')
	}
	_, _ = w.Write(b.Bytes())
}

// statsNum formats v with prec decimals (-1: as few as needed) and unit;
// NaN and infinities are "-".
func statsNum(v float64, prec int, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + unit
}
