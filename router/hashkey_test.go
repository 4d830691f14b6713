package router

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/balancer"
)

func hashKeyFor(t *testing.T, hashOn, key string) HashKey {
	t.Helper()
	return compileHashKey(&balancer.Upstream{Kind: balancer.CHash, HashOn: map[string]balancer.HashOn{
		"vars": balancer.HashVars, "vars_combinations": balancer.HashVarsCombinations, "header": balancer.HashHeader,
	}[hashOn], HashKey: key})
}

// A chash key reads variables as a route's vars do: $host lowercased and
// without its port, request_uri with the query, combinations with literals.
func TestHashKeyValues(t *testing.T) {
	r := newRequest(t, "GET", "/v1/chat?model=a", "Host: API.Example.com:9080", "X-User: u7", "Cookie: sid=s1")
	r.Body = []byte(`{"model":"gpt-4o"}`)
	for _, c := range []struct{ on, key, want string }{
		{"vars", "host", "api.example.com"},
		{"vars", "$host", "api.example.com"},
		{"vars", "uri", "/v1/chat"},
		{"vars", "request_uri", "/v1/chat?model=a"},
		{"vars", "args", "model=a"},
		{"vars", "arg_model", "a"},
		{"vars", "http_x_user", "u7"},
		{"vars", "cookie_sid", "s1"},
		{"vars", "remote_addr", "127.0.0.1"},
		{"vars", "no_such_var", ""},
		{"vars_combinations", "$request_uri-$http_x_user", "/v1/chat?model=a-u7"},
		{"vars", "arg_MODEL", "a"},                                // nginx $arg_NAME: case-insensitive name
		{"vars_combinations", `${host}\$x`, `api.example.com\$x`}, // APISIX keeps the backslash
		{"vars_combinations", "${http_x_none ?? anon}/$post_arg.model", "anon/gpt-4o"},
		{"vars_combinations", "${unterminated", "${unterminated"},
	} {
		k := hashKeyFor(t, c.on, c.key)
		require.True(t, k.Valid(), c.key)
		assert.Equal(t, c.want, string(k.Append(nil, r)), "%s %s", c.on, c.key)
	}
	assert.False(t, hashKeyFor(t, "header", "x-user").Valid(), "header keys are read by the engine")

	k := hashKeyFor(t, "vars_combinations", "$host:$request_uri")
	buf := make([]byte, 0, 256)
	assert.Zero(t, testing.AllocsPerRun(100, func() { buf = k.Append(buf[:0], r) }))
}
