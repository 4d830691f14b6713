// Package prometheus is APISIX's prometheus plugin (priority 500, log
// phase): per request it counts apisix_http_status, observes
// apisix_http_latency (request, upstream, apisix; ms, classic le buckets)
// and adds apisix_bandwidth (ingress, egress), with APISIX 3.9's metric
// names and labels so APISIX's Grafana dashboards work. It also records
// sluice_llm_tokens_total and sluice_llm_ttft_seconds with arm="" for
// requests that no traffic-split arm took (traffic-split records the
// arm-level series itself), and apisix_upstream_status for the route's
// upstream nodes. The export server is package metrics' Serve.
//
// Compile runs on the builder goroutine: it creates the route's series for
// every address of the route's upstream (node label = the upstream IP),
// consumer "". Log runs on the request's event loop: other label sets (a
// consumer, a split arm's upstream, an address DNS added later) are created
// the first time they are seen and kept in a copy-on-write hash table that
// loops read without locks, so Log allocates only the first time a label
// set or status code appears.
//
// In a global rule the plugin covers every route (series are created per
// route on first use, with service=""); a route that also carries the
// plugin itself is counted once, by its own instance (PreferRoute).
package prometheus

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/plugin"
)

const name = "prometheus"

type prom struct{}

func init() { plugin.Register(prom{}) }

// Name is the APISIX plugin name.
func (prom) Name() string { return name }

// Priority is APISIX's: apisix/plugins/prometheus.lua, 500.
func (prom) Priority() int { return 500 }

// inst is a compiled prometheus configuration.
type inst struct {
	buckets []float64 // apisix_http_latency upper bounds, ms
	route   *routeSeries
	// routes holds a global rule's per-route series, created on first use
	// (a global rule is compiled once for every route).
	routes *table[string, routeSeries]
	// service is the service label of routes created lazily ("": a global
	// rule does not know the route's service).
	service string
	// preferName: label routes by name (a global rule's, per request)
	preferName bool
}

var (
	_ plugin.Logger      = (*inst)(nil)
	_ plugin.UsageReader = (*inst)(nil)
)

// routeSeries is the series of one route.
type routeSeries struct {
	route, service string
	buckets        []float64
	llm            *metrics.LLM // arm "": requests that took no split arm
	sets           table[labelKey, labelSet]
}

// labelKey is what varies per request within a route: APISIX's consumer
// and node (the upstream IP; invalid when no upstream was reached).
type labelKey struct {
	consumer string
	node     netip.Addr
	uri      string // the route's uri pattern that matched (matched_uri)
}

// labelSet is the per-request series of one (route, consumer, node).
type labelSet struct {
	status            *metrics.Statuses
	latReq, latUp, la *metrics.Histogram // request, upstream, apisix
	bwIn, bwOut       *vm.Counter
}

// Compile checks the configuration against APISIX's schema (prefer_name,
// a boolean; other keys are allowed, as in APISIX) and creates the route's
// series. With prefer_name the route label is the route's name and the
// service label its service's name, where they have one (APISIX). Compiled
// for validation only (no route and not a global rule: a service's or
// plugin_config's plugins no route uses), it creates none.
func (prom) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, plugin.WrongType(name, "", "object", plugin.JSONKindInt(raw))
	}
	if v, ok := m["prefer_name"]; ok && plugin.JSONKindInt(v) != "boolean" {
		return nil, plugin.WrongType(name, "prefer_name", "boolean", plugin.JSONKindInt(v))
	}
	buckets, err := bucketsFrom(env)
	if err != nil {
		return nil, err
	}
	preferName := string(bytes.TrimSpace(m["prefer_name"])) == "true"
	p := &inst{buckets: buckets, service: env.ServiceID, preferName: preferName}
	switch {
	case env.RouteID != "":
		route, svc := env.RouteID, env.ServiceID
		if preferName {
			route, svc = cmp.Or(env.RouteName, route), cmp.Or(env.ServiceName, svc)
		}
		p.route = newRouteSeries(route, svc, buckets)
		seed(p.route, env.RouteUpstream)
		upstreamStatus(env.RouteUpstream)
	case env.Global:
		p.routes = &table[string, routeSeries]{hash: hashString, own: strings.Clone}
	}
	return p, nil
}

// bucketsFrom reads plugin_attr.prometheus.default_buckets (ms).
func bucketsFrom(env *plugin.Env) ([]float64, error) {
	if env.Attr == nil {
		return metrics.LatencyBuckets, nil
	}
	raw := env.Attr(name)
	if len(raw) == 0 {
		return metrics.LatencyBuckets, nil
	}
	var attr struct {
		DefaultBuckets []float64 `json:"default_buckets"`
	}
	if err := json.Unmarshal(raw, &attr); err != nil {
		return nil, plugin.Errorf(name, "plugin_attr.prometheus: %v", err)
	}
	if len(attr.DefaultBuckets) == 0 {
		return metrics.LatencyBuckets, nil
	}
	if err := vm.ValidateBuckets(attr.DefaultBuckets); err != nil {
		return nil, plugin.Errorf(name, "plugin_attr.prometheus.default_buckets: %v", err)
	}
	return attr.DefaultBuckets, nil
}

func newRouteSeries(route, service string, buckets []float64) *routeSeries {
	return &routeSeries{
		route:   route,
		service: service,
		buckets: buckets,
		llm:     metrics.NewLLM(route, ""),
		sets:    table[labelKey, labelSet]{hash: hashLabelKey, own: ownLabelKey},
	}
}

// seed creates the series of every address of the route's upstream, and
// of requests that reached no upstream, for consumer "".
func seed(rs *routeSeries, up *balancer.Upstream) {
	rs.sets.get(labelKey{}, rs.newLabelSet)
	if up == nil {
		return
	}
	for i := range up.Nodes {
		for _, a := range up.Nodes[i].Addrs {
			rs.sets.get(labelKey{node: a.Addr().Unmap()}, rs.newLabelSet)
		}
	}
}

// newLabelSet creates the series of k (builder goroutine, or a loop the
// first time k is seen).
func (rs *routeSeries) newLabelSet(k labelKey) *labelSet {
	node := ""
	if k.node.IsValid() {
		node = k.node.String()
	}
	// APISIX 3.9 label order.
	base := []string{"route", rs.route, "service", rs.service, "consumer", k.consumer, "node", node}
	lat := func(typ string) *metrics.Histogram {
		return metrics.NewHistogram("apisix_http_latency", rs.buckets, append([]string{"type", typ}, base...)...)
	}
	bw := func(typ string) *vm.Counter {
		return metrics.Counter("apisix_bandwidth", append([]string{"type", typ}, base...)...)
	}
	return &labelSet{
		// matched_host stays "": the engine does not report which host
		// pattern matched.
		status: metrics.NewStatuses("apisix_http_status", "route", rs.route, "matched_uri", k.uri, "matched_host", "",
			"service", rs.service, "consumer", k.consumer, "node", node),
		latReq: lat("request"),
		latUp:  lat("upstream"),
		la:     lat("apisix"),
		bwIn:   bw("ingress"),
		bwOut:  bw("egress"),
	}
}

// PreferRoute makes a global rule's prometheus stand aside on a route with
// its own, so the route's requests are counted once (APISIX prefer_route).
func (prom) PreferRoute() bool { return true }

// ReadsUsage asks the engine to scan responses for LLM token usage.
func (p *inst) ReadsUsage() bool { return true }

// Log records the request. It must be called on c's event loop once the
// request ended (c.Status, timings and byte counts set); it does not
// allocate once the request's label set and status code have been seen.
func (p *inst) Log(c *plugin.Ctx) {
	rs := p.route
	if rs == nil {
		if p.routes == nil {
			return // compiled for validation only
		}
		// (a global rule's: RouteID "" is a request no route matched,
		// counted with route="" as APISIX does)
		id := c.RouteID
		if p.preferName && c.RouteName != "" {
			id = c.RouteName
		}
		rs = p.routes.get(id, p.newRoute)
	}
	ls := rs.sets.get(labelKey{consumer: c.Consumer, node: c.Addr.Addr().Unmap(), uri: c.MatchedURI}, rs.newLabelSet)
	ls.status.Inc(c.Status)

	// APISIX log-util latency_details: request = now - start; upstream =
	// $upstream_response_time when an upstream was tried; apisix = the
	// rest, floored at 0.
	end := c.End
	if end == 0 {
		end = c.Now
	}
	req := max(float64(end-c.Start)/1e6, 0)
	ls.latReq.Update(c.Loop, req)
	gw := req
	if c.UpstreamStart != 0 {
		up := min(max(float64(end-c.UpstreamStart)/1e6, 0), req)
		ls.latUp.Update(c.Loop, up)
		gw = req - up
	}
	ls.la.Update(c.Loop, gw)
	if c.BytesIn > 0 {
		ls.bwIn.Add(int(c.BytesIn))
	}
	if c.BytesOut > 0 {
		ls.bwOut.Add(int(c.BytesOut))
	}

	if c.Arm != nil {
		return // traffic-split records the arm's LLM series
	}
	rs.llm.Record(c.Loop, c.Start, c.FirstByte, c.PromptTokens, c.CompletionTokens)
}

// newRoute creates a global rule's series of a route, on first use.
func (p *inst) newRoute(route string) *routeSeries {
	return newRouteSeries(route, p.service, p.buckets)
}

// table is a copy-on-write open-addressing hash table: loops look keys up
// without locks or allocation; an insert (the first time a key is seen)
// copies the table and publishes it with a compare-and-swap, retrying when
// another loop won the race. Values are never replaced.
type table[K comparable, V any] struct {
	hash func(K) uint64
	// own returns a key the table may keep (strings cloned), or nil: k
	// is kept as given.
	own func(K) K
	p   atomic.Pointer[slots[K, V]]
}

type slots[K comparable, V any] struct {
	n int // entries
	s []slot[K, V]
}

type slot[K comparable, V any] struct {
	h uint64
	k K
	v *V
}

// get returns k's value, creating it with mk when k is new.
func (t *table[K, V]) get(k K, mk func(K) *V) *V {
	h := t.hash(k)
	old := t.p.Load()
	if v := old.find(h, k); v != nil {
		return v
	}
	if t.own != nil {
		k = t.own(k)
	}
	v := mk(k) // metric handles: GetOrCreate returns the same ones to racing loops
	for {
		if cur := old.find(h, k); cur != nil {
			return cur
		}
		next := old.with(h, k, v)
		if t.p.CompareAndSwap(old, next) {
			return v
		}
		old = t.p.Load()
	}
}

func (s *slots[K, V]) find(h uint64, k K) *V {
	if s == nil {
		return nil
	}
	mask := uint64(len(s.s) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &s.s[i]
		if e.v == nil {
			return nil
		}
		if e.h == h && e.k == k {
			return e.v
		}
	}
}

// with returns a copy of s with (k, v) added, grown to keep the load under
// one half.
func (s *slots[K, V]) with(h uint64, k K, v *V) *slots[K, V] {
	size := 8
	n := 0
	if s != nil {
		n = s.n
		size = len(s.s)
	}
	for (n+1)*2 > size {
		size *= 2
	}
	next := &slots[K, V]{n: n + 1, s: make([]slot[K, V], size)}
	if s != nil {
		for _, e := range s.s {
			if e.v != nil {
				next.put(e)
			}
		}
	}
	next.put(slot[K, V]{h: h, k: k, v: v})
	return next
}

func (s *slots[K, V]) put(e slot[K, V]) {
	mask := uint64(len(s.s) - 1)
	i := e.h & mask
	for s.s[i].v != nil {
		i = (i + 1) & mask
	}
	s.s[i] = e
}

// FNV-1a.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func ownLabelKey(k labelKey) labelKey {
	k.consumer = strings.Clone(k.consumer)
	return k
}

func hashLabelKey(k labelKey) uint64 {
	h := hashString(k.consumer) ^ hashString(k.uri)*fnvPrime
	b := k.node.As16()
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	if k.node.Is4() {
		h ^= 4
	}
	return h
}

// upGauge is one apisix_upstream_status series; state is repointed at every
// build so the gauge follows the node's current health record.
type upGauge struct {
	state   atomic.Pointer[balancer.NodeState]
	touched bool // compiled since the last SweepUpstreamStatus (under upMu)
}

var (
	upMu     sync.Mutex
	upGauges = map[string]*upGauge{}
)

// upstreamStatus exports apisix_upstream_status{name,ip,port} (1 healthy, 0
// not) for every address of up, read from the nodes' passive health state
// at scrape time. name is APISIX's: the upstream's resource path.
func upstreamStatus(up *balancer.Upstream) {
	if up == nil || up.Key == "" {
		return
	}
	upName := "/apisix/" + strings.TrimSuffix(up.Key, "/upstream")
	upMu.Lock()
	defer upMu.Unlock()
	for i := range up.Nodes {
		n := &up.Nodes[i]
		for _, a := range n.Addrs {
			series := metrics.Name("apisix_upstream_status", "name", upName, "ip", a.Addr().Unmap().String(), "port", strconv.Itoa(int(a.Port())))
			g := upGauges[series]
			if g == nil {
				g = &upGauge{}
				upGauges[series] = g
			}
			g.touched = true
			g.state.Store(n.State)
			// registers the series again if a sweep dropped it
			metrics.Set.GetOrCreateGauge(series, func() float64 {
				if g.state.Load().Healthy(time.Now().UnixNano()) {
					return 1
				}
				return 0
			})
		}
	}
}

// SweepUpstreamStatus drops the apisix_upstream_status series of nodes no
// upstream compiled since the previous sweep has (a node removed from an
// upstream, an upstream or route deleted), so a gone node does not stay on
// the dashboard as healthy. Call it after each routing table is stored:
// every table build compiles every route, touching the live series. It
// returns how many series it dropped. Builder goroutine only.
func SweepUpstreamStatus() int {
	upMu.Lock()
	defer upMu.Unlock()
	n := 0
	for series, g := range upGauges {
		if !g.touched {
			delete(upGauges, series)
			metrics.Set.UnregisterMetric(series)
			n++
			continue
		}
		g.touched = false
	}
	return n
}
