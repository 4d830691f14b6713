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

// replaces reports whether ch writes or deletes res/id.
func (ch *change) replaces(res, id string) bool {
	return ch != nil && ch.res == res && ch.id == id
}

// served returns what stands for res/id in the routing table: its decoded
// object or, for an item another writer stored that did not decode, a
// placeholder read leniently (nil when there is none). A route keeps its
// place and answers 503 (left out, its requests would fall through to a
// less specific route that lacks its plugins); a service lends its hosts
// to its routes; a consumer holds its keys, which then authenticate
// nobody (key-auth would otherwise give a key it shares to the other).
func (it *item) served(res, id string) any {
	if it.obj != nil || it.err == nil {
		return it.obj
	}
	switch res {
	case "routes":
		if r := model.DecodeRouteMatch(it.raw, it.err); r != nil {
			r.ID = model.ID(id)
			return r
		}
	case "services":
		sv := model.DecodeServiceHosts(it.raw, it.err)
		sv.ID = model.ID(id)
		return sv
	case "consumers":
		if c := model.DecodeConsumerPlugins(it.raw, it.err); c != nil {
			c.Username = id
			return c
		}
	}
	return nil
}

// snapshot returns the model.Snapshot of st with ch applied (ch may be
// nil), items that did not decode standing as item.served says. Routes
// are in id order, which decides ties between routes of equal priority on
// the same path. The decoded objects are shared, never changed: the
// snapshot may be handed to router.Build.
func (st *state) snapshot(ch *change) *model.Snapshot {
	snap := model.NewSnapshot()
	st.each(ch, "routes", func(_ string, o any) { snap.Routes = append(snap.Routes, o.(*model.Route)) })
	st.each(ch, "upstreams", func(id string, o any) { snap.Upstreams[id] = o.(*model.Upstream) })
	st.each(ch, "services", func(id string, o any) { snap.Services[id] = o.(*model.Service) })
	st.each(ch, "plugin_configs", func(id string, o any) { snap.PluginConfigs[id] = o.(json.RawMessage) })
	st.each(ch, "global_rules", func(id string, o any) { snap.GlobalRules[id] = o.(json.RawMessage) })
	st.each(ch, "consumers", func(id string, o any) { snap.Consumers[id] = o.(*model.Consumer) })
	return snap
}

// each calls f, in id order, with what stands for every res item in st
// with ch applied (ch may be nil): the change's object for the item it
// writes, item.served for the others; items with nothing to serve (a
// delete, a placeholder that does not read) are skipped.
func (st *state) each(ch *change, res string, f func(id string, o any)) {
	ids := st.sortedIDs(res)
	if ch != nil && ch.res == res && st.items[res][ch.id] == nil {
		ids = append(ids, ch.id)
		slices.Sort(ids)
	}
	for _, id := range ids {
		var o any
		if ch.replaces(res, id) {
			o = ch.obj
		} else {
			o = st.items[res][id].served(res, id)
		}
		if o != nil {
			f(id, o)
		}
	}
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
