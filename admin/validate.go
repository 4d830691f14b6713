package admin

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
	"github.com/sluice-gw/sluice/router"
)

// decodeItem decodes and validates the value of res/id on its own, as
// APISIX's schema does, without looking at other resources (checkRefs
// does). The errors are APISIX's texts: model's *Error ("invalid
// configuration: property ... validation failed: ...") or bare ones.
func decodeItem(res, id string, raw []byte) (any, error) {
	switch res {
	case "routes":
		r, err := model.DecodeRoute(raw)
		if err != nil {
			return nil, err
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if r.ID != "" && string(r.ID) != id {
			return nil, errors.New("wrong route id")
		}
		r.ID = model.ID(id)
		if _, err := router.CompileVars(r.Vars); err != nil {
			return nil, err // APISIX: "failed to validate the 'vars' expression: ..."
		}
		return r, nil
	case "upstreams":
		u, err := model.DecodeUpstream(raw)
		if err != nil {
			return nil, err
		}
		if err := u.Validate(); err != nil {
			return nil, err
		}
		if u.ID != "" && string(u.ID) != id {
			return nil, errors.New("wrong upstream id")
		}
		u.ID = model.ID(id)
		return u, nil
	case "services":
		sv, err := model.DecodeService(raw)
		if err != nil {
			return nil, err
		}
		if err := sv.Validate(); err != nil {
			return nil, err
		}
		if sv.ID != "" && string(sv.ID) != id {
			return nil, errors.New("wrong service id")
		}
		sv.ID = model.ID(id)
		return sv, nil
	case "consumers":
		return decodeConsumer(id, raw)
	case "ssls":
		return decodeSSL(id, raw)
	case "global_rules":
		if err := decodePluginsItem("global rule", id, raw, model.GlobalRuleKeys); err != nil {
			return nil, err
		}
		return json.RawMessage(raw), nil
	case "plugin_configs":
		if err := decodePluginsItem("plugin config", id, raw, model.PluginConfigKeys); err != nil {
			return nil, err
		}
		return json.RawMessage(raw), nil
	}
	return nil, fmt.Errorf("unsupported resource type: %s", res)
}

// checkID checks the "id" property of a stored object against id.
func checkID(m map[string]json.RawMessage, kind, id string) error {
	raw, ok := m["id"]
	if !ok {
		return nil
	}
	var v model.ID
	if err := json.Unmarshal(raw, &v); err != nil || v == "" || !model.ValidID(string(v)) {
		return &model.Error{Path: []string{"id"}, Reason: "object matches none of the required"}
	}
	if string(v) != id {
		return fmt.Errorf("wrong %s id", kind)
	}
	return nil
}

// decodePluginsItem checks a global rule or a plugin config stored under
// id: model.CheckPluginsItem with keys, and its id.
func decodePluginsItem(kind, id string, raw []byte, keys []string) error {
	m, err := model.Object(raw)
	if err != nil {
		return err
	}
	if err := model.CheckPluginsItem(m, keys...); err != nil {
		return err
	}
	return checkID(m, kind, id)
}

// pluginKeyField is APISIX's admin/utils plugin_key_map: the field of an
// auth plugin that identifies a consumer, which must be unique.
var pluginKeyField = map[string]string{
	"key-auth":   "key",
	"basic-auth": "username",
	"jwt-auth":   "key",
	"hmac-auth":  "key_id",
}

// decodeConsumer checks a consumer (model.DecodeConsumer) stored under id.
func decodeConsumer(id string, raw []byte) (*model.Consumer, error) {
	m, err := model.Object(raw)
	if err != nil {
		return nil, err
	}
	c, err := model.DecodeConsumer(m)
	if err != nil {
		return nil, err
	}
	if c.Username != id {
		return nil, errors.New("wrong username")
	}
	return c, nil
}

// consumerKeys returns (plugin, key) pairs identifying c.
func consumerKeys(c *model.Consumer) map[string]string {
	out := map[string]string{}
	for name, field := range pluginKeyField {
		raw, ok := c.Plugins[name]
		if !ok {
			continue
		}
		var conf map[string]json.RawMessage
		if json.Unmarshal(raw, &conf) != nil {
			continue
		}
		var v string
		if json.Unmarshal(conf[field], &v) == nil && v != "" {
			out[name] = v
		}
	}
	return out
}

// consumerOf returns a stored consumer for key checks (item.served: the
// keys of one that did not validate still count).
func consumerOf(id string, it *item) *model.Consumer {
	c, _ := it.served("consumers", id).(*model.Consumer)
	return c
}

// sharedConsumerKey finds a consumer whose key another consumer has
// (another writer's: the Admin API refuses it) in st with ch applied, and
// says which.
func (st *state) sharedConsumerKey(ch *change) (id string, err error) {
	seen := map[[2]string]string{}
	st.each(ch, "consumers", func(cid string, o any) {
		c, _ := o.(*model.Consumer)
		if c == nil || err != nil {
			return
		}
		for p, k := range consumerKeys(c) {
			if other, dup := seen[[2]string{p, k}]; dup {
				id, err = cid, fmt.Errorf("consumer %s: duplicate key found with consumer: %s", cid, other)
				return
			}
			seen[[2]string{p, k}] = cid
		}
	})
	return id, err
}

// decodeSSL checks an ssl (APISIX schema_def.lua ssl): a certificate and
// its private key that crypto/tls accepts as a pair, and the SNIs it
// serves.
func decodeSSL(id string, raw []byte) (struct{}, error) {
	var none struct{}
	m, err := model.Object(raw)
	if err != nil {
		return none, err
	}
	if err := model.OnlyKeys(m, "id", "cert", "key", "certs", "keys", "sni", "snis", "client", "type",
		"status", "labels", "ssl_protocols", "desc", "create_time", "update_time"); err != nil {
		return none, err
	}
	if err := checkID(m, "ssl", id); err != nil {
		return none, err
	}
	if err := model.CheckItemMeta(m); err != nil {
		return none, err
	}
	str := func(name string) (string, bool, error) {
		raw, ok := m[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if model.JSONKind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
			return "", true, &model.Error{Path: []string{name}, Reason: "wrong type: expected string, got " + model.GotType(model.JSONKind(raw))}
		}
		return s, true, nil
	}
	strs := func(name string) ([]string, bool, error) {
		raw, ok := m[name]
		if !ok {
			return nil, false, nil
		}
		var s []string
		if model.JSONKind(raw) != "array" || json.Unmarshal(raw, &s) != nil {
			return nil, true, &model.Error{Path: []string{name}, Reason: "wrong type: expected array of strings, got " + model.GotType(model.JSONKind(raw))}
		}
		return s, true, nil
	}
	typ, _, err := str("type")
	if err != nil {
		return none, err
	}
	if typ != "" && typ != "server" && typ != "client" {
		return none, &model.Error{Path: []string{"type"}, Reason: "matches none of the enum values"}
	}
	cert, hasCert, err := str("cert")
	if err != nil {
		return none, err
	}
	key, hasKey, err := str("key")
	if err != nil {
		return none, err
	}
	switch {
	case !hasCert:
		return none, &model.Error{Reason: `property "cert" is required`}
	case !hasKey:
		return none, &model.Error{Reason: `property "key" is required`}
	}
	if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
		return none, fmt.Errorf("failed to parse cert-key pair: %v", err)
	}
	certs, _, err := strs("certs")
	if err != nil {
		return none, err
	}
	keys, _, err := strs("keys")
	if err != nil {
		return none, err
	}
	if len(certs) != len(keys) {
		return none, errors.New("mismatched number of certs and keys")
	}
	for i := range certs {
		if _, err := tls.X509KeyPair([]byte(certs[i]), []byte(keys[i])); err != nil {
			return none, fmt.Errorf("failed to parse cert-key pair[%d]: %v", i+1, err)
		}
	}
	sni, hasSNI, err := str("sni")
	if err != nil {
		return none, err
	}
	snis, hasSNIs, err := strs("snis")
	if err != nil {
		return none, err
	}
	switch {
	case hasSNI && hasSNIs:
		return none, &model.Error{Reason: "value should match only one schema, but matches both schemas 1 and 2"}
	case hasSNIs && len(snis) == 0:
		return none, &model.Error{Path: []string{"snis"}, Reason: "expect array to have at least 1 items"}
	case !hasSNI && !hasSNIs && typ != "client":
		return none, &model.Error{Reason: `value should match only one schema, but matches none: property "sni" or "snis" is required`}
	}
	if hasSNI {
		snis = []string{sni}
	}
	for i, h := range snis {
		if !sniRe.MatchString(h) {
			return none, &model.Error{Path: []string{"snis"}, Reason: fmt.Sprintf("failed to validate item %d: failed to match pattern %q with %q", i+1, sniPattern, h)}
		}
	}
	return none, nil
}

// sniPattern is APISIX's host_def pattern.
const sniPattern = `^\*?[0-9a-zA-Z-._\[\]:]+$`

var sniRe = regexp.MustCompile(sniPattern)

// checkRefs checks what a value of res/id refers to against st: a route's
// upstream_id, service_id and plugin_config_id, a service's upstream_id,
// plugin configurations (traffic-split upstream ids), and the uniqueness
// of consumer keys. The texts are APISIX's.
func (st *state) checkRefs(res, id string, obj any) error {
	upstream := func(uid model.ID) error {
		if uid != "" && !st.exists("upstreams", string(uid)) {
			return fmt.Errorf("failed to fetch upstream info by upstream id [%s], response code: 404", uid)
		}
		return nil
	}
	switch o := obj.(type) {
	case *model.Route:
		if err := upstream(o.UpstreamID); err != nil {
			return err
		}
		if o.ServiceID != "" && !st.exists("services", string(o.ServiceID)) {
			return fmt.Errorf("failed to fetch service info by service id [%s], response code: 404", o.ServiceID)
		}
		if o.PluginConfigID != "" && !st.exists("plugin_configs", string(o.PluginConfigID)) {
			return fmt.Errorf("failed to fetch plugin config info by plugin config id [%s], response code: 404", o.PluginConfigID)
		}
		return st.checkPlugins(o.Plugins)
	case *model.Service:
		if err := upstream(o.UpstreamID); err != nil {
			return err
		}
		return st.checkPlugins(o.Plugins)
	case json.RawMessage: // global rule, plugin config
		var m struct {
			Plugins map[string]json.RawMessage `json:"plugins"`
		}
		_ = json.Unmarshal(o, &m)
		return st.checkPlugins(m.Plugins)
	case *model.Consumer:
		mine := consumerKeys(o)
		if len(mine) == 0 {
			return nil
		}
		for _, other := range st.sortedIDs("consumers") {
			if other == id {
				continue
			}
			c := consumerOf(other, st.items["consumers"][other])
			if c == nil {
				continue
			}
			for p, k := range consumerKeys(c) {
				if mine[p] == k {
					return errors.New("duplicate key found with consumer: " + c.Username)
				}
			}
		}
	}
	return nil
}

// checkPlugins checks that every plugin name is one sluice ships (APISIX:
// "unknown plugin [name]"). Each configuration is checked by compiling it:
// the builder validates a write by building the routing table with it, so
// a plugin error is a 400 naming the plugin and field.
func (st *state) checkPlugins(plugins map[string]json.RawMessage) error {
	for name := range plugins {
		if _, ok := plugin.Lookup(name); !ok {
			return fmt.Errorf("unknown plugin [%s]", name)
		}
	}
	return nil
}

// trafficSplit is the part of a traffic-split configuration that refers to
// upstreams (a referenced upstream cannot be deleted): the arms of
// weighted_upstreams, and the rules themselves in the guide form
// ({"weight":1,"upstream_id":"u"}).
type trafficSplit struct {
	Rules []struct {
		UpstreamID        json.RawMessage `json:"upstream_id"`
		WeightedUpstreams []struct {
			UpstreamID json.RawMessage `json:"upstream_id"`
		} `json:"weighted_upstreams"`
	} `json:"rules"`
}

// trafficSplitUpstreams returns the upstream ids a plugins object's
// traffic-split refers to. Each id is read on its own, so one that does
// not read (in an item another writer stored) does not hide the others.
func trafficSplitUpstreams(plugins map[string]json.RawMessage) []string {
	raw, ok := plugins["traffic-split"]
	if !ok {
		return nil
	}
	var ts trafficSplit
	if json.Unmarshal(raw, &ts) != nil {
		return nil
	}
	var ids []string
	add := func(raw json.RawMessage) {
		var id model.ID
		if len(raw) > 0 && json.Unmarshal(raw, &id) == nil && id != "" {
			ids = append(ids, string(id))
		}
	}
	for _, r := range ts.Rules {
		add(r.UpstreamID)
		for _, wu := range r.WeightedUpstreams {
			add(wu.UpstreamID)
		}
	}
	return ids
}

// pluginsOf returns the plugins of a decoded item.
// pluginsOfItem is pluginsOf for a stored item, read leniently when it
// did not validate (another writer's): the references in its plugins
// still hold.
func pluginsOfItem(it *item) map[string]json.RawMessage {
	if it.obj != nil || it.err == nil {
		return pluginsOf(it.obj)
	}
	return model.LenientPlugins(it.raw)
}

func pluginsOf(obj any) map[string]json.RawMessage {
	switch o := obj.(type) {
	case *model.Route:
		return o.Plugins
	case *model.Service:
		return o.Plugins
	case json.RawMessage:
		var m struct {
			Plugins map[string]json.RawMessage `json:"plugins"`
		}
		_ = json.Unmarshal(o, &m)
		return m.Plugins
	}
	return nil
}

// checkDelete reports what still refers to res/id (APISIX's delete
// checkers, admin/upstreams.lua, services.lua, plugin_configs.lua).
// routeRefs returns a stored route for reference checks (item.served:
// the references of one that did not validate still hold; deleting what
// it uses would move its 503 placeholder under every host).
func routeRefs(it *item) *model.Route {
	r, _ := it.served("routes", "").(*model.Route)
	return r
}

func (st *state) checkDelete(res, id string) error {
	switch res {
	case "upstreams":
		for _, rid := range st.sortedIDs("routes") {
			if r := routeRefs(st.items["routes"][rid]); r != nil && string(r.UpstreamID) == id {
				return fmt.Errorf("can not delete this upstream, route [%s] is still using it now", rid)
			}
		}
		for _, sid := range st.sortedIDs("services") {
			if sv, _ := st.items["services"][sid].obj.(*model.Service); sv != nil && string(sv.UpstreamID) == id {
				return fmt.Errorf("can not delete this upstream, service [%s] is still using it now", sid)
			}
		}
		for _, owner := range []struct{ res, label string }{
			{"routes", "route"}, {"services", "service"}, {"plugin_configs", "plugin_config"}, {"global_rules", "global_rule"},
		} {
			for _, oid := range st.sortedIDs(owner.res) {
				if slices.Contains(trafficSplitUpstreams(pluginsOfItem(st.items[owner.res][oid])), id) {
					return fmt.Errorf("can not delete this upstream, plugin in %s [%s] is still using it now", owner.label, oid)
				}
			}
		}
	case "services":
		for _, rid := range st.sortedIDs("routes") {
			if r := routeRefs(st.items["routes"][rid]); r != nil && string(r.ServiceID) == id {
				return fmt.Errorf("can not delete this service directly, route [%s] is still using it now", rid)
			}
		}
	case "plugin_configs":
		for _, rid := range st.sortedIDs("routes") {
			if r := routeRefs(st.items["routes"][rid]); r != nil && string(r.PluginConfigID) == id {
				return fmt.Errorf("can not delete this plugin config, route [%s] is still using it now", rid)
			}
		}
	}
	return nil
}
