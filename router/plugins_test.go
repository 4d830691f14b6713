package router

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
)

// tagPlugin is a test plugin: its instance records which configuration it
// was compiled from ({"tag":"..."}), and Compile fails on {"bad":true}.
type tagPlugin struct {
	name string
	prio int
}

type tagInst struct{ tag, scope, routeName, serviceName string }

func (p tagPlugin) Name() string  { return p.name }
func (p tagPlugin) Priority() int { return p.prio }
func (p tagPlugin) Compile(raw json.RawMessage, env *plugin.Env) (plugin.Instance, error) {
	var c struct {
		Tag string `json:"tag"`
		Bad bool   `json:"bad"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	if c.Bad {
		return nil, plugin.Errorf(p.name, `property "bad" validation failed`)
	}
	return &tagInst{tag: c.Tag, scope: env.Scope, routeName: env.RouteName, serviceName: env.ServiceName}, nil
}
func (i *tagInst) Access(*plugin.Ctx) plugin.Result { return plugin.Result{} }

// preferPlugin is a tagPlugin whose global instance stands aside for a
// route's own (APISIX run_policy prefer_route, as prometheus).
type preferPlugin struct{ tagPlugin }

func (preferPlugin) PreferRoute() bool { return true }

func init() {
	plugin.Register(tagPlugin{"test-high", 3000})
	plugin.Register(tagPlugin{"test-low", 10})
	plugin.Register(preferPlugin{tagPlugin{"test-prefer", 500}})
}

func chainOf(t *testing.T, snap *model.Snapshot, target string) []string {
	t.Helper()
	tbl, err := (&Builder{Loops: 1}).Build(snap)
	require.NoError(t, err)
	rt := tbl.Match(newRequest(t, "GET", target))
	require.NotNil(t, rt)
	if rt.Chain == nil {
		return nil
	}
	var out []string
	for i := range rt.Chain.Pre {
		out = append(out, rt.Chain.Pre[i].Name)
	}
	return out
}

func plugins(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

// Route plugins replace a plugin_config's, which replace a service's;
// global rules run first; within a group, higher priority first.
func TestPluginMergeAndOrder(t *testing.T) {
	snap := model.NewSnapshot()
	snap.Services["s1"] = &model.Service{ID: "s1", Plugins: plugins("test-low", `{"tag":"service"}`, "test-high", `{"tag":"service"}`)}
	snap.PluginConfigs["pc1"] = json.RawMessage(`{"plugins":{"test-high":{"tag":"plugin_config"}}}`)
	r := route("r1", "/a", withNode("127.0.0.1:1"))
	r.ServiceID, r.PluginConfigID = "s1", "pc1"
	r.Plugins = plugins("test-low", `{"tag":"route"}`)
	snap.Routes = []*model.Route{r}
	snap.GlobalRules["g1"] = json.RawMessage(`{"plugins":{"test-low":{"tag":"global"}}}`)

	tbl, err := (&Builder{Loops: 1}).Build(snap)
	require.NoError(t, err)
	rt := tbl.Match(newRequest(t, "GET", "/a"))
	require.NotNil(t, rt)
	var got []string
	for _, s := range rt.Chain.Pre {
		got = append(got, s.Name)
	}
	assert.Equal(t, []string{"test-low", "test-high", "test-low"}, got, "global first, then by priority")
	assert.Equal(t, []string{"test-low", "test-high", "test-low"}, rt.Chain.Names)

	// which configuration won
	var tags []string
	for _, st := range rt.Chain.Pre {
		tags = append(tags, st.Instance().(*tagInst).tag)
	}
	assert.Equal(t, []string{"global", "plugin_config", "route"}, tags)
}

// A route's plugins learn its name and its service's (prometheus
// prefer_name), the matched route carries its name for the request, and
// the global rules' chain is kept for requests no route matches.
func TestPluginEnvNamesAndNotFound(t *testing.T) {
	snap := model.NewSnapshot()
	snap.Services["s1"] = &model.Service{ID: "s1", Name: "llm"}
	r := route("r1", "/a", withNode("127.0.0.1:1"))
	r.Name, r.ServiceID = "chat-canary", "s1"
	r.Plugins = plugins("test-low", `{"tag":"route"}`)
	snap.Routes = []*model.Route{r}
	tbl, err := (&Builder{Loops: 1}).Build(snap)
	require.NoError(t, err)
	rt := tbl.Match(newRequest(t, "GET", "/a"))
	require.NotNil(t, rt)
	assert.Equal(t, "chat-canary", rt.Name)
	assert.Equal(t, []string{"r1", "chat-canary", ""}, tbl.RouteLabels(), "metric route labels that stay")
	in := rt.Chain.Pre[0].Instance().(*tagInst)
	assert.Equal(t, [2]string{"chat-canary", "llm"}, [2]string{in.routeName, in.serviceName})
	assert.Nil(t, tbl.NotFound, "no global rules: nothing to run for a 404")

	snap.GlobalRules["g1"] = json.RawMessage(`{"plugins":{"test-high":{"tag":"global"}}}`)
	tbl, err = (&Builder{Loops: 1}).Build(snap)
	require.NoError(t, err)
	require.NotNil(t, tbl.NotFound)
	assert.True(t, tbl.NotFound.IsNotFound)
	assert.Nil(t, tbl.NotFound.Upstream)
	assert.Equal(t, []string{"test-high"}, tbl.NotFound.Chain.Names)
}

func TestPluginErrors(t *testing.T) {
	build := func(r *model.Route, mut func(*model.Snapshot)) error {
		snap := model.NewSnapshot()
		snap.Routes = []*model.Route{r}
		if mut != nil {
			mut(snap)
		}
		_, err := (&Builder{Loops: 1}).Build(snap)
		return err
	}
	r := route("r1", "/a", withNode("127.0.0.1:1"))
	r.Plugins = plugins("no-such-plugin", `{}`)
	err := build(r, nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnknownPlugin))
	assert.Equal(t, "unknown plugin [no-such-plugin]", err.Error())

	r.Plugins = plugins("test-high", `{"bad":true}`)
	err = build(r, nil)
	require.Error(t, err)
	assert.Equal(t, `failed to check the configuration of plugin test-high err: property "bad" validation failed`, err.Error())

	// a bad plugin in a service or plugin_config no route uses is refused too
	r.Plugins = nil
	err = build(r, func(s *model.Snapshot) {
		s.PluginConfigs["unused"] = json.RawMessage(`{"plugins":{"test-low":{"bad":true}}}`)
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "plugin test-low")
	err = build(r, func(s *model.Snapshot) {
		s.GlobalRules["g"] = json.RawMessage(`{"plugins":{"test-low":{"bad":true}}}`)
	})
	require.Error(t, err)

	// _meta.disable turns a plugin off
	r.Plugins = plugins("test-high", `{"_meta":{"disable":true}}`, "test-low", `{}`)
	snap := model.NewSnapshot()
	snap.Routes = []*model.Route{r}
	assert.Equal(t, []string{"test-low"}, chainOf(t, snap, "/a"))

	// the rest of _meta is not implemented: refused, not silently ignored
	for _, meta := range []string{`{"priority":9999}`, `{"filter":[["arg_x","==","1"]]}`, `{"disable":false,"error_response":"x"}`} {
		r.Plugins = plugins("test-low", `{"_meta":`+meta+`}`)
		err = build(r, nil)
		require.Error(t, err, meta)
		assert.Contains(t, err.Error(), "is not supported by sluice", meta)
	}
}

func withNode(addr string) func(*model.Route) {
	return func(r *model.Route) {
		u, err := model.DecodeUpstream([]byte(`{"nodes":{"` + addr + `":1}}`))
		if err != nil {
			panic(err)
		}
		r.Upstream = u
	}
}

// A prefer_route plugin in a global rule stands aside on a route that has
// its own instance, not on other routes, and not when the route's instance
// is disabled; other plugins run in both places, as in APISIX.
func TestPreferRoute(t *testing.T) {
	snap := model.NewSnapshot()
	own := route("own", "/own", withNode("127.0.0.1:1"))
	own.Plugins = plugins("test-prefer", `{"tag":"route"}`, "test-low", `{"tag":"route"}`)
	off := route("off", "/off", withNode("127.0.0.1:1"))
	off.Plugins = plugins("test-prefer", `{"tag":"route","_meta":{"disable":true}}`)
	bare := route("bare", "/bare", withNode("127.0.0.1:1"))
	snap.Routes = []*model.Route{own, off, bare}
	snap.GlobalRules["g1"] = json.RawMessage(`{"plugins":{"test-prefer":{"tag":"global"},"test-low":{"tag":"global"}}}`)

	tbl, err := (&Builder{Loops: 1}).Build(snap)
	require.NoError(t, err)
	tags := func(target string) []string {
		rt := tbl.Match(newRequest(t, "GET", target))
		require.NotNil(t, rt)
		var out []string
		for _, st := range rt.Chain.Pre {
			out = append(out, st.Name+"="+st.Instance().(*tagInst).tag)
		}
		return out
	}
	assert.Equal(t, []string{"test-low=global", "test-prefer=route", "test-low=route"}, tags("/own"))
	assert.Equal(t, []string{"test-prefer=global", "test-low=global"}, tags("/off"))
	assert.Equal(t, []string{"test-prefer=global", "test-low=global"}, tags("/bare"))
}
