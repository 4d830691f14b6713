package prometheus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/plugin"
)

// scrape returns every series of metrics.Set: "name{labels}" → value.
func scrape(t testing.TB) map[string]string {
	t.Helper()
	var b bytes.Buffer
	metrics.Set.WritePrometheus(&b)
	out := map[string]string{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, line)
		out[line[:i]] = line[i+1:]
	}
	return out
}

func upstream(key string, addrs ...string) *balancer.Upstream {
	up := &balancer.Upstream{Key: key, Scheme: "http"}
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		up.Nodes = append(up.Nodes, balancer.Node{Host: ap.Addr().String(), Port: int(ap.Port()), Weight: 1,
			Addrs: []netip.AddrPort{ap}, State: &balancer.NodeState{}})
	}
	return up
}

func compile(t testing.TB, conf string, env *plugin.Env) *inst {
	t.Helper()
	p, ok := plugin.Lookup(name)
	require.True(t, ok)
	i, err := p.Compile(json.RawMessage(conf), env)
	require.NoError(t, err)
	return i.(*inst)
}

// ctx is a request that ended: 30 ms in all, 20 ms of it upstream, the
// first byte 5 ms after the request.
func ctx(route, addr string, status int) *plugin.Ctx {
	c := &plugin.Ctx{}
	c.Reset()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	c.RouteID = route
	c.Start = start
	c.UpstreamStart = start + 10e6
	c.FirstByte = start + 15e6
	c.End = start + 30e6
	c.Now = c.End
	c.Status, c.UpstreamStatus = status, status
	if addr != "" {
		c.Addr = netip.MustParseAddrPort(addr)
	}
	c.BytesIn, c.BytesOut = 100, 2000
	c.PromptTokens, c.CompletionTokens = -1, -1
	return c
}

func TestPlugin(t *testing.T) {
	p, ok := plugin.Lookup("prometheus")
	require.True(t, ok)
	assert.Equal(t, 500, p.Priority())
	i := compile(t, `{}`, &plugin.Env{Scope: "services 1"})
	assert.True(t, i.ReadsUsage())
	ch := plugin.NewChain([]plugin.Entry{{Name: name, Priority: 500, Instance: i}})
	assert.True(t, ch.Usage)
	assert.Len(t, ch.Log, 1)
}

func TestCompileErrors(t *testing.T) {
	p, _ := plugin.Lookup(name)
	f := func(conf, want string) {
		t.Helper()
		_, err := p.Compile(json.RawMessage(conf), &plugin.Env{Scope: "route x"})
		require.Error(t, err, conf)
		assert.Equal(t, "failed to check the configuration of plugin prometheus err: "+want, err.Error())
	}
	f(`[]`, "wrong type: expected object, got table")
	f(`"x"`, "wrong type: expected object, got string")
	f(`{"prefer_name":"yes"}`, `property "prefer_name" validation failed: wrong type: expected boolean, got string`)
	f(`{"prefer_name":1}`, `property "prefer_name" validation failed: wrong type: expected boolean, got integer`)

	attr := func(js string) *plugin.Env {
		return &plugin.Env{Scope: "route x", Attr: func(n string) json.RawMessage {
			if n == name {
				return json.RawMessage(js)
			}
			return nil
		}}
	}
	_, err := p.Compile(json.RawMessage(`{}`), attr(`{"default_buckets":[5,1]}`))
	require.ErrorContains(t, err, "default_buckets")
	_, err = p.Compile(json.RawMessage(`{"prefer_name":true,"_meta":{"x":1}}`), attr(`{"export_uri":"/m"}`))
	require.NoError(t, err)
}

func TestLog(t *testing.T) {
	env := &plugin.Env{RouteID: "log-1", ServiceID: "svc-1", Scope: "route log-1",
		RouteUpstream: upstream("routes/log-1/upstream", "127.0.0.1:1980", "10.0.0.2:80")}
	p := compile(t, `{}`, env)

	// Compile created the series of every upstream address (and of
	// requests that reached none), before any request.
	m := scrape(t)
	labels := func(typ, node string) string {
		return fmt.Sprintf(`{type=%q,route="log-1",service="svc-1",consumer="",node=%q}`, typ, node)
	}
	for _, node := range []string{"127.0.0.1", "10.0.0.2", ""} {
		assert.Equal(t, "0", m["apisix_bandwidth"+labels("ingress", node)], node)
		assert.Equal(t, "0", m["apisix_http_latency_count"+labels("request", node)], node)
	}
	assert.Equal(t, "0", m[`sluice_llm_tokens_total{route="log-1",arm="",type="prompt"}`])

	c := ctx("log-1", "127.0.0.1:1980", 200)
	c.PromptTokens, c.CompletionTokens = 19, 10
	p.Log(c)
	p.Log(ctx("log-1", "127.0.0.1:1980", 502))
	p.Log(ctx("log-1", "127.0.0.1:1980", 200))

	m = scrape(t)
	st := func(code string) string {
		return `apisix_http_status{route="log-1",matched_uri="",matched_host="",service="svc-1",consumer="",node="127.0.0.1",code="` + code + `"}`
	}
	assert.Equal(t, "2", m[st("200")])
	assert.Equal(t, "1", m[st("502")])
	l := labels("request", "127.0.0.1")
	// request 30 ms: not in le=20, in le=50.
	assert.Equal(t, "0", m[`apisix_http_latency_bucket`+l[:len(l)-1]+`,le="20"}`])
	assert.Equal(t, "3", m[`apisix_http_latency_bucket`+l[:len(l)-1]+`,le="50"}`])
	assert.Equal(t, "90", m[`apisix_http_latency_sum`+l])
	assert.Equal(t, "60", m[`apisix_http_latency_sum`+labels("upstream", "127.0.0.1")]) // 20 ms each
	assert.Equal(t, "30", m[`apisix_http_latency_sum`+labels("apisix", "127.0.0.1")])   // 10 ms each
	assert.Equal(t, "300", m["apisix_bandwidth"+labels("ingress", "127.0.0.1")])
	assert.Equal(t, "6000", m["apisix_bandwidth"+labels("egress", "127.0.0.1")])
	assert.Equal(t, "19", m[`sluice_llm_tokens_total{route="log-1",arm="",type="prompt"}`])
	assert.Equal(t, "10", m[`sluice_llm_tokens_total{route="log-1",arm="",type="completion"}`])
	assert.Equal(t, "3", m[`sluice_llm_ttft_seconds_count{route="log-1",arm=""}`])
}

func TestLogTTFTBuckets(t *testing.T) {
	p := compile(t, `{}`, &plugin.Env{RouteID: "ttft-1", Scope: "route ttft-1"})
	p.Log(ctx("ttft-1", "127.0.0.1:1", 200)) // first byte at 15 ms
	m := scrape(t)
	assert.Equal(t, "0", m[`sluice_llm_ttft_seconds_bucket{route="ttft-1",arm="",le="0.01"}`])
	assert.Equal(t, "1", m[`sluice_llm_ttft_seconds_bucket{route="ttft-1",arm="",le="0.02"}`])
}

func TestLogLabelsSeenLater(t *testing.T) {
	p := compile(t, `{}`, &plugin.Env{RouteID: "lazy-1", Scope: "route lazy-1",
		RouteUpstream: upstream("routes/lazy-1/upstream", "127.0.0.1:1980")})

	// A consumer, an address the route's upstream does not have (a split
	// arm's upstream), an IPv6 node and a request that reached no upstream.
	c := ctx("lazy-1", "192.0.2.7:8080", 200)
	c.Consumer = "jack"
	p.Log(c)
	p.Log(ctx("lazy-1", "[2001:db8::1]:80", 200))
	c = ctx("lazy-1", "", 401)
	c.UpstreamStart, c.FirstByte = 0, 0
	p.Log(c)
	// A split arm's request: the HTTP series count it, the LLM ones not.
	c = ctx("lazy-1", "127.0.0.1:1980", 200)
	c.Arm = &plugin.Arm{Label: "0/0", Name: "up-a"}
	c.PromptTokens = 7
	p.Log(c)

	m := scrape(t)
	assert.Equal(t, "1", m[`apisix_http_status{route="lazy-1",matched_uri="",matched_host="",service="",consumer="jack",node="192.0.2.7",code="200"}`])
	assert.Equal(t, "1", m[`apisix_http_status{route="lazy-1",matched_uri="",matched_host="",service="",consumer="",node="2001:db8::1",code="200"}`])
	assert.Equal(t, "1", m[`apisix_http_status{route="lazy-1",matched_uri="",matched_host="",service="",consumer="",node="",code="401"}`])
	assert.Equal(t, "1", m[`apisix_http_status{route="lazy-1",matched_uri="",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`])
	// No upstream: no upstream latency, all of it is the gateway's.
	assert.Equal(t, "0", m[`apisix_http_latency_count{type="upstream",route="lazy-1",service="",consumer="",node=""}`])
	assert.Equal(t, "30", m[`apisix_http_latency_sum{type="apisix",route="lazy-1",service="",consumer="",node=""}`])
	assert.Equal(t, "0", m[`sluice_llm_tokens_total{route="lazy-1",arm="",type="prompt"}`])
	assert.Equal(t, "2", m[`sluice_llm_ttft_seconds_count{route="lazy-1",arm=""}`])
}

func TestGlobalRule(t *testing.T) {
	p := compile(t, `{}`, &plugin.Env{Global: true, Scope: "global_rules 1"})
	p.Log(ctx("glob-1", "127.0.0.1:1980", 200))
	p.Log(ctx("glob-2", "127.0.0.1:1980", 404))
	p.Log(ctx("glob-1", "127.0.0.1:1980", 200))
	m := scrape(t)
	assert.Equal(t, "2", m[`apisix_http_status{route="glob-1",matched_uri="",matched_host="",service="",consumer="",node="127.0.0.1",code="200"}`])
	assert.Equal(t, "1", m[`apisix_http_status{route="glob-2",matched_uri="",matched_host="",service="",consumer="",node="127.0.0.1",code="404"}`])
}

// prefer_name labels a route by its name and its service by the
// service's name (APISIX), on a route and in a global rule; without a
// name the id stays.
func TestPreferName(t *testing.T) {
	p := compile(t, `{"prefer_name":true}`, &plugin.Env{RouteID: "pn-1", RouteName: "chat-canary",
		ServiceID: "svc-9", ServiceName: "llm", Scope: "route pn-1"})
	p.Log(ctx("pn-1", "127.0.0.1:1980", 200))
	g := compile(t, `{"prefer_name":true}`, &plugin.Env{Global: true, Scope: "global_rules 1"})
	named := ctx("pn-2", "127.0.0.1:1980", 200)
	named.RouteName = "chat-stable"
	g.Log(named)
	g.Log(ctx("pn-3", "127.0.0.1:1980", 200))
	m := scrape(t)
	st := func(route, svc string) string {
		return `apisix_http_status{route="` + route + `",matched_uri="",matched_host="",service="` + svc + `",consumer="",node="127.0.0.1",code="200"}`
	}
	assert.Equal(t, "1", m[st("chat-canary", "llm")])
	assert.Equal(t, "1", m[st("chat-stable", "")])
	assert.Equal(t, "1", m[st("pn-3", "")], "no name: the id")
	assert.Empty(t, m[st("pn-1", "svc-9")], "not by id")
}

func TestValidationOnlyCreatesNothing(t *testing.T) {
	before := len(metrics.Names())
	p := compile(t, `{}`, &plugin.Env{Scope: "services val-1", ServiceID: "val-1",
		RouteUpstream: upstream("upstreams/val-1", "127.0.0.1:1")})
	p.Log(ctx("val-route", "127.0.0.1:1", 200))
	assert.Equal(t, before, len(metrics.Names()))
	for k := range scrape(t) {
		assert.NotContains(t, k, "val-")
	}
}

func TestDefaultBuckets(t *testing.T) {
	env := &plugin.Env{RouteID: "bk-1", Scope: "route bk-1", Attr: func(n string) json.RawMessage {
		return json.RawMessage(`{"default_buckets":[15,100]}`)
	}}
	p := compile(t, `{}`, env)
	p.Log(ctx("bk-1", "127.0.0.1:1", 200))
	m := scrape(t)
	l := `{type="request",route="bk-1",service="",consumer="",node="127.0.0.1"`
	assert.Equal(t, "0", m[`apisix_http_latency_bucket`+l+`,le="15"}`])
	assert.Equal(t, "1", m[`apisix_http_latency_bucket`+l+`,le="100"}`])
	_, ok := m[`apisix_http_latency_bucket`+l+`,le="50"}`]
	assert.False(t, ok, "default bucket 50 replaced")
}

func TestUpstreamStatus(t *testing.T) {
	up := upstream("routes/us-1/upstream", "127.0.0.1:1990")
	compile(t, `{}`, &plugin.Env{RouteID: "us-1", Scope: "route us-1", RouteUpstream: up})
	series := `apisix_upstream_status{name="/apisix/routes/us-1",ip="127.0.0.1",port="1990"}`
	assert.Equal(t, "1", scrape(t)[series])
	now := time.Now().UnixNano()
	for range balancer.MaxFails {
		up.Nodes[0].State.Fail(now)
	}
	assert.Equal(t, "0", scrape(t)[series])
	// A new build with a fresh state: the gauge follows it.
	up2 := upstream("routes/us-1/upstream", "127.0.0.1:1990")
	compile(t, `{}`, &plugin.Env{RouteID: "us-1", Scope: "route us-1", RouteUpstream: up2})
	assert.Equal(t, "1", scrape(t)[series])
}

// TestTableConcurrent: loops racing to create the same keys all get one
// value per key, and every key stays findable.
func TestTableConcurrent(t *testing.T) {
	tb := &table[string, int]{hash: hashString}
	var wg sync.WaitGroup
	got := make([][]*int, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprint(i)
				got[g] = append(got[g], tb.get(k, func(string) *int { v := i; return &v }))
			}
		}()
	}
	wg.Wait()
	for i := range 200 {
		for g := range got {
			require.Same(t, got[0][i], got[g][i], "key %d", i)
		}
		assert.Equal(t, i, *tb.get(fmt.Sprint(i), func(string) *int { t.Fatal("created twice"); return nil }))
	}
	assert.Equal(t, 200, tb.p.Load().n)
}

// A node removed from an upstream leaves the endpoint at the sweep after
// the next build; a node added back is registered again.
func TestUpstreamStatusSweep(t *testing.T) {
	a := `apisix_upstream_status{name="/apisix/routes/sw-1",ip="127.0.0.1",port="1991"}`
	b := `apisix_upstream_status{name="/apisix/routes/sw-1",ip="127.0.0.1",port="1992"}`
	build := func(nodes ...string) {
		compile(t, `{}`, &plugin.Env{RouteID: "sw-1", Scope: "route sw-1", RouteUpstream: upstream("routes/sw-1/upstream", nodes...)})
		SweepUpstreamStatus()
	}
	build("127.0.0.1:1991", "127.0.0.1:1992")
	m := scrape(t)
	assert.Equal(t, "1", m[a])
	assert.Equal(t, "1", m[b])

	build("127.0.0.1:1991")
	m = scrape(t)
	assert.Equal(t, "1", m[a])
	_, ok := m[b]
	assert.False(t, ok, "removed node's series dropped")

	build("127.0.0.1:1991", "127.0.0.1:1992")
	assert.Equal(t, "1", scrape(t)[b], "added back")

	build() // the route lost its nodes (or is gone)
	m = scrape(t)
	_, okA := m[a]
	_, okB := m[b]
	assert.False(t, okA || okB)
}
