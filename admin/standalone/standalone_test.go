package standalone

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
)

// benchYAML is the file the benchmark harness writes.
const benchYAML = `routes:
  - id: "1"
    uri: /chat/completions
    upstream:
      type: roundrobin
      nodes:
        "127.0.0.1:8000": 1
#END
`

func TestParseBenchFile(t *testing.T) {
	snap, err := Parse([]byte(benchYAML))
	require.NoError(t, err)
	require.Len(t, snap.Routes, 1)
	r := snap.Routes[0]
	assert.Equal(t, model.ID("1"), r.ID)
	assert.Equal(t, "/chat/completions", r.URI)
	require.NotNil(t, r.Upstream)
	assert.Equal(t, "roundrobin", r.Upstream.Type)
	assert.Equal(t, model.Nodes{{Host: "127.0.0.1", Port: 8000, Weight: 1}}, r.Upstream.Nodes)
	assert.Empty(t, snap.Upstreams)
	assert.NotNil(t, snap.Upstreams, "maps are made")
	assert.NotNil(t, snap.Services)
	assert.NotNil(t, snap.PluginConfigs)
	assert.NotNil(t, snap.GlobalRules)

	// The map form is echoed as written.
	b, err := json.Marshal(r.Upstream)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"roundrobin","nodes":{"127.0.0.1:8000":1}}`, string(b))
}

func TestParseRepoExample(t *testing.T) {
	// The example shipped in conf/ must stay loadable.
	data, err := os.ReadFile("../../conf/apisix.yaml")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no conf/apisix.yaml")
	}
	require.NoError(t, err)
	snap, err := Parse(data)
	require.NoError(t, err)
	assert.NotEmpty(t, snap.Routes)
}

func TestParseFull(t *testing.T) {
	snap, err := Parse([]byte(`
# upstreams first, referenced by id below
upstreams:
  - id: 1                      # an integer id, as APISIX allows
    type: chash
    key: remote_addr
    nodes:
      - host: 10.0.0.1
        port: 8000
        weight: 3
        priority: 1
      - host: 10.0.0.2
        port: 8000
        weight: 1
    timeout: {connect: 0.5, send: 60, read: 120}
    retries: 2
  - id: backup
    nodes:
      "[::1]:9000": 1
services:
  - id: svc
    upstream_id: backup
    plugins:
      limit-count: {count: 10, time_window: 60}
routes:
  - id: r-b
    uri: /b
    upstream_id: 1
  - id: r-a
    uris: [/a, /a/*]
    methods: [GET, POST]
    service_id: svc
    priority: 5
  - id: 3
    uri: /c
    plugin_config_id: pc
    plugins:
      proxy-rewrite: {uri: /x}
plugin_configs:
  - id: pc
    plugins:
      key-auth: {}
global_rules:
  - id: g1
    plugins:
      prometheus: {prefer_name: true}
consumers:
  - username: jack
    plugins:
      key-auth: {key: secret}
ssls:
  - id: s1
    cert: "..."
routes_conf_version: 7
#END
`))
	require.NoError(t, err)

	require.Len(t, snap.Routes, 3)
	ids := []model.ID{snap.Routes[0].ID, snap.Routes[1].ID, snap.Routes[2].ID}
	assert.Equal(t, []model.ID{"r-b", "r-a", "3"}, ids, "file order")
	assert.Equal(t, model.ID("1"), snap.Routes[0].UpstreamID)
	assert.Equal(t, []string{"/a", "/a/*"}, snap.Routes[1].URIs)
	assert.Equal(t, model.ID("svc"), snap.Routes[1].ServiceID)
	assert.Equal(t, 5, snap.Routes[1].Priority)
	assert.JSONEq(t, `{"uri":"/x"}`, string(snap.Routes[2].Plugins["proxy-rewrite"]))

	require.Len(t, snap.Upstreams, 2)
	u := snap.Upstreams["1"]
	require.NotNil(t, u)
	assert.Equal(t, "chash", u.Type)
	assert.Equal(t, model.Nodes{
		{Host: "10.0.0.1", Port: 8000, Weight: 3, Priority: 1},
		{Host: "10.0.0.2", Port: 8000, Weight: 1},
	}, u.Nodes)
	assert.Equal(t, &model.Timeout{Connect: 0.5, Send: 60, Read: 120}, u.Timeout)
	require.NotNil(t, u.Retries)
	assert.Equal(t, 2, *u.Retries)
	assert.Equal(t, model.Nodes{{Host: "::1", Port: 9000, Weight: 1}}, snap.Upstreams["backup"].Nodes)

	require.Contains(t, snap.Services, "svc")
	assert.Equal(t, model.ID("backup"), snap.Services["svc"].UpstreamID)
	assert.JSONEq(t, `{"count":10,"time_window":60}`, string(snap.Services["svc"].Plugins["limit-count"]))

	require.Contains(t, snap.PluginConfigs, "pc")
	assert.JSONEq(t, `{"id":"pc","plugins":{"key-auth":{}}}`, string(snap.PluginConfigs["pc"]))
	require.Contains(t, snap.GlobalRules, "g1")
	assert.JSONEq(t, `{"id":"g1","plugins":{"prometheus":{"prefer_name":true}}}`, string(snap.GlobalRules["g1"]))

	require.Len(t, snap.Consumers, 1)
	require.Contains(t, snap.Consumers, "jack")
	assert.Equal(t, "jack", snap.Consumers["jack"].Username)
	assert.JSONEq(t, `{"key":"secret"}`, string(snap.Consumers["jack"].Plugins["key-auth"]))
}

func TestParseConsumers(t *testing.T) {
	snap, err := Parse([]byte(`
consumers:
  - username: jack
    desc: first
    labels: {team: a}
    plugins:
      key-auth: {key: auth-one}
  - username: rose_2
    plugins:
      key-auth: {key: auth-two}
  - username: nobody
#END
`))
	require.NoError(t, err)
	require.Len(t, snap.Consumers, 3)
	assert.JSONEq(t, `{"key":"auth-one"}`, string(snap.Consumers["jack"].Plugins["key-auth"]))
	assert.JSONEq(t, `{"key":"auth-two"}`, string(snap.Consumers["rose_2"].Plugins["key-auth"]))
	assert.Equal(t, &model.Consumer{Username: "nobody"}, snap.Consumers["nobody"])

	snap, err = Parse([]byte("consumers:\n#END\n"))
	require.NoError(t, err)
	assert.Empty(t, snap.Consumers)

	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in + "\n#END\n"))
		assert.EqualError(t, err, want)
	}
	f(`
consumers:
  - {plugins: {}}`, `standalone: consumers[0]: invalid configuration: property "username" is required`)
	// a consumer's other plugins would be merged into the route by APISIX;
	// sluice refuses them rather than ignore them
	f(`
consumers:
  - username: rose
    plugins:
      key-auth: {key: auth-two}
      limit-count: {count: 2, time_window: 60}`, `standalone: consumers[0]: invalid plugins configuration: plugin limit-count on a consumer is not supported by sluice (only key-auth); configure it on the route`)
	f(`
consumers:
  - {username: 7}`, `standalone: consumers[0]: invalid configuration: property "username" validation failed: wrong type: expected string, got number`)
	f(`
consumers:
  - {username: "a b"}`, `standalone: consumers[0]: invalid configuration: property "username" validation failed: failed to match pattern "^[a-zA-Z0-9_\\-]+$" with "a b"`)
	f(`
consumers:
  - {username: jack, id: 1}`, `standalone: consumers[0]: invalid configuration: additional properties forbidden, found id`)
	f(`
consumers:
  - {username: jack, group_id: g}`, `standalone: consumers[0]: invalid configuration: property "group_id" validation failed: not supported by sluice (consumer groups)`)
	// metadata is checked as the Admin API checks it
	f(`
consumers:
  - {username: jack, desc: [a]}`, `standalone: consumers[0]: invalid configuration: property "desc" validation failed: wrong type: expected string, got table`)
	f(`
consumers:
  - {username: jack, labels: {team: ""}}`, `standalone: consumers[0]: invalid configuration: property "labels" validation failed: failed to validate team (matching ".*"): string too short, expected at least 1, got 0`)
	f(`
global_rules:
  - {id: g, plugins: {}, create_time: soon}`, `standalone: global_rules[0]: invalid configuration: property "create_time" validation failed: wrong type: expected integer, got string`)
	f(`
consumers:
  - {username: jack, plugins: [key-auth]}`, `standalone: consumers[0]: invalid configuration: property "plugins" validation failed: wrong type: expected object, got table`)
	f(`
consumers:
  - {username: jack, plugins: {key-auth: {}}}`, `standalone: consumers[0]: invalid plugins configuration: failed to check the configuration of plugin key-auth err: property "key" is required`)
	f(`
consumers:
  - {username: jack, plugins: {key-auth: {key: ""}}}`, `standalone: consumers[0]: invalid plugins configuration: failed to check the configuration of plugin key-auth err: property "key" validation failed: string too short, expected at least 1, got 0`)
	f(`
consumers:
  - {username: jack, plugins: {key-auth: {key: 12}}}`, `standalone: consumers[0]: invalid plugins configuration: failed to check the configuration of plugin key-auth err: property "key" validation failed: wrong type: expected string, got number`)
	f(`
consumers:
  - {username: jack}
  - {username: jack}`, `standalone: consumers[1]: duplicate username "jack" (also consumers[0])`)
	f(`
consumers:
  - {username: jack, plugins: {key-auth: {key: k}}}
  - {username: rose, plugins: {key-auth: {key: k}}}`, `standalone: consumers[1]: duplicate key found with consumer: jack`)
}

func TestParseYAMLFeatures(t *testing.T) {
	snap, err := Parse([]byte(`
upstreams:
  - &base
    id: u1
    type: roundrobin
    nodes: {"a.internal:80": 1}
    timeout: &t {connect: 1, send: 2, read: 3}
  - <<: *base
    id: u2
    type: least_conn
routes:
  - id: r1
    uri: /big
    priority: 123456789012
    upstream_id: u2
    labels: {version: "1", since: 2024-01-02}
    vars: [[arg_n, "==", 1.5], [http_x, "~=", null], [arg_ok, "==", true]]
#END`))
	require.NoError(t, err)
	u2 := snap.Upstreams["u2"]
	require.NotNil(t, u2)
	assert.Equal(t, "least_conn", u2.Type, "keys of the mapping win over merged ones")
	assert.Equal(t, model.Nodes{{Host: "a.internal", Port: 80, Weight: 1}}, u2.Nodes)
	assert.Equal(t, &model.Timeout{Connect: 1, Send: 2, Read: 3}, u2.Timeout)
	r := snap.Routes[0]
	assert.Equal(t, 123456789012, r.Priority)
	assert.Equal(t, map[string]string{"version": "1", "since": "2024-01-02"}, r.Labels, "a timestamp stays its text")
	assert.JSONEq(t, `[["arg_n","==",1.5],["http_x","~=",null],["arg_ok","==",true]]`, string(r.Vars))
}

func TestParseIntegersStayIntegers(t *testing.T) {
	snap, err := Parse([]byte(`
global_rules:
  - id: 1
    plugins:
      p: {a: 1, b: 1.0, c: 0x10, d: 123456789012345678901234567890, e: -7, f: 1e3}
#END`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":1,"plugins":{"p":{"a":1,"b":1,"c":16,"d":123456789012345678901234567890,"e":-7,"f":1000}}}`, string(snap.GlobalRules["1"]))
	assert.Contains(t, string(snap.GlobalRules["1"]), `"d":123456789012345678901234567890`)
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"#END", "#END\n", "# nothing yet\n#END\n  \n", "routes:\n#END", "routes: []\nupstreams: ~\n#END\n"} {
		snap, err := Parse([]byte(in))
		require.NoError(t, err, in)
		assert.Empty(t, snap.Routes, in)
		assert.NotNil(t, snap.Upstreams, in)
	}
}

func TestParseMissingEnd(t *testing.T) {
	for _, in := range []string{
		"",
		"routes: []\n",
		"routes: []\n#EN",
		"routes: []\n#END\nupstreams: []\n", // cut short after more was written
		"routes: []\n#end\n",
		"routes:\n  - uri: /a#END\n", // data, not the comment
	} {
		_, err := Parse([]byte(in))
		assert.ErrorIs(t, err, ErrNoEndMarker, "%q", in)
	}
	_, err := Parse([]byte("routes: []\n"))
	assert.EqualError(t, err, "standalone: apisix.yaml: missing #END marker (file incomplete?)")
	_, err = Parse([]byte("routes: [] #END  \n\n"))
	assert.NoError(t, err, "a trailing comment on the last line, as APISIX accepts")
}

func TestParseBadYAML(t *testing.T) {
	_, err := Parse([]byte("routes:\n  - id: 1\n    uri: /a\n  bad\n#END\n"))
	assert.EqualError(t, err, "standalone: apisix.yaml: yaml: line 4: could not find expected ':'")

	_, err = Parse([]byte("routes:\n  - id: 1\n\turi: /a\n#END\n"))
	assert.EqualError(t, err, "standalone: apisix.yaml: yaml: line 2: found a tab character that violates indentation")

	_, err = Parse([]byte("routes: [\n#END\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "standalone: apisix.yaml: yaml: line ")

	_, err = Parse([]byte("routes: []\n---\nupstreams: []\n#END\n"))
	assert.EqualError(t, err, "standalone: apisix.yaml: line 2: more than one YAML document")

	_, err = Parse([]byte("- a\n#END\n"))
	assert.EqualError(t, err, "standalone: apisix.yaml: line 1: the top level must be a mapping, not a list")

	_, err = Parse([]byte("routes: {}\n#END\n"))
	assert.EqualError(t, err, "standalone: routes: line 1: expected a list, not a mapping")

	_, err = Parse([]byte("routes:\n  - just a string\n#END\n"))
	assert.EqualError(t, err, `standalone: routes[0]: expected a mapping, not str "just a string"`)

	_, err = Parse([]byte("routes:\n  - id: r\n    uri: /\n    labels: {1: x}\n#END\n"))
	assert.EqualError(t, err, "standalone: routes[0]: line 4: map key 1 (int) is not a string")

	_, err = Parse([]byte("routes:\n  - id: r\n    uri: /\n    uri: /b\n#END\n"))
	assert.EqualError(t, err, `standalone: routes[0]: line 4: duplicate key "uri"`)

	_, err = Parse([]byte("routes:\n  - id: r\n    uri: /\n    priority: .inf\n#END\n"))
	assert.EqualError(t, err, "standalone: routes[0]: line 4: .inf is not a JSON number")

	_, err = Parse([]byte("routes: []\nroutes: []\n#END\n"))
	assert.EqualError(t, err, `standalone: apisix.yaml: line 2: duplicate top-level key "routes"`)
}

func TestParseAliasBomb(t *testing.T) {
	// 10^9 scalars once expanded; Parse gives up after maxNodes.
	var b strings.Builder
	b.WriteString("upstreams:\n  - id: u\n    nodes: {}\n    checks:\n      active:\n        a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "        a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("#END\n")
	_, err := Parse([]byte(b.String()))
	require.Error(t, err)
	assert.Regexp(t, `^standalone: upstreams\[0\]: line \d+: too many YAML nodes after expanding aliases$`, err.Error())
}

func TestParseUnknownTopLevelKeys(t *testing.T) {
	_, err := Parse([]byte("routes: []\nroute: []\n#END\n"))
	assert.EqualError(t, err, `standalone: apisix.yaml: unknown top-level key "route"`)
	_, err = Parse([]byte("foo: 1\nroutes: []\nbar: {}\n#END\n"))
	assert.EqualError(t, err, `standalone: apisix.yaml: unknown top-level keys "foo", "bar"`)
	_, err = Parse([]byte("stream_routes: []\n#END\n"))
	assert.EqualError(t, err, `standalone: apisix.yaml: line 1: stream_routes: not supported by sluice`)
	_, err = Parse([]byte("upstreams_conf_version: 3\n#END\n"))
	assert.NoError(t, err)
	_, err = Parse([]byte("1: []\n#END\n"))
	assert.EqualError(t, err, `standalone: apisix.yaml: line 1: top-level key "1" is not a string`)
}

func TestParseIDs(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in + "\n#END\n"))
		assert.EqualError(t, err, want)
	}
	f(`
routes:
  - {id: a, uri: /a, upstream_id: u}
  - {id: b, uri: /b, upstream_id: u}
  - {uri: /c, upstream_id: u}`, "standalone: routes[2]: missing id")
	f(`
upstreams:
  - {id: ~, nodes: {}}`, "standalone: upstreams[0]: missing id")
	f(`
routes:
  - {id: 1, uri: /a, upstream_id: u}
  - {id: b, uri: /b, upstream_id: u}
  - {id: "1", uri: /c, upstream_id: u}`, `standalone: routes[2]: duplicate id "1" (also routes[0])`)
	f(`
services:
  - {id: s, upstream_id: u}
  - {id: s}`, `standalone: services[1]: duplicate id "s" (also services[0])`)
	f(`
routes:
  - {id: "a/b", uri: /a, upstream_id: u}`, `standalone: routes[0]: invalid configuration: property "id" validation failed: object matches none of the required`)
	f(`
plugin_configs:
  - {id: 0, plugins: {}}`, `standalone: plugin_configs[0]: invalid configuration: property "id" validation failed: object matches none of the required`)

	// The same id in two lists is fine.
	_, err := Parse([]byte("upstreams:\n  - {id: x, nodes: {}}\nservices:\n  - {id: x}\nroutes:\n  - {id: x, uri: /, service_id: x}\n#END\n"))
	assert.NoError(t, err)
}

func TestParseItemErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := Parse([]byte(in + "\n#END\n"))
		assert.EqualError(t, err, want)
	}
	f(`
routes:
  - {id: a, uri: /a, upstream_id: u}
  - id: b
    uri: ""
    upstream_id: u`, `standalone: routes[1]: invalid configuration: property "uri" validation failed: string too short, expected at least 1, got 0`)
	f(`
routes:
  - id: a
    uri: /a
    upstream:
      nodes: {"127.0.0.1:80": 1}
      scheme: grpc`, `standalone: routes[0]: invalid configuration: property "upstream" validation failed: property "scheme" validation failed: scheme "grpc" is not supported by sluice`)
	f(`
routes:
  - {id: a, uri: /a, upstream_id: u, hots: [a.com]}`, `standalone: routes[0]: invalid configuration: additional properties forbidden, found hots`)
	f(`
routes:
  - {id: a, uri: /a}`, `standalone: routes[0]: invalid configuration: object matches none of the required: ["plugins"] or ["upstream"] or ["upstream_id"] or ["service_id"]`)
	f(`
routes:
  - {id: a, uri: /a, upstream_id: u, host: a.com, hosts: [b.com]}`, `standalone: routes[0]: only one of host or hosts is allowed`)
	f(`
upstreams:
  - id: u
    nodes: {"a:80": 1}
    type: chash`, `standalone: upstreams[0]: missing key`)
	f(`
upstreams:
  - id: u
    nodes:
      "a:80": "1"`, `standalone: upstreams[0]: invalid configuration: property "nodes" validation failed: failed to validate a:80 (matching ".*"): wrong type: expected integer, got string`)
	f(`
upstreams:
  - id: u
    nodes:
      a:70000: 1`, `standalone: upstreams[0]: invalid port 70000`)
	f(`
services:
  - {id: s, upstream: {nodes: {}, timeout: {connect: 1}}}`, `standalone: services[0]: invalid configuration: property "upstream" validation failed: property "timeout" validation failed: property "send" is required`)
	f(`
plugin_configs:
  - {id: pc}`, `standalone: plugin_configs[0]: invalid configuration: property "plugins" is required`)
	f(`
plugin_configs:
  - {id: pc, plugins: [], extra: 1}`, `standalone: plugin_configs[0]: invalid configuration: additional properties forbidden, found extra`)
	f(`
global_rules:
  - {id: g, plugins: [a]}`, `standalone: global_rules[0]: invalid configuration: property "plugins" validation failed: wrong type: expected object, got table`)
	f(`
global_rules:
  - {id: g, plugins: {prometheus: on}}`, `standalone: global_rules[0]: invalid configuration: property "plugins" validation failed: property "prometheus" validation failed: wrong type: expected object, got string`)
	f(`
consumers: {jack: {}}`, `standalone: consumers: line 2: expected a list, not a mapping`)
}

func TestParseItemErrorFields(t *testing.T) {
	_, err := Parse([]byte("routes:\n  - id: a\n    uri: /a\n    upstream_id: u\n  - id: b\n    uri: x\n    upstream_id: u\n#END\n"))
	var ie *ItemError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "routes", ie.List)
	assert.Equal(t, 1, ie.Index)
	assert.Equal(t, 5, ie.Line)
	var me *model.Error
	require.ErrorAs(t, err, &me, "the model's error is wrapped")
	assert.Equal(t, []string{"uri"}, me.Path)
}

func TestParseAliasCycles(t *testing.T) {
	for _, in := range []string{
		"upstreams:\n  - &b {<<: *b, id: v, nodes: {}}\n#END\n",
		"upstreams:\n  - &b {id: v, nodes: {}, checks: {active: *b}}\n#END\n",
		"routes:\n  - {id: r, uri: /, upstream_id: u, vars: &v [*v]}\n#END\n",
	} {
		_, err := Parse([]byte(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), "standalone: ", in)
		t.Log(err)
	}
}
