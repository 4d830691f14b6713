package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// This file checks the untyped resources (consumers, global rules, plugin
// configs) the Admin API and standalone mode both accept, so that an item
// means the same in both.

// Object parses raw as a JSON object; the error is jsonschema's wording.
func Object(raw []byte) (map[string]json.RawMessage, error) {
	if k := JSONKind(raw); k != "object" {
		return nil, &Error{Reason: "wrong type: expected object, got " + GotType(k)}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("invalid request body: %v", err)
	}
	return m, nil
}

// OnlyKeys reports the first key of m (in sorted order) not in allowed.
func OnlyKeys(m map[string]json.RawMessage, allowed ...string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(allowed, k) {
			return &Error{Reason: "additional properties forbidden, found " + k}
		}
	}
	return nil
}

// PluginsMap decodes a "plugins" property: an object of objects.
func PluginsMap(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if k := JSONKind(raw); k != "object" {
		return nil, &Error{Path: []string{"plugins"}, Reason: "wrong type: expected object, got " + GotType(k)}
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, &Error{Path: []string{"plugins"}, Reason: err.Error()}
	}
	if err := checkPlugins(p); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckItemMeta checks the optional name, desc, labels and timestamps of
// an item as the typed resources' metadata is checked.
func CheckItemMeta(m map[string]json.RawMessage) error {
	var name, desc string
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &name}, {"desc", &desc}} {
		if raw, ok := m[f.key]; ok {
			if k := JSONKind(raw); k != "string" || json.Unmarshal(raw, f.dst) != nil {
				return &Error{Path: []string{f.key}, Reason: "wrong type: expected string, got " + GotType(k)}
			}
		}
	}
	var labels map[string]string
	if raw, ok := m["labels"]; ok {
		if JSONKind(raw) != "object" || json.Unmarshal(raw, &labels) != nil {
			return &Error{Path: []string{"labels"}, Reason: "wrong type: expected object, got " + GotType(JSONKind(raw))}
		}
	}
	for _, t := range []string{"create_time", "update_time"} {
		if raw, ok := m[t]; ok && JSONKind(raw) != "number" {
			return &Error{Path: []string{t}, Reason: "wrong type: expected integer, got " + GotType(JSONKind(raw))}
		}
	}
	return checkMeta("", name, desc, labels)
}

// The keys of a global rule and of a plugin config (APISIX schema_def.lua
// global_rule, plugin_config), for CheckPluginsItem.
var (
	GlobalRuleKeys   = []string{"id", "plugins", "create_time", "update_time"}
	PluginConfigKeys = []string{"id", "name", "desc", "labels", "plugins", "create_time", "update_time"}
)

// CheckPluginsItem checks a global rule or a plugin config (APISIX
// schema_def.lua global_rule, plugin_config): keys in allowed only, the
// metadata, and a required "plugins" object of objects. The id is the
// caller's to check.
func CheckPluginsItem(m map[string]json.RawMessage, allowed ...string) error {
	if err := OnlyKeys(m, allowed...); err != nil {
		return err
	}
	if err := CheckItemMeta(m); err != nil {
		return err
	}
	raw, ok := m["plugins"]
	if !ok {
		return &Error{Reason: `property "plugins" is required`}
	}
	_, err := PluginsMap(raw)
	return err
}

// DecodeConsumer checks a consumer (APISIX schema_def.lua consumer) and the
// configuration of key-auth, the consumer plugin sluice implements.
func DecodeConsumer(m map[string]json.RawMessage) (*Consumer, error) {
	if err := OnlyKeys(m, "username", "desc", "labels", "plugins", "group_id", "create_time", "update_time"); err != nil {
		return nil, err
	}
	if _, ok := m["group_id"]; ok {
		return nil, &Error{Path: []string{"group_id"}, Reason: "not supported by sluice (consumer groups)"}
	}
	if err := CheckItemMeta(m); err != nil {
		return nil, err
	}
	u, err := ConsumerUsername(m)
	if err != nil {
		return nil, err
	}
	c := &Consumer{Username: u}
	if raw, ok := m["plugins"]; ok {
		if c.Plugins, err = PluginsMap(raw); err != nil {
			return nil, err
		}
	}
	for name := range c.Plugins {
		if name != "key-auth" {
			// APISIX merges a consumer's other plugins (a per-consumer
			// limit-count) into the route; sluice does not, and a limit
			// silently off is worse than a refused one
			return nil, errors.New("invalid plugins configuration: plugin " + name + " on a consumer is not supported by sluice (only key-auth); configure it on the route")
		}
	}
	if err := CheckConsumerKeyAuth(c.Plugins); err != nil {
		return nil, err
	}
	return c, nil
}
