package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ic = "invalid configuration: "

// checkRoute decodes in (which must decode) and compares Validate's error
// with want ("" for valid).
func checkRoute(t *testing.T, in, want string) {
	t.Helper()
	r, err := DecodeRoute([]byte(in))
	require.NoError(t, err, in)
	if want == "" {
		assert.NoError(t, r.Validate(), in)
		return
	}
	assert.EqualError(t, r.Validate(), want, in)
}

func TestRouteValidate(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		checkRoute(t, in, want)
	}
	// Valid routes.
	f(`{"uri":"/a","upstream_id":1}`, "")
	f(`{"uri":"/v1/*","service_id":"s1"}`, "")
	f(`{"uris":["/a","/b/*"],"plugins":{"traffic-split":{}}}`, "")
	f(`{"uri":"/","upstream":{"nodes":{}}}`, "")
	f(`{"uri":"/","host":"*.example.com","remote_addr":"::1","upstream_id":"u"}`, "")
	f(`{"uri":"/","hosts":["a.com","b.com"],"remote_addrs":["127.0.0.1","10.0.0.0/8","fe80::/10"],"upstream_id":"u"}`, "")
	f(`{"uri":"/","methods":["GET","POST","PUT","DELETE","PATCH","HEAD","OPTIONS","CONNECT","TRACE","PURGE"],"upstream_id":"u"}`, "")
	f(`{"uri":"/","methods":[],"upstream_id":"u"}`, "")
	f(`{"uri":"/","status":1,"priority":-5,"upstream_id":"u"}`, "")
	f(`{"uri":"/","vars":null,"upstream_id":"u"}`, "")
	f(`{"uri":"/`+strings.Repeat("a", 4095)+`","upstream_id":"u"}`, "")
	f(`{"uri":"/","name":"`+strings.Repeat("é", 256)+`","upstream_id":"u"}`, "")

	// APISIX admin/routes.lua check_conf, before the schema.
	f(`{"uri":"/","host":"a.com","hosts":["b.com"],"upstream_id":"u"}`, "only one of host or hosts is allowed")
	f(`{"uri":"/","remote_addr":"1.1.1.1","remote_addrs":["2.2.2.2"],"upstream_id":"u"}`, "only one of remote_addr or remote_addrs is allowed")

	// uri / uris.
	f(`{"upstream_id":"u"}`, ic+"allOf 1 failed: value should match only one schema, but matches none")
	f(`{"uri":"/a","uris":["/b"],"upstream_id":"u"}`, ic+"allOf 1 failed: value should match only one schema, but matches both schemas 1 and 2")
	f(`{"uri":"a","upstream_id":"u"}`, ic+`property "uri" validation failed: must start with "/" (a sluice rule: APISIX only limits the length)`)
	f(`{"uri":"*","upstream_id":"u"}`, ic+`property "uri" validation failed: must start with "/" (a sluice rule: APISIX only limits the length)`)
	f(`{"uri":"/`+strings.Repeat("a", 4096)+`","upstream_id":"u"}`, ic+`property "uri" validation failed: string too long, expected at most 4096, got 4097`)
	f(`{"uris":[],"upstream_id":"u"}`, ic+`property "uris" validation failed: expect array to have at least 1 items`)
	f(`{"uris":["/a",""],"upstream_id":"u"}`, ic+`property "uris" validation failed: failed to validate item 2: string too short, expected at least 1, got 0`)
	f(`{"uris":["/a","b"],"upstream_id":"u"}`, ic+`property "uris" validation failed: failed to validate item 2: must start with "/" (a sluice rule: APISIX only limits the length)`)
	f(`{"uris":["/a","/b","/a"],"upstream_id":"u"}`, ic+`property "uris" validation failed: expected unique items but items 1 and 3 are equal`)

	// Something to do.
	f(`{"uri":"/"}`, ic+`object matches none of the required: ["plugins"] or ["upstream"] or ["upstream_id"] or ["service_id"]`)
	f(`{"uri":"/","plugins":{}}`, ic+`object matches none of the required: ["plugins"] or ["upstream"] or ["upstream_id"] or ["service_id"]`)
	f(`{"uri":"/","plugin_config_id":"pc"}`, ic+`object matches none of the required: ["plugins"] or ["upstream"] or ["upstream_id"] or ["service_id"]`)

	// Fields.
	f(`{"uri":"/","methods":["GET","get"],"upstream_id":"u"}`, ic+`property "methods" validation failed: failed to validate item 2: matches none of the enum values`)
	f(`{"uri":"/","methods":["GET","GET"],"upstream_id":"u"}`, ic+`property "methods" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"uri":"/","host":"a b","upstream_id":"u"}`, ic+`property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"uri":"/","hosts":[],"upstream_id":"u"}`, ic+`property "hosts" validation failed: expect array to have at least 1 items`)
	f(`{"uri":"/","hosts":["a.com","a/b"],"upstream_id":"u"}`, ic+`property "hosts" validation failed: failed to validate item 2: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a/b"`)
	f(`{"uri":"/","remote_addr":"localhost","upstream_id":"u"}`, ic+`property "remote_addr" validation failed: object matches none of the required`)
	f(`{"uri":"/","remote_addrs":["10.0.0.0/33"],"upstream_id":"u"}`, ic+`property "remote_addrs" validation failed: failed to validate item 1: object matches none of the required`)
	f(`{"uri":"/","timeout":{"connect":0,"send":1,"read":1},"upstream_id":"u"}`, ic+`property "timeout" validation failed: property "connect" validation failed: expected 0 to be greater than 0`)
	f(`{"uri":"/","timeout":{"connect":1,"send":1,"read":-0.5},"upstream_id":"u"}`, ic+`property "timeout" validation failed: property "read" validation failed: expected -0.5 to be greater than 0`)
	f(`{"uri":"/","vars":{"a":1},"upstream_id":"u"}`, ic+`property "vars" validation failed: wrong type: expected array, got table`)
	f(`{"uri":"/","plugins":{"a":{},"b":true}}`, ic+`property "plugins" validation failed: property "b" validation failed: wrong type: expected object, got boolean`)
	f(`{"uri":"/","status":2,"upstream_id":"u"}`, ic+`property "status" validation failed: matches none of the enum values`)
	f(`{"uri":"/","id":"a/b","upstream_id":"u"}`, ic+`property "id" validation failed: object matches none of the required`)
	f(`{"uri":"/","upstream_id":"`+strings.Repeat("a", 65)+`"}`, ic+`property "upstream_id" validation failed: object matches none of the required`)
	f(`{"uri":"/","service_id":"a b"}`, ic+`property "service_id" validation failed: object matches none of the required`)
	f(`{"uri":"/","plugin_config_id":"a:b","upstream_id":"u"}`, ic+`property "plugin_config_id" validation failed: object matches none of the required`)
	f(`{"uri":"/","name":"`+strings.Repeat("a", 257)+`","upstream_id":"u"}`, ic+`property "name" validation failed: string too long, expected at most 256, got 257`)
	f(`{"uri":"/","desc":"`+strings.Repeat("a", 257)+`","upstream_id":"u"}`, ic+`property "desc" validation failed: string too long, expected at most 256, got 257`)
	f(`{"uri":"/","labels":{"a":"x","b":""},"upstream_id":"u"}`, ic+`property "labels" validation failed: failed to validate b (matching ".*"): string too short, expected at least 1, got 0`)
	f(`{"uri":"/","labels":{"a":"x y"},"upstream_id":"u"}`, ic+`property "labels" validation failed: failed to validate a (matching ".*"): failed to match pattern "^\\S+$" with "x y"`)

	// The inline upstream: schema errors under "upstream", APISIX's bare
	// check_upstream_conf texts as they are.
	f(`{"uri":"/","upstream":{"nodes":{},"scheme":"grpc"}}`, ic+`property "upstream" validation failed: property "scheme" validation failed: scheme "grpc" is not supported by sluice`)
	f(`{"uri":"/","upstream":{"nodes":{},"pass_host":"rewrite"}}`, "`upstream_host` can't be empty when `pass_host` is `rewrite`")
	f(`{"uri":"/","upstream":{"nodes":[{"host":"a","weight":-1}]}}`, ic+`property "upstream" validation failed: property "nodes" validation failed: failed to validate item 1: property "weight" validation failed: expected -1 to be at least 0`)
}

func TestRouteValidateBuiltInGo(t *testing.T) {
	one := 1
	r := &Route{URI: "/x", Upstream: &Upstream{Nodes: Nodes{{Host: "a", Port: 80, Weight: 1}}}, Status: &one}
	assert.NoError(t, r.Validate())
	r.Upstream.Nodes = nil
	assert.EqualError(t, r.Validate(), ic+`property "upstream" validation failed: property "nodes" is required`)
	r.Upstream.Nodes = Nodes{{Host: "a", Port: 70000}}
	assert.EqualError(t, r.Validate(), ic+`property "upstream" validation failed: property "nodes" validation failed: failed to validate item 1: property "port" validation failed: expected 70000 to be at most 65535`)
	r.Upstream.Nodes = Nodes{{Host: "", Port: 80}}
	assert.EqualError(t, r.Validate(), ic+`property "upstream" validation failed: property "nodes" validation failed: failed to validate item 1: property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with ""`)
}

func TestUpstreamValidate(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		u, err := DecodeUpstream([]byte(in))
		require.NoError(t, err, in)
		if want == "" {
			assert.NoError(t, u.Validate(), in)
			return
		}
		assert.EqualError(t, u.Validate(), want, in)
	}
	// Valid upstreams.
	f(`{"nodes":{"127.0.0.1:8000":1}}`, "")
	f(`{"nodes":{}}`, "") // APISIX accepts it; such an upstream answers 502
	f(`{"nodes":[]}`, "")
	f(`{"nodes":{"[::1]:80":0,"example.com":3}}`, "")
	for _, typ := range []string{"roundrobin", "chash", "least_conn", "ewma"} {
		f(`{"nodes":{},"type":"`+typ+`","key":"remote_addr"}`, "")
	}
	f(`{"nodes":{},"type":"chash","hash_on":"consumer"}`, "")
	f(`{"nodes":{},"type":"chash","hash_on":"cookie","key":"sid"}`, "")
	f(`{"nodes":{},"type":"chash","hash_on":"vars_combinations","key":"$host$uri"}`, "")
	f(`{"nodes":{},"type":"chash","key":"arg_user"}`, "")
	f(`{"nodes":{},"scheme":"https","pass_host":"node"}`, "")
	f(`{"nodes":{},"pass_host":"rewrite","upstream_host":"api.example.com"}`, "")
	f(`{"nodes":{},"retries":0,"retry_timeout":0,"timeout":{"connect":0.5,"send":1,"read":1}}`, "")
	f(`{"nodes":{},"keepalive_pool":{"size":1,"idle_timeout":0,"requests":1}}`, "")
	f(`{"nodes":{},"checks":{"active":{},"passive":{}}}`, "")
	f(`{"nodes":{},"tls":{"client_cert":"`+strings.Repeat("c", 128)+`","client_key":"`+strings.Repeat("k", 64)+`"}}`, "")
	f(`{"nodes":{},"labels":{"env":"prod"},"name":"n","desc":"d","id":"u-1.x_y"}`, "")

	// Required nodes.
	f(`{"type":"roundrobin"}`, ic+`property "nodes" is required`)
	f(`{"nodes":null}`, ic+`property "nodes" is required`)

	// Nodes: the messages follow the form sent.
	f(`{"nodes":{"a:80":-1}}`, ic+`property "nodes" validation failed: failed to validate a:80 (matching ".*"): expected -1 to be at least 0`)
	f(`{"nodes":{"a b:80":1}}`, ic+`property "nodes" validation failed: failed to validate a b:80 (matching ".*"): failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"nodes":[{"host":"a","weight":1},{"host":"b","port":65536,"weight":1}]}`, ic+`property "nodes" validation failed: failed to validate item 2: property "port" validation failed: expected 65536 to be at most 65535`)
	f(`{"nodes":[{"host":"","weight":1}]}`, ic+`property "nodes" validation failed: failed to validate item 1: property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with ""`)

	// Fields.
	f(`{"nodes":{},"type":"random"}`, ic+`property "type" validation failed: type "random" is not supported by sluice`)
	f(`{"nodes":{},"scheme":"grpcs"}`, ic+`property "scheme" validation failed: scheme "grpcs" is not supported by sluice`)
	f(`{"nodes":{},"scheme":"kafka"}`, ic+`property "scheme" validation failed: scheme "kafka" is not supported by sluice`)
	f(`{"nodes":{},"scheme":"ftp"}`, ic+`property "scheme" validation failed: matches none of the enum values`)
	f(`{"nodes":{},"pass_host":"keep"}`, ic+`property "pass_host" validation failed: matches none of the enum values`)
	f(`{"nodes":{},"upstream_host":"a b"}`, ic+`property "upstream_host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"nodes":{},"hash_on":"ip"}`, ic+`property "hash_on" validation failed: matches none of the enum values`)
	f(`{"nodes":{},"retries":-1}`, ic+`property "retries" validation failed: expected -1 to be at least 0`)
	f(`{"nodes":{},"retry_timeout":-0.1}`, ic+`property "retry_timeout" validation failed: expected -0.1 to be at least 0`)
	f(`{"nodes":{},"timeout":{"connect":1,"send":0,"read":1}}`, ic+`property "timeout" validation failed: property "send" validation failed: expected 0 to be greater than 0`)
	f(`{"nodes":{},"keepalive_pool":{"size":0}}`, ic+`property "keepalive_pool" validation failed: property "size" validation failed: expected 0 to be at least 1`)
	f(`{"nodes":{},"keepalive_pool":{"idle_timeout":-1}}`, ic+`property "keepalive_pool" validation failed: property "idle_timeout" validation failed: expected -1 to be at least 0`)
	f(`{"nodes":{},"keepalive_pool":{"requests":0}}`, ic+`property "keepalive_pool" validation failed: property "requests" validation failed: expected 0 to be at least 1`)
	f(`{"nodes":{},"tls":{"client_cert":"`+strings.Repeat("c", 128)+`"}}`, ic+`property "tls" validation failed: failed to validate dependent schema for "client_cert": property "client_key" is required`)
	f(`{"nodes":{},"tls":{"client_key":"`+strings.Repeat("k", 64)+`"}}`, ic+`property "tls" validation failed: failed to validate dependent schema for "client_key": property "client_cert" is required`)
	f(`{"nodes":{},"tls":{"client_cert":"short","client_key":"`+strings.Repeat("k", 64)+`"}}`, ic+`property "tls" validation failed: property "client_cert" validation failed: string too short, expected at least 128, got 5`)
	f(`{"nodes":{},"checks":{"passive":{}}}`, ic+`property "checks" validation failed: object matches none of the required: ["active"] or ["active","passive"]`)
	f(`{"nodes":{},"checks":{"active":{},"other":{}}}`, ic+`property "checks" validation failed: additional properties forbidden, found other`)
	f(`{"nodes":{},"checks":{"active":1}}`, ic+`property "checks" validation failed: property "active" validation failed: wrong type: expected object, got number`)
	f(`{"nodes":{},"checks":[]}`, ic+`property "checks" validation failed: wrong type: expected object, got table`)

	// apisix/upstream.lua check_upstream_conf, bare texts.
	f(`{"nodes":{},"pass_host":"rewrite"}`, "`upstream_host` can't be empty when `pass_host` is `rewrite`")
	f(`{"nodes":{},"type":"chash"}`, "missing key")
	f(`{"nodes":{},"type":"chash","hash_on":"header"}`, "missing key")
	f(`{"nodes":{},"type":"chash","key":"http_x_user"}`, ic+`property "key" validation failed: failed to match pattern "^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$" with "http_x_user"`)
	f(`{"nodes":{},"type":"chash","hash_on":"header","key":"x user"}`, ic+`property "key" validation failed: failed to match pattern "^[a-zA-Z0-9-_]+$" with "x user"`)
}

func TestServiceValidate(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		s, err := DecodeService([]byte(in))
		require.NoError(t, err, in)
		if want == "" {
			assert.NoError(t, s.Validate(), in)
			return
		}
		assert.EqualError(t, s.Validate(), want, in)
	}
	f(`{}`, "")
	f(`{"upstream":{"nodes":{"a:1":1}},"plugins":{"key-auth":{}},"hosts":["a.com"]}`, "")
	f(`{"upstream_id":"a b"}`, ic+`property "upstream_id" validation failed: object matches none of the required`)
	f(`{"hosts":[]}`, ic+`property "hosts" validation failed: expect array to have at least 1 items`)
	f(`{"plugins":{"key-auth":[]}}`, ic+`property "plugins" validation failed: property "key-auth" validation failed: wrong type: expected object, got table`)
	f(`{"upstream":{"nodes":{},"type":"random"}}`, ic+`property "upstream" validation failed: property "type" validation failed: type "random" is not supported by sluice`)
	f(`{"upstream":{"nodes":{},"type":"chash"}}`, "missing key")
	f(`{"id":"-"}`, "")
	f(`{"id":"a/b"}`, ic+`property "id" validation failed: object matches none of the required`)
}

func TestValidID(t *testing.T) {
	for _, id := range []string{
		"1", "a", "A-b_c.d", "00000000000000000070", strings.Repeat("x", 64), "-", ".", "_",
		"", strings.Repeat("x", 65), "a/b", "a b", "a:b", "a@b", "é", "a\n", "[", "^", "\\",
	} {
		assert.Equal(t, IDPattern.MatchString(id), ValidID(id), "%q", id)
	}
	for c := range 256 {
		id := string([]byte{byte(c)})
		assert.Equal(t, IDPattern.MatchString(id), ValidID(id), "%q", id)
	}
	assert.True(t, ValidID("chat-completions"))
	assert.False(t, ValidID("a/b"))
}

func TestErrorWithin(t *testing.T) {
	e := &Error{Path: []string{"b"}, Reason: "r"}
	got := within(e, "a")
	assert.Equal(t, &Error{Path: []string{"a", "b"}, Reason: "r"}, got)
	assert.Equal(t, []string{"b"}, e.Path, "the original is unchanged")
	plain := errors.New("missing key")
	assert.Same(t, plain, within(plain, "a"))
	assert.EqualError(t, fmt.Errorf("x: %w", got), `x: invalid configuration: property "a" validation failed: property "b" validation failed: r`)
}

func TestNewSnapshot(t *testing.T) {
	s := NewSnapshot()
	assert.Empty(t, s.Routes)
	require.NotNil(t, s.Upstreams)
	require.NotNil(t, s.Services)
	require.NotNil(t, s.PluginConfigs)
	require.NotNil(t, s.GlobalRules)
	s.Upstreams["u"] = &Upstream{} // writable
}
