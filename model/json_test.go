package model

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDUnmarshalJSON(t *testing.T) {
	ok := func(in string, want ID) {
		t.Helper()
		id := ID("prev")
		require.NoError(t, json.Unmarshal([]byte(in), &id), in)
		assert.Equal(t, want, id, in)
	}
	ok(`"abc"`, "abc")
	ok(`"00000000000000000070"`, "00000000000000000070")
	ok(`12`, "12")
	ok(`123456789012345678901234567890`, "123456789012345678901234567890")
	ok(`null`, "prev")
	// an integral value in any number syntax is an integer (APISIX reads
	// a double): the id is its decimal text
	ok(`12.0`, "12")
	ok(`1e3`, "1000")
	ok(`1.5e1`, "15")

	bad := func(in string) {
		t.Helper()
		var id ID
		err := json.Unmarshal([]byte(in), &id)
		var te *json.UnmarshalTypeError
		require.ErrorAs(t, err, &te, in)
		assert.Equal(t, idType, te.Type, in)
	}
	bad(`""`)
	bad(`0`)
	bad(`-1`)
	bad(`1.5`)
	bad(`1e-1`)
	bad(`0.0`)
	bad(`-1.0`)
	bad(`1e30`)
	bad(`true`)
	bad(`{}`)
	bad(`[]`)
}

func TestJSONInteger(t *testing.T) {
	f := func(in string, want int64, wantOK bool) {
		t.Helper()
		v, ok := JSONInteger([]byte(in))
		assert.Equal(t, wantOK, ok, in)
		assert.Equal(t, want, v, in)
	}
	f(`10`, 10, true)
	f(`-3`, -3, true)
	f(`10.0`, 10, true)
	f(`1e2`, 100, true)
	f(`1E2`, 100, true)
	f(`1.5e1`, 15, true)
	f(`-0.0`, 0, true)
	f(` 7 `, 7, true)
	f(`9223372036854775807`, 9223372036854775807, true)
	f(`-9.223372036854775808e18`, -9223372036854775808, true)
	f(`10.5`, 0, false)
	f(`1e-1`, 0, false)
	f(`9223372036854775808`, 0, false) // out of int64
	f(`9.3e18`, 0, false)
	f(`1e400`, 0, false)
	f(`"10"`, 0, false)
	f(`true`, 0, false)
	f(``, 0, false)
}

func TestNodesUnmarshalMapForm(t *testing.T) {
	var n Nodes
	require.NoError(t, json.Unmarshal([]byte(`{
		"127.0.0.1:8000": 3,
		"[::1]:80": 1,
		"example.com": 0,
		"[fe80::1]": 2,
		"::2": 5,
		"a.example:443": 7
	}`), &n))
	assert.Equal(t, Nodes{ // sorted by key
		{Host: "127.0.0.1", Port: 8000, Weight: 3},
		{Host: "::2", Port: 0, Weight: 5},
		{Host: "::1", Port: 80, Weight: 1},
		{Host: "fe80::1", Port: 0, Weight: 2},
		{Host: "a.example", Port: 443, Weight: 7},
		{Host: "example.com", Port: 0, Weight: 0},
	}, n)

	n = nil
	require.NoError(t, json.Unmarshal([]byte(`{}`), &n))
	assert.NotNil(t, n, "present but empty")
	assert.Empty(t, n)

	n = nil
	require.NoError(t, json.Unmarshal([]byte(`{"a:80": 1.0, "b:80": 2e0}`), &n), "integral weights in any syntax")
	assert.Equal(t, Nodes{{Host: "a", Port: 80, Weight: 1}, {Host: "b", Port: 80, Weight: 2}}, n)
}

func TestNodesUnmarshalArrayForm(t *testing.T) {
	var n Nodes
	require.NoError(t, json.Unmarshal([]byte(`[
		{"host": "b", "port": 81, "weight": 1, "priority": -1, "metadata": {"zone": "x"}},
		{"host": "a", "weight": 2},
		{"host": "[::1]", "port": 8080, "weight": 0, "unknown": true}
	]`), &n))
	assert.Equal(t, Nodes{ // array order kept
		{Host: "b", Port: 81, Weight: 1, Priority: -1},
		{Host: "a", Weight: 2},
		{Host: "::1", Port: 8080},
	}, n)

	n = nil
	require.NoError(t, json.Unmarshal([]byte(`[]`), &n))
	assert.NotNil(t, n)
	assert.Empty(t, n)

	n = Nodes{{Host: "x"}}
	require.NoError(t, json.Unmarshal([]byte(`null`), &n))
	assert.Nil(t, n)

	n = nil
	require.NoError(t, json.Unmarshal([]byte(`[{"host": "a", "port": 8.0e1, "weight": 1.0, "priority": -1.0}]`), &n))
	assert.Equal(t, Nodes{{Host: "a", Port: 80, Weight: 1, Priority: -1}}, n)
}

func TestNodesUnmarshalErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		var n Nodes
		assert.EqualError(t, json.Unmarshal([]byte(in), &n), want, in)
	}
	const p = `invalid configuration: property "nodes" validation failed: `
	f(`"a:80"`, p+`object matches none of the required`)
	f(`1`, p+`object matches none of the required`)
	f(`{"a:80": "1"}`, p+`failed to validate a:80 (matching ".*"): wrong type: expected integer, got string`)
	f(`{"a:80": 1.5}`, p+`failed to validate a:80 (matching ".*"): wrong type: expected integer, got number`)
	f(`{"a:80": 1e-3}`, p+`failed to validate a:80 (matching ".*"): wrong type: expected integer, got number`)
	f(`{"a:80": 1e30}`, p+`failed to validate a:80 (matching ".*"): wrong type: expected integer, got number`)
	f(`[{"host": "a", "weight": 0.5}]`, p+`failed to validate item 1: property "weight" validation failed: wrong type: expected integer, got number`)
	f(`{"a:80": 99999999999999999999}`, p+`failed to validate a:80 (matching ".*"): wrong type: expected integer, got number`)
	f(`{"a:0": 1}`, `invalid port 0`)
	f(`{"a:70000": 1}`, `invalid port 70000`)
	f(`{"a:http": 1}`, p+`invalid node address "a:http"`)
	f(`{"a:": 1}`, p+`invalid node address "a:"`)
	f(`{":80": 1}`, p+`invalid node address ":80"`)
	f(`{"a:+80": 1}`, p+`invalid node address "a:+80"`)
	f(`{"[::1:80": 1}`, p+`invalid node address "[::1:80"`)
	f(`{"[::1]80": 1}`, p+`invalid node address "[::1]80"`)
	f(`{"a:b:c": 1}`, p+`invalid node address "a:b:c"`)
	f(`[1]`, p+`failed to validate item 1: wrong type: expected object, got number`)
	f(`[{"host": "a", "weight": 1}, {"weight": 1}]`, p+`failed to validate item 2: property "host" is required`)
	f(`[{"host": "a"}]`, p+`failed to validate item 1: property "weight" is required`)
	f(`[{"HOST": "a", "weight": 1}]`, p+`failed to validate item 1: property "host" is required`)
	f(`[{"host": 1, "weight": 1}]`, p+`failed to validate item 1: property "host" validation failed: wrong type: expected string, got number`)
	f(`[{"host": "a", "weight": "1"}]`, p+`failed to validate item 1: property "weight" validation failed: wrong type: expected integer, got string`)
	f(`[{"host": "a", "weight": 1, "port": 0}]`, p+`failed to validate item 1: property "port" validation failed: expected 0 to be at least 1`)
	f(`[{"host": "a", "weight": 1, "priority": 0.5}]`, p+`failed to validate item 1: property "priority" validation failed: wrong type: expected integer, got number`)
	f(`[{"host": "a", "weight": 1, "metadata": []}]`, p+`failed to validate item 1: property "metadata" validation failed: wrong type: expected object, got table`)
}

func TestNodesMarshalJSON(t *testing.T) {
	b, err := json.Marshal(Nodes{{Host: "a", Port: 80, Weight: 1}, {Host: "b", Weight: 0, Priority: 2}})
	require.NoError(t, err)
	assert.JSONEq(t, `[{"host":"a","port":80,"weight":1},{"host":"b","weight":0,"priority":2}]`, string(b))

	b, err = json.Marshal(Nodes{})
	require.NoError(t, err)
	assert.Equal(t, `[]`, string(b))

	b, err = json.Marshal(Nodes(nil))
	require.NoError(t, err)
	assert.Equal(t, `null`, string(b))
}

func TestUpstreamEchoesNodesForm(t *testing.T) {
	u, err := DecodeUpstream([]byte(`{"type":"roundrobin","nodes":{"b:80":1,"a:80":2}}`))
	require.NoError(t, err)
	assert.Equal(t, Nodes{{Host: "a", Port: 80, Weight: 2}, {Host: "b", Port: 80, Weight: 1}}, u.Nodes)
	b, err := json.Marshal(u)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"roundrobin","nodes":{"b:80":1,"a:80":2}}`, string(b), "map form echoed")

	// The array form with metadata (which Node does not keep) is echoed too.
	const arr = `{"nodes":[{"host":"a","weight":1,"metadata":{"zone":"z1"}}]}`
	u, err = DecodeUpstream([]byte(arr))
	require.NoError(t, err)
	b, err = json.Marshal(u)
	require.NoError(t, err)
	assert.JSONEq(t, arr, string(b))

	// Value receiver: a non-addressable Upstream marshals the same way.
	b, err = json.Marshal(*u)
	require.NoError(t, err)
	assert.JSONEq(t, arr, string(b))

	// Nodes changed after decoding: the raw form is stale, Nodes wins.
	u.Nodes[0].Weight = 5
	b, err = json.Marshal(u)
	require.NoError(t, err)
	assert.JSONEq(t, `{"nodes":[{"host":"a","weight":5}]}`, string(b))

	// Built in Go: the array form.
	b, err = json.Marshal(&Upstream{Nodes: Nodes{{Host: "a", Port: 1, Weight: 1}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"nodes":[{"host":"a","port":1,"weight":1}]}`, string(b))
}

func TestUpstreamPlainUnmarshalIsStrict(t *testing.T) {
	var r Route
	err := json.Unmarshal([]byte(`{"uri":"/","upstream":{"nodes":{},"nope":1}}`), &r)
	assert.EqualError(t, err, `json: unknown field "nope"`)

	require.NoError(t, json.Unmarshal([]byte(`{"uri":"/","upstream":{"nodes":{"a:1":1}}}`), &r))
	b, err := json.Marshal(&r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"uri":"/","upstream":{"nodes":{"a:1":1}}}`, string(b))
}

func TestKeepalivePoolDefaults(t *testing.T) {
	u, err := DecodeUpstream([]byte(`{"nodes":{},"keepalive_pool":{"size":10}}`))
	require.NoError(t, err)
	assert.Equal(t, &KeepalivePool{Size: 10, IdleTimeout: 60, Requests: 1000}, u.KeepalivePool)

	u, err = DecodeUpstream([]byte(`{"nodes":{},"keepalive_pool":{}}`))
	require.NoError(t, err)
	assert.Equal(t, &KeepalivePool{Size: 320, IdleTimeout: 60, Requests: 1000}, u.KeepalivePool)

	u, err = DecodeUpstream([]byte(`{"nodes":{},"keepalive_pool":{"size":0,"idle_timeout":0,"requests":0}}`))
	require.NoError(t, err)
	assert.Equal(t, &KeepalivePool{}, u.KeepalivePool, "explicit zeros are kept (and rejected by Validate)")
	assert.EqualError(t, u.Validate(), `invalid configuration: property "keepalive_pool" validation failed: property "size" validation failed: expected 0 to be at least 1`)
}
