package plugin

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-gw/sluice/engine/http1"
)

// One variable name reads the same value for every user of Var (route
// vars, chash keys, limit-count keys, proxy-rewrite templates).
func TestVarValues(t *testing.T) {
	r := &http1.Request{
		Method: []byte("POST"), Target: []byte("/v1/chat?Model=a&x="), Path: []byte("/v1/chat"), Query: []byte("Model=a&x="),
		Host: []byte("API.Example.com:9080"), Major: 1, Minor: 1,
		Headers: []http1.Header{
			{Name: []byte("X-User"), Value: []byte("u7")},
			{Name: []byte("Content-Type"), Value: []byte("application/json")},
			{Name: []byte("Cookie"), Value: []byte("sid=s1; b=2")},
		},
	}
	remote := netip.MustParseAddr("::ffff:10.0.0.7")
	f := func(name, want string, present bool) {
		t.Helper()
		v := ParseVar(name)
		got, ok := v.Append([]byte("<"), r, remote)
		assert.Equal(t, present, ok, name)
		assert.Equal(t, "<"+want, string(got), name)
	}
	f("uri", "/v1/chat", true)
	f("document_uri", "/v1/chat", true)
	f("request_uri", "/v1/chat?Model=a&x=", true)
	f("args", "Model=a&x=", true)
	f("query_string", "Model=a&x=", true)
	f("is_args", "?", true)
	f("host", "api.example.com", true)
	f("remote_addr", "10.0.0.7", true)
	f("request_method", "POST", true)
	f("scheme", "http", true)
	f("server_protocol", "HTTP/1.1", true)
	f("http_x_user", "u7", true)
	f("http_X-User", "u7", true)
	f("content_type", "application/json", true)
	f("arg_model", "a", true) // nginx: case-insensitive argument name
	f("arg_x", "", true)      // present, empty
	f("arg_nope", "", false)
	f("cookie_sid", "s1", true)
	f("cookie_SID", "", false) // cookie names are exact
	f("http_x_none", "", false)
	f("no_such_var", "", false)
	f("post_arg.model", "", false) // the router's: it holds the body
	f("consumer_name", "", false)  // the caller's

	assert.Equal(t, Var{Kind: VarPostArg, Name: []byte("metadata.tier")}, ParseVar("post_arg.metadata.tier"))
	assert.Equal(t, VarNone, ParseVar("post_arg.").Kind)
	assert.Equal(t, VarNone, ParseVar("http_").Kind)

	r.Query, r.Minor = nil, 0
	f("is_args", "", true)
	f("server_protocol", "HTTP/1.0", true)
	assert.Equal(t, "[::1]", string(AppendHost(nil, []byte("[::1]:80"))))
}
