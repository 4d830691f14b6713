package admin

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/model"
)

// resource describes one kind of /apisix/admin/ resource.
type resource struct {
	name string // path segment and store key segment: "routes"
	kind string // APISIX's kind, used in messages: "route"
	// noPost and noPatch: APISIX answers 405 (consumers have neither;
	// global rules and plugin configs have no POST).
	noPost, noPatch bool
	// byName: the id is the "username" field (consumers) and the stored
	// value has no "id" (APISIX's consumer schema forbids it).
	byName bool
}

var resources = map[string]*resource{
	"routes":         {name: "routes", kind: "route"},
	"upstreams":      {name: "upstreams", kind: "upstream"},
	"services":       {name: "services", kind: "service"},
	"consumers":      {name: "consumers", kind: "consumer", noPost: true, noPatch: true, byName: true},
	"ssls":           {name: "ssls", kind: "ssl"},
	"global_rules":   {name: "global_rules", kind: "global rule", noPost: true},
	"plugin_configs": {name: "plugin_configs", kind: "plugin config", noPost: true},
}

// item is one stored resource as the builder knows it. Items are replaced,
// never changed in place, except for their indexes (under Server.mu).
type item struct {
	raw     []byte // the stored JSON, secrets included
	obj     any    // decoded: *model.Route, *model.Upstream, *model.Service, *model.Consumer, json.RawMessage; nil if it did not decode
	err     error  // why obj is nil (a foreign item that did not decode or validate)
	created int64  // createdIndex: store revision of the creation, as far as this process saw it
	rev     int64  // modifiedIndex: store revision of the last change (0 until the store reported it)
}

// state is the in-memory copy of the store: resource name → id → item.
type state struct {
	items map[string]map[string]*item
}

func newState() *state {
	st := &state{items: make(map[string]map[string]*item, len(resources))}
	for name := range resources {
		st.items[name] = map[string]*item{}
	}
	return st
}

func (st *state) get(res, id string) *item { return st.items[res][id] }

// exists reports whether res/id exists (and decoded).
func (st *state) exists(res, id string) bool {
	it := st.items[res][id]
	return it != nil && it.obj != nil
}

// sortedIDs returns the ids of res in key order (the store's order).
func (st *state) sortedIDs(res string) []string {
	ids := make([]string, 0, len(st.items[res]))
	for id := range st.items[res] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// change is a write not yet applied: obj nil deletes.
type change struct {
	res, id string
	obj     any
}

// snapshot returns the model.Snapshot of st with ch applied (ch may be
// nil). Items that did not decode are left out. Routes are in id order,
// which decides ties between routes of equal priority on the same path.
// The decoded objects are shared, never changed: the snapshot may be handed
// to router.Build.
func (st *state) snapshot(ch *change) *model.Snapshot {
	snap := model.NewSnapshot()
	obj := func(res, id string, it *item) any {
		if ch != nil && ch.res == res && ch.id == id {
			return ch.obj
		}
		if it == nil {
			return nil
		}
		return it.obj
	}
	each := func(res string, f func(id string, o any)) {
		ids := st.sortedIDs(res)
		if ch != nil && ch.res == res && st.items[res][ch.id] == nil {
			ids = append(ids, ch.id)
			slices.Sort(ids)
		}
		for _, id := range ids {
			if o := obj(res, id, st.items[res][id]); o != nil {
				f(id, o)
			}
		}
	}
	each("routes", func(_ string, o any) { snap.Routes = append(snap.Routes, o.(*model.Route)) })
	// A route that did not decode still takes its place, answering 503:
	// left out, its requests would fall through to a less specific route
	// that lacks its plugins (an APISIX plugin sluice does not know, say).
	for _, id := range st.sortedIDs("routes") {
		it := st.items["routes"][id]
		if it.obj != nil || it.err == nil || (ch != nil && ch.res == "routes" && ch.id == id) {
			continue
		}
		if r := model.DecodeRouteMatch(it.raw, it.err); r != nil {
			r.ID = model.ID(id)
			snap.Routes = append(snap.Routes, r)
		}
	}
	slices.SortFunc(snap.Routes, func(a, b *model.Route) int { return strings.Compare(string(a.ID), string(b.ID)) })
	each("upstreams", func(id string, o any) { snap.Upstreams[id] = o.(*model.Upstream) })
	each("services", func(id string, o any) { snap.Services[id] = o.(*model.Service) })
	// A service that did not decode still lends its hosts to its routes,
	// which answer 503 there (not elsewhere, not falling through).
	for _, id := range st.sortedIDs("services") {
		it := st.items["services"][id]
		if it.obj == nil && it.err != nil && (ch == nil || ch.res != "services" || ch.id != id) {
			sv := model.DecodeServiceHosts(it.raw, it.err)
			sv.ID = model.ID(id)
			snap.Services[id] = sv
		}
	}
	each("plugin_configs", func(id string, o any) { snap.PluginConfigs[id] = o.(json.RawMessage) })
	each("global_rules", func(id string, o any) { snap.GlobalRules[id] = o.(json.RawMessage) })
	each("consumers", func(id string, o any) { snap.Consumers[id] = o.(*model.Consumer) })
	// A consumer that did not decode authenticates nobody, and the keys
	// it holds authenticate nobody either (key-auth would otherwise give
	// a key it shares to the other consumer).
	for _, id := range st.sortedIDs("consumers") {
		it := st.items["consumers"][id]
		if it.obj == nil && it.err != nil && (ch == nil || ch.res != "consumers" || ch.id != id) {
			if c := model.DecodeConsumerPlugins(it.raw, it.err); c != nil {
				c.Username = id
				snap.Consumers[id] = c
			}
		}
	}
	return snap
}

// splitKey parses "<prefix>/<res>/<id>"; ok is false for keys of other
// shapes (resources sluice does not serve, consumer credentials, ...).
func splitKey(prefix, key string) (res, id string, ok bool) {
	rest, found := strings.CutPrefix(key, prefix+"/")
	if !found {
		return "", "", false
	}
	res, id, found = strings.Cut(rest, "/")
	if !found || id == "" || strings.Contains(id, "/") || resources[res] == nil {
		return "", "", false
	}
	return res, id, true
}
