// Package metrics owns the metrics sluice exports (the prometheus plugin's
// endpoint): one VictoriaMetrics Set, series names with escaped labels,
// the per-status counters, the data plane's connection gauges
// (SetConnStats) and the export server (Serve, WritePrometheus).
//
// Handles are created when a table is built (on the builder goroutine);
// event loops only call Inc/Update on them, which take no lock and do not
// allocate (counters are atomic, and so are sluice's own Histograms).
// Serve's goroutine reads everything at scrape time.
package metrics

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"
)

// Set holds every exported series.
var Set = vm.NewSet()

// Name formats family{k1="v1",k2="v2"} with Prometheus label escaping; kv
// alternates label names and values.
func Name(family string, kv ...string) string {
	if len(kv) == 0 {
		return family
	}
	var b strings.Builder
	b.WriteString(family)
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		v := kv[i+1]
		for j := 0; j < len(v); j++ { // bytes: other bytes pass as they are
			switch c := v[j]; c {
			case '\\':
				b.WriteString(`\\`)
			case '"':
				b.WriteString(`\"`)
			case '\n':
				b.WriteString(`\n`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Counter returns the counter family{kv...}, creating it on first use.
func Counter(family string, kv ...string) *vm.Counter {
	return Set.GetOrCreateCounter(Name(family, kv...))
}

// LatencyBuckets are APISIX's default apisix_http_latency buckets, in
// milliseconds (apisix/plugins/prometheus/exporter.lua DEFAULT_BUCKETS);
// plugin_attr.prometheus.default_buckets overrides them.
var LatencyBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000}

// SecondsBuckets are the upper bounds of sluice's seconds histograms
// (latency, time to first token).
var SecondsBuckets = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60}

// Statuses counts responses per status code: family{kv..., code="NNN"}.
// The counter of a code is created the first time that code is seen (one
// allocation per code, not per request) and kept in a lock-free slot.
type Statuses struct {
	family string
	kv     []string
	slots  [500]atomic.Pointer[vm.Counter] // codes 100..599
}

// NewStatuses returns the status counters of family with labels kv (the
// code label is added last).
func NewStatuses(family string, kv ...string) *Statuses {
	return &Statuses{family: family, kv: kv}
}

// Inc counts one response with code; codes outside 100..599 are dropped.
func (s *Statuses) Inc(code int) {
	if code < 100 || code > 599 {
		return
	}
	p := &s.slots[code-100]
	c := p.Load()
	if c == nil {
		c = Counter(s.family, append(append([]string{}, s.kv...), "code", strconv.Itoa(code))...)
		p.Store(c) // GetOrCreate returns the same counter to racing loops
	}
	c.Inc()
}

// LLM is the sluice_llm_* series of one (route, arm): time to first token
// and the token usage the upstream reported. The prometheus plugin keeps
// one per route (arm ""), traffic-split one per arm.
type LLM struct {
	ttft               *Histogram
	prompt, completion *vm.Counter
}

// NewLLM returns the LLM series of route and arm (created on first use).
func NewLLM(route, arm string) *LLM {
	return &LLM{
		ttft:       NewHistogram("sluice_llm_ttft_seconds", SecondsBuckets, "route", route, "arm", arm),
		prompt:     Counter("sluice_llm_tokens_total", "route", route, "arm", arm, "type", "prompt"),
		completion: Counter("sluice_llm_tokens_total", "route", route, "arm", arm, "type", "completion"),
	}
}

// Record records one response from event loop loop: start and firstByte
// are unix nanos (firstByte 0: no response byte came), prompt and
// completion the usage object's token counts (0: none reported). It takes
// no lock.
func (l *LLM) Record(loop int, start, firstByte, prompt, completion int64) {
	if firstByte > 0 && firstByte >= start {
		l.ttft.Update(loop, float64(firstByte-start)/1e9)
	}
	if prompt > 0 {
		l.prompt.Add(int(prompt))
	}
	if completion > 0 {
		l.completion.Add(int(completion))
	}
}

var retainMu sync.Mutex

// Arm names one traffic-split arm's series: the route, the rule index and
// the arm label, as trafficsplit labels them, with its configured weight.
type Arm struct {
	Route, Rule, Name string
	Weight            int
}

// SetSplitWeights sets sluice_split_weight{route,rule,arm} of every arm of
// a published table (a table built only to validate a write must not).
// Builder goroutine only; it allocates.
func SetSplitWeights(arms []Arm) {
	for _, a := range arms {
		Set.GetOrCreateGauge(Name("sluice_split_weight", "route", a.Route, "rule", a.Rule, "arm", a.Name), nil).Set(float64(a.Weight))
	}
}

// Retain unregisters the series of configuration that is gone, so the
// endpoint does not grow with route churn and shows no stale arm: every
// series whose route label names a route not in routes (a deleted or
// disabled route), and every series with a non-empty arm label whose
// (route, arm) — and (route, rule, arm) when it has a rule label — is not
// in arms (an arm removed from a live route's traffic-split). Series
// without a route label are kept. Handles of dropped series stay usable
// (requests still in flight on the old table record into them unseen); a
// route or arm created again gets fresh series. It returns how many series
// were dropped. Builder goroutine only; it allocates.
func Retain(routes []string, arms []Arm) int {
	retainMu.Lock()
	defer retainMu.Unlock()
	live := make(map[string]bool, len(routes))
	for _, r := range routes {
		live[r] = true
	}
	liveArm := make(map[Arm]bool, 2*len(arms))
	for _, a := range arms {
		liveArm[Arm{Route: a.Route, Rule: a.Rule, Name: a.Name}] = true
		liveArm[Arm{Route: a.Route, Name: a.Name}] = true
	}
	n := 0
	for _, name := range Names() {
		l, ok := seriesLabels(name)
		if !ok || !l.hasRoute {
			continue
		}
		gone := !live[l.route] ||
			(l.arm != "" && !liveArm[Arm{Route: l.route, Rule: l.rule, Name: l.arm}])
		if gone && (Set.UnregisterMetric(name) || unregisterHistogram(name)) {
			n++
		}
	}
	return n
}

// labels are the values of the labels Retain looks at.
type labels struct {
	route, rule, arm string
	hasRoute         bool
}

// seriesLabels reads the route, rule and arm labels of a series name as
// Name formats it (family{k="v",...}), unescaped; ok is false for a name
// it cannot parse.
func seriesLabels(name string) (l labels, ok bool) {
	i := strings.IndexByte(name, '{')
	if i < 0 {
		return l, true
	}
	rest := name[i+1:]
	for len(rest) > 0 && rest[0] != '}' {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
			return l, false
		}
		key := rest[:eq]
		var b strings.Builder
		j := eq + 2
		for ; j < len(rest) && rest[j] != '"'; j++ {
			c := rest[j]
			if c == '\\' && j+1 < len(rest) {
				j++
				switch rest[j] {
				case 'n':
					c = '\n'
				default:
					c = rest[j]
				}
			}
			b.WriteByte(c)
		}
		if j >= len(rest) {
			return l, false
		}
		switch key {
		case "route":
			l.route, l.hasRoute = b.String(), true
		case "rule":
			l.rule = b.String()
		case "arm":
			l.arm = b.String()
		}
		rest = strings.TrimPrefix(rest[j+1:], ",")
	}
	return l, true
}
