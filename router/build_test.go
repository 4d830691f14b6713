package router

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/model"
)

func upstreamTo(nodes ...model.Node) *model.Upstream { return &model.Upstream{Nodes: nodes} }

func mnode(host string, port, weight int) model.Node {
	return model.Node{Host: host, Port: port, Weight: weight}
}

func TestBuildUpstreamResolution(t *testing.T) {
	snap := &model.Snapshot{
		Routes: []*model.Route{
			route("inline", "/inline", func(r *model.Route) {
				r.Upstream = upstreamTo(mnode("10.0.0.1", 80, 1))
				r.UpstreamID = "1" // inline wins
			}),
			route("byid", "/byid", func(r *model.Route) { r.UpstreamID = "1"; r.ServiceID = "s1" }),
			route("byid2", "/byid2", func(r *model.Route) { r.UpstreamID = "1" }),
			route("svc", "/svc", func(r *model.Route) { r.ServiceID = "s1" }),
			route("svcid", "/svcid", func(r *model.Route) { r.ServiceID = "s2" }),
			route("none", "/none"),
			route("timeout", "/timeout", func(r *model.Route) {
				r.UpstreamID = "1"
				r.Timeout = &model.Timeout{Connect: 1, Send: 2, Read: 3.5}
			}),
		},
		Upstreams: map[string]*model.Upstream{
			"1": upstreamTo(mnode("10.0.0.2", 8080, 1), mnode("10.0.0.3", 8080, 2)),
			"2": upstreamTo(mnode("10.0.0.4", 0, 1)),
		},
		Services: map[string]*model.Service{
			"s1": {ID: "s1", Upstream: upstreamTo(mnode("10.0.0.5", 0, 1)), UpstreamID: "2"},
			"s2": {ID: "s2", UpstreamID: "2"},
		},
	}
	b := &Builder{Resolver: fakeResolver{}}
	tbl, err := b.Build(snap)
	require.NoError(t, err)

	get := func(path string) *Route {
		t.Helper()
		rt := tbl.Match(newRequest(t, "GET", path))
		require.NotNil(t, rt, path)
		return rt
	}
	key := func(path string) string {
		t.Helper()
		if u := get(path).Upstream; u != nil {
			return u.Key
		}
		return ""
	}
	assert.Equal(t, "routes/inline/upstream", key("/inline"))
	assert.Equal(t, "upstreams/1", key("/byid"))
	assert.Equal(t, "upstreams/1", key("/byid2"))
	assert.Same(t, get("/byid").Upstream, get("/byid2").Upstream, "a shared upstream compiles once")
	assert.Equal(t, "services/s1/upstream", key("/svc"))
	assert.Equal(t, "upstreams/2", key("/svcid"))
	assert.Equal(t, "", key("/none"))
	assert.Equal(t, "upstreams/1/route:timeout", key("/timeout"))
	assert.Equal(t, balancer.Timeouts{Connect: time.Second, Send: 2 * time.Second, Read: 3500 * time.Millisecond},
		get("/timeout").Upstream.Timeouts)
	assert.Equal(t, 60*time.Second, get("/byid").Upstream.Timeouts.Read)

	keys := make([]string, len(tbl.Upstreams))
	for i, u := range tbl.Upstreams {
		assert.Equal(t, i, u.Index)
		keys[i] = u.Key
	}
	assert.Equal(t, []string{"routes/inline/upstream", "upstreams/1", "services/s1/upstream", "upstreams/2", "upstreams/1/route:timeout"}, keys)
	assert.Equal(t, uint64(1), tbl.Generation)
}

func TestBuildRouteTimeoutInline(t *testing.T) {
	tbl := buildTable(t, route("r1", "/", func(r *model.Route) {
		r.Upstream = &model.Upstream{Nodes: model.Nodes{mnode("10.0.0.1", 80, 1)}, Timeout: &model.Timeout{Connect: 5, Send: 5, Read: 5}}
		r.Timeout = &model.Timeout{Connect: 1, Send: 1, Read: 1}
	}))
	u := tbl.Match(newRequest(t, "GET", "/")).Upstream
	assert.Equal(t, "routes/r1/upstream", u.Key)
	assert.Equal(t, time.Second, u.Timeouts.Connect)
}

func TestBuildRouteFields(t *testing.T) {
	tbl := buildTable(t, route("r1", "/ws", withPriority(7), func(r *model.Route) { r.EnableWebsocket = true }))
	rt := tbl.Match(newRequest(t, "GET", "/ws"))
	require.NotNil(t, rt)
	assert.Equal(t, "r1", rt.ID)
	assert.Equal(t, 7, rt.Priority)
	assert.True(t, rt.Websocket)
	assert.Equal(t, "/ws", rt.MatchedURI)
	assert.Nil(t, rt.Upstream)
}

func TestBuildErrors(t *testing.T) {
	f := func(wantErr string, snap *model.Snapshot) {
		t.Helper()
		b := &Builder{Resolver: fakeResolver{}}
		_, err := b.Build(snap)
		require.Error(t, err, wantErr)
		assert.Equal(t, wantErr, err.Error())
		assert.Zero(t, b.gen, "a failed build does not count")
	}
	routes := func(rs ...*model.Route) *model.Snapshot { return &model.Snapshot{Routes: rs} }
	f(`router: route "r1": upstream_id "9" not found`,
		routes(route("r1", "/", func(r *model.Route) { r.UpstreamID = "9" })))
	f(`router: route "r1": service_id "s9" not found`,
		routes(route("r1", "/", func(r *model.Route) { r.ServiceID = "s9" })))
	f(`router: route "r1": service "s1": upstream_id "9" not found`, &model.Snapshot{
		Routes:   []*model.Route{route("r1", "/", func(r *model.Route) { r.ServiceID = "s1" })},
		Services: map[string]*model.Service{"s1": {ID: "s1", UpstreamID: "9"}},
	})
	f(`router: route "r1": failed to validate the 'vars' expression: invalid operator '='`,
		routes(route("r1", "/", withVars(`[["arg_a","=","b"]]`))))
	f(`router: route "r1": invalid method "get"`, routes(route("r1", "/", withMethods("get"))))
	f(`router: route "r1": invalid remote_addrs "10.0.0.0/40"`, routes(route("r1", "/", withRemote("10.0.0.0/40"))))
	f(`router: route "r1": invalid remote_addrs "nope"`, routes(route("r1", "/", func(r *model.Route) { r.RemoteAddr = "nope" })))
	f(`router: route "r1": uri or uris is required`, routes(route("r1", "")))
	f(`router: route "r1": duplicate id`, routes(route("r1", "/a"), route("r1", "/b")))
	f(`router: route #0: missing id`, routes(route("", "/a")))
	f(`router: upstream "routes/r1/upstream": type "random": want roundrobin, chash, least_conn or ewma`,
		routes(route("r1", "/", func(r *model.Route) {
			r.Upstream = &model.Upstream{Type: "random", Nodes: model.Nodes{mnode("10.0.0.1", 80, 1)}}
		})))
	// A disabled route is not compiled at all (APISIX skips it too).
	b := &Builder{Resolver: fakeResolver{}}
	_, err := b.Build(routes(route("r1", "/", func(r *model.Route) { r.UpstreamID = "9"; r.Status = ptr(0) })))
	assert.NoError(t, err)
}

func TestBuildGenerationAndRegistry(t *testing.T) {
	snap := &model.Snapshot{
		Routes:    []*model.Route{route("r1", "/", func(r *model.Route) { r.UpstreamID = "1" })},
		Upstreams: map[string]*model.Upstream{"1": upstreamTo(mnode("api.example", 0, 1))},
	}
	res := fakeResolver{"api.example": {"10.0.0.1"}}
	b := &Builder{Resolver: res}
	t1, err := b.Build(snap)
	require.NoError(t, err)
	res["api.example"] = []string{"10.0.0.9"} // DNS changed: a rebuild re-resolves
	t2, err := b.Build(snap)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), t1.Generation)
	assert.Equal(t, uint64(2), t2.Generation)
	require.NotNil(t, b.Registry)
	n1, n2 := t1.Upstreams[0].Nodes[0], t2.Upstreams[0].Nodes[0]
	assert.Same(t, n1.State, n2.State, "node health outlives the table")
	assert.Equal(t, "10.0.0.1:80", n1.Addrs[0].String())
	assert.Equal(t, "10.0.0.9:80", n2.Addrs[0].String())
}

// TestBuildTolerant: nodes whose host does not resolve are left out and
// named, the rest of the upstream keeps working; an upstream left without
// nodes still builds (502 at request time). Build itself stays strict.
func TestBuildTolerant(t *testing.T) {
	snap := &model.Snapshot{
		Routes: []*model.Route{
			route("r1", "/a", func(r *model.Route) { r.UpstreamID = "1" }),
			route("r2", "/b", func(r *model.Route) { r.UpstreamID = "2" }),
		},
		Upstreams: map[string]*model.Upstream{
			"1": upstreamTo(mnode("api.example", 0, 1), mnode("gone.example", 0, 1)),
			"2": upstreamTo(mnode("gone.example", 0, 1)),
		},
	}
	b := &Builder{Resolver: fakeResolver{"api.example": {"10.0.0.1"}}}
	_, err := b.Build(snap)
	var ue *UnresolvedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "gone.example", ue.Host)
	tbl, skipped, err := b.BuildTolerant(snap, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"gone.example"}, skipped)
	byID := map[string]int{}
	for _, u := range tbl.Upstreams {
		byID[u.Key] = len(u.Nodes)
	}
	assert.Equal(t, map[string]int{"upstreams/1": 1, "upstreams/2": 0}, byID)
	_, err = b.Build(snap)
	require.Error(t, err, "Build is strict again after BuildTolerant")

	// a name that fails is looked up once per build, however many
	// upstreams use it (each failure may cost a lookup timeout)
	cr := &countingResolver{next: fakeResolver{"api.example": {"10.0.0.1"}}}
	b = &Builder{Resolver: cr}
	_, _, err = b.BuildTolerant(snap, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, cr.calls["gone.example"])
}

type countingResolver struct {
	next  fakeResolver
	calls map[string]int
}

func (c *countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[host]++
	return c.next.LookupNetIP(ctx, network, host)
}

func TestPublisher(t *testing.T) {
	var p Publisher
	assert.Nil(t, p.Load())
	tbl := buildTable(t, route("r1", "/"))
	p.Store(tbl)
	assert.Same(t, tbl, p.Load())
}

// TestBuildIsolated: one item that does not build does not fail the
// table. A route whose upstream, service, plugins or match restrictions
// fail keeps its place (Broken, no upstream, no plugins; a restriction that
// does not compile is dropped, so it matches more, never less) and its
// requests do not fall through to another route; a route whose hosts are
// unknown (its service is gone) is placed under every host; unused
// services and plugin_configs are reported; global rules stay strict.
func TestBuildIsolated(t *testing.T) {
	up := func(r *model.Route) { r.Upstream = upstreamTo(mnode("10.0.0.1", 80, 1)) }
	snap := &model.Snapshot{
		Routes: []*model.Route{
			route("all", "/*", up),
			route("a-com", "/*", up, withHosts("a.com")),
			route("dangling", "/admin/*", func(r *model.Route) { r.UpstreamID = "gone" }),
			route("nosvc", "/svc/*", func(r *model.Route) { r.ServiceID = "gone" }),
			route("badsvc", "/bs/*", func(r *model.Route) { r.ServiceID = "bad" }),
			route("badplugin", "/p/*", up, func(r *model.Route) {
				r.Plugins = map[string]json.RawMessage{"no-such-plugin": json.RawMessage(`{}`)}
			}),
			route("badvars", "/v/*", up, withVars(`[["arg_a","=","b"]]`)),
			route("badmethod", "/m/*", up, withMethods("GET", "get")),
			route("badremote", "/r/*", up, withRemote("10.0.0.0/8", "nope")),
			route("emptyhost", "/h/*", up, withHosts("b.com", "")),
			route("invalid", "/i/*", func(r *model.Route) { r.Invalid = errors.New("ai-proxy: unknown plugin") }),
			route("unknownhosts", "/u/*", func(r *model.Route) { r.Invalid, r.HostsUnknown = errors.New("hosts: not an array"), true }),
		},
		Services: map[string]*model.Service{
			"unused": {ID: "unused", Plugins: map[string]json.RawMessage{"no-such-plugin": json.RawMessage(`{}`)}},
			"bad":    {ID: "bad", Hosts: []string{"a.com"}, Invalid: errors.New("bogus field")},
		},
		PluginConfigs: map[string]json.RawMessage{"pc": json.RawMessage(`{"plugins":{"no-such-plugin":{}}}`)},
	}
	b := &Builder{Resolver: fakeResolver{}}
	_, err := b.Build(snap)
	require.Error(t, err, "Build stays strict")

	tbl, rep, err := b.BuildIsolated(snap, nil)
	require.NoError(t, err)
	keys := slices.Sorted(maps.Keys(rep.Broken))
	assert.Equal(t, []string{"plugin_configs/pc", "routes/badmethod", "routes/badplugin", "routes/badremote",
		"routes/badsvc", "routes/badvars", "routes/dangling", "routes/emptyhost", "routes/invalid", "routes/nosvc",
		"routes/unknownhosts", "services/bad", "services/unused"}, keys)
	assert.EqualError(t, rep.Broken["routes/dangling"], `router: route "dangling": upstream_id "gone" not found`)
	for _, c := range []struct{ method, host, path, id string }{
		{"GET", "", "/admin/x", "dangling"},
		{"GET", "", "/p/x", "badplugin"},
		{"GET", "", "/i/x", "invalid"},
		{"GET", "", "/v/x", "badvars"},        // vars dropped: every request
		{"POST", "", "/m/x", "badmethod"},     // methods dropped: POST too
		{"GET", "", "/r/x", "badremote"},      // remote_addrs dropped
		{"GET", "b.com", "/h/x", "emptyhost"}, // its "" host dropped, b.com kept
		{"GET", "c.com", "/u/x", "unknownhosts"},
		{"GET", "a.com", "/u/x", "unknownhosts"},
		{"GET", "c.com", "/svc/x", "nosvc"}, // its service's hosts are unknown:
		{"GET", "a.com", "/svc/x", "nosvc"}, // under every host, a.com's catch-all included
		{"GET", "a.com", "/bs/x", "badsvc"}, // an invalid service's hosts still count
	} {
		var hdr []string
		if c.host != "" {
			hdr = []string{"Host: " + c.host}
		}
		rt := tbl.Match(newRequest(t, c.method, c.path, hdr...))
		require.NotNil(t, rt, "%s %s %s", c.method, c.host, c.path)
		assert.Equal(t, c.id, rt.ID, "%s %s %s does not fall through", c.method, c.host, c.path)
		assert.True(t, rt.Broken, c.path)
		assert.Nil(t, rt.Upstream, c.path)
		assert.Nil(t, rt.Chain, c.path)
	}
	rt := tbl.Match(newRequest(t, "GET", "/bs/x", "Host: c.com"))
	assert.Equal(t, "all", rt.ID, "the invalid service's route stays in its service's hosts")
	assert.False(t, rt.Broken)
	rt = tbl.Match(newRequest(t, "GET", "/h/x", "Host: c.com"))
	assert.Equal(t, "all", rt.ID, "a literal empty host does not spread a route to every host")

	_, err = b.Build(snap)
	require.Error(t, err, "Build is strict again after BuildIsolated")

	snap.GlobalRules = map[string]json.RawMessage{"g": json.RawMessage(`{"plugins":{"no-such-plugin":{}}}`)}
	tbl, rep, err = b.BuildIsolated(snap, nil)
	require.ErrorIs(t, err, ErrUnknownPlugin, "a global rule that does not build fails the table")
	assert.Nil(t, tbl)
	assert.Contains(t, rep.Broken, "global_rules/g", "and is reported")
	assert.Contains(t, rep.Broken, "routes/dangling", "with the rest: the caller's baseline")
}
