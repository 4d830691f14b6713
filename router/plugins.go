package router

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/metrics"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
)

// exprCond adapts a compiled vars expression to plugin.Cond.
type exprCond struct{ e *Expr }

// Eval evaluates the expression against the request's router view.
func (x exprCond) Eval(c *plugin.Ctx) bool {
	r, _ := c.Match.(*Request)
	if r == nil {
		return false
	}
	r.Consumer, r.RouteID = c.Consumer, c.RouteID // (key-auth ran before: consumer_name)
	return x.e.Eval(r)
}

// NeedsBody reports whether the expression reads post_arg.* (the engine
// then waits for the request body).
func (x exprCond) NeedsBody() bool { return x.e.NeedsBody() }

// pluginSet is one object's plugins: name → configuration.
type pluginSet = map[string]json.RawMessage

// globalEntries compiles every global rule's plugins (in id order); they
// run before each route's own plugins.
func (s *build) globalEntries() ([]plugin.Entry, error) {
	ids := make([]string, 0, len(s.snap.GlobalRules))
	for id := range s.snap.GlobalRules {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []plugin.Entry
	var first error
	for _, id := range ids {
		var gr struct {
			Plugins pluginSet `json:"plugins"`
		}
		err := json.Unmarshal(s.snap.GlobalRules[id], &gr)
		if err != nil {
			err = fmt.Errorf("router: global rule %q: %w", id, err)
		}
		var es []plugin.Entry
		var shared map[string]any
		if s.broken != nil {
			shared = maps.Clone(s.shared) // taken back if the rule fails
		}
		if err == nil {
			env := s.env("global_rules "+id, "", "", nil)
			env.Global = true
			if es, err = s.compileSet(gr.Plugins, env); err != nil {
				err = fmt.Errorf("router: global rule %q: %w", id, err)
			}
		}
		if err != nil {
			if s.broken == nil {
				return nil, err
			}
			s.shared = shared
			s.broken["global_rules/"+id] = err // (Build fails: see there)
			first = cmp.Or(first, err)
			continue
		}
		for i := range es {
			es[i].Global = true
		}
		out = append(out, es...)
	}
	return out, first
}

// routeChain merges a route's plugins as APISIX does (the service's, then
// its plugin_config's, then the route's own: a later one replaces a plugin
// of the same name), compiles them and adds the global rules' entries.
func (s *build) routeChain(mr *model.Route, svc *model.Service, up *balancer.Upstream) (*plugin.Chain, error) {
	merged := pluginSet{}
	if svc != nil {
		for n, c := range svc.Plugins {
			merged[n] = c
		}
	}
	if mr.PluginConfigID != "" {
		raw, ok := s.snap.PluginConfigs[string(mr.PluginConfigID)]
		if !ok {
			return nil, fmt.Errorf("router: route %q: plugin_config_id %q not found", mr.ID, mr.PluginConfigID)
		}
		var pc struct {
			Plugins pluginSet `json:"plugins"`
		}
		if err := json.Unmarshal(raw, &pc); err != nil {
			return nil, fmt.Errorf("router: plugin_config %q: %w", mr.PluginConfigID, err)
		}
		for n, c := range pc.Plugins {
			merged[n] = c
		}
	}
	for n, c := range mr.Plugins {
		merged[n] = c
	}
	if len(merged) == 0 && len(s.global) == 0 {
		return nil, nil
	}
	svcID := ""
	if svc != nil {
		svcID = string(svc.ID)
	}
	env := s.env("route "+string(mr.ID), string(mr.ID), svcID, up)
	env.RouteName = mr.Name
	if svc != nil {
		env.ServiceName = svc.Name
	}
	es, err := s.compileSet(merged, env)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if al, ok := e.Instance.(plugin.ArmLister); ok {
			for _, a := range al.Arms() {
				s.arms = append(s.arms, metrics.Arm{Route: string(mr.ID), Rule: strconv.Itoa(a.Rule), Name: a.Name, Weight: a.Weight})
			}
		}
	}
	return plugin.NewChain(append(preferRoute(s.global, es), es...)), nil
}

// preferRoute returns a copy of the global rules' entries without those of
// plugins that prefer the route's own instance (plugin.RoutePreferrer) when
// the route has one (APISIX run_policy "prefer_route": prometheus on a route
// and in a global rule counts the route's requests once). A route instance
// disabled with _meta was not compiled, so the global one runs then.
func preferRoute(global, route []plugin.Entry) []plugin.Entry {
	out := make([]plugin.Entry, 0, len(global)+len(route))
	for _, g := range global {
		if p, _ := plugin.Lookup(g.Name); plugin.PrefersRoute(p) &&
			slices.ContainsFunc(route, func(e plugin.Entry) bool { return e.Name == g.Name }) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// checkShared compiles every service's and plugin_config's plugins on
// their own, once the routes are built, used or not: each must build alone
// (a write giving a route's limit-count group other settings than a
// service's is refused whether or not a route uses the service), and the
// item at fault is reported under its own key, not only through the routes
// it breaks, so deleting such a route breaks nothing new. A compile here
// only checks: what it registers (group settings, split rotations) is
// taken back.
func (s *build) checkShared() error {
	check := func(key, scope, svcID string, set pluginSet, err error) error {
		if err == nil {
			shared, rotations := maps.Clone(s.shared), len(s.rotations)
			_, err = s.compileSet(set, s.env(scope, "", svcID, nil))
			s.shared, s.rotations = shared, s.rotations[:rotations]
		}
		if err == nil {
			return nil
		}
		if s.broken == nil {
			return err
		}
		s.broken[key] = err
		return nil
	}
	for _, id := range slices.Sorted(maps.Keys(s.snap.Services)) {
		sv := s.snap.Services[id]
		if sv == nil {
			continue
		}
		if err := check("services/"+id, "services "+id, id, sv.Plugins, sv.Invalid); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.snap.PluginConfigs)) {
		var pc struct {
			Plugins pluginSet `json:"plugins"`
		}
		err := json.Unmarshal(s.snap.PluginConfigs[id], &pc)
		if err != nil {
			err = fmt.Errorf("router: plugin_config %q: %w", id, err)
		}
		if err := check("plugin_configs/"+id, "plugin_configs "+id, "", pc.Plugins, err); err != nil {
			return err
		}
	}
	return nil
}

// ErrUnknownPlugin is returned (wrapped) for a plugin name no package
// registered.
var ErrUnknownPlugin = errors.New("unknown plugin")

// compileSet compiles a set of plugin configurations, in name order.
func (s *build) compileSet(set pluginSet, env *plugin.Env) ([]plugin.Entry, error) {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]plugin.Entry, 0, len(names))
	for _, n := range names {
		p, ok := plugin.Lookup(n)
		if !ok {
			// APISIX: "unknown plugin [name]"
			return nil, fmt.Errorf("%w [%s]", ErrUnknownPlugin, n)
		}
		if err := checkMeta(n, set[n]); err != nil {
			return nil, err
		}
		if disabled(set[n]) {
			continue
		}
		inst, err := p.Compile(set[n], env)
		if err != nil {
			return nil, err
		}
		if inst == nil {
			continue
		}
		out = append(out, plugin.Entry{Name: n, Priority: p.Priority(), Instance: inst})
	}
	return out, nil
}

// checkMeta refuses the parts of APISIX's `_meta` sluice does not
// implement (priority, filter, error_response, pre_function): silently
// ignored, a plugin would run in another order or on requests its filter
// excludes.
func checkMeta(name string, raw json.RawMessage) error {
	var c struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return nil // the plugin's own compile reports the shape
	}
	for k := range c.Meta {
		if k != "disable" {
			return fmt.Errorf("failed to check the configuration of plugin %s err: property \"_meta.%s\" is not supported by sluice", name, k)
		}
	}
	return nil
}

// disabled reports APISIX's `"_meta": {"disable": true}`.
func disabled(raw json.RawMessage) bool {
	var c struct {
		Meta struct {
			Disable bool `json:"disable"`
		} `json:"_meta"`
	}
	return json.Unmarshal(raw, &c) == nil && c.Meta.Disable
}

// env returns the compile environment for one scope of this build.
func (s *build) env(scope, routeID, svcID string, up *balancer.Upstream) *plugin.Env {
	return &plugin.Env{
		RouteID:       routeID,
		ServiceID:     svcID,
		Scope:         scope,
		Loops:         s.b.loops(),
		RouteUpstream: up,
		Shared:        s.shared,
		Upstream: func(id string) (*balancer.Upstream, error) {
			m := s.snap.Upstreams[id]
			if m == nil {
				return nil, fmt.Errorf("upstream_id %q not found", id)
			}
			return s.upstream("upstreams/"+id, m)
		},
		InlineUpstream: func(raw json.RawMessage, key string) (*balancer.Upstream, error) {
			m, err := model.DecodeUpstream(raw)
			if err != nil {
				return nil, err
			}
			if err := m.Validate(); err != nil {
				return nil, err
			}
			return s.upstream(key, m)
		},
		Vars: func(raw json.RawMessage) (plugin.Cond, error) {
			e, err := CompileVars(raw)
			if err != nil {
				return nil, err
			}
			if e == nil {
				return nil, nil
			}
			return exprCond{e}, nil
		},
		Consumers: s.consumers(),
		Rotation: func(key string, weights []int) *plugin.Rotation {
			r := plugin.NewRotation(key, weights, s.b.loops())
			s.rotations = append(s.rotations, r)
			return r
		},
		Attr: func(name string) json.RawMessage {
			if s.b.PluginAttr == nil {
				return nil
			}
			return s.b.PluginAttr[name]
		},
	}
}

// consumers returns the snapshot's consumers sorted by username (made once
// per build).
func (s *build) consumers() []plugin.Consumer {
	if s.cons != nil || len(s.snap.Consumers) == 0 {
		return s.cons
	}
	for _, c := range s.snap.Consumers {
		if c != nil {
			s.cons = append(s.cons, plugin.Consumer{Username: c.Username, Plugins: c.Plugins, Blocked: c.Invalid != nil})
		}
	}
	slices.SortFunc(s.cons, func(a, b plugin.Consumer) int {
		if a.Username < b.Username {
			return -1
		}
		if a.Username > b.Username {
			return 1
		}
		return 0
	})
	return s.cons
}
