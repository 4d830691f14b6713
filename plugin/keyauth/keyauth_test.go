package keyauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

var consumers = []plugin.Consumer{
	{Username: "jack", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-one"}`)}},
	{Username: "rose", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-two"}`), "limit-count": json.RawMessage(`{}`)}},
	{Username: "yan", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-shared"}`)}},
	{Username: "zed", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-shared"}`)}}, // shared: neither
	{Username: "nokey", Plugins: map[string]json.RawMessage{"basic-auth": json.RawMessage(`{"username":"x"}`)}},
	{Username: "valid", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-blocked"}`)}},
	{Username: "broken", Blocked: true, Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-blocked"}`)}},
	{Username: "broken2", Blocked: true, Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"auth-own"}`)}},
	{Username: "b64", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"a+b/c= d"}`)}},
}

// TestQueryKeyDecoded: a key in the query is read decoded, as APISIX reads
// it (%XX decoded, '+' a space); a header carries it as it is.
func TestQueryKeyDecoded(t *testing.T) {
	k := compile(t, `{}`)
	for _, head := range []string{
		"GET /?apikey=a%2Bb%2Fc%3D+d HTTP/1.1\r\nHost: a",
		"GET /?apikey=a%2bb/c=%20d HTTP/1.1\r\nHost: a",
		"GET / HTTP/1.1\r\nHost: a\r\napikey: a+b/c= d",
	} {
		c := newCtx(t, head)
		assert.Zero(t, k.Rewrite(c).Status, head)
		assert.Equal(t, "b64", c.Consumer, head)
	}
	c := newCtx(t, "GET /?apikey=a+b/c=+d HTTP/1.1\r\nHost: a") // '+' is a space: not the key
	assert.Equal(t, 401, k.Rewrite(c).Status)
}

func compile(t testing.TB, js string) *conf {
	t.Helper()
	p, ok := plugin.Lookup("key-auth")
	require.True(t, ok)
	inst, err := p.Compile(json.RawMessage(js), &plugin.Env{Consumers: consumers, Loops: 1})
	require.NoError(t, err)
	return inst.(*conf)
}

// newCtx parses head (without the final CRLF pair) into a fresh Ctx.
func newCtx(t testing.TB, head string) *plugin.Ctx {
	t.Helper()
	req := &http1.Request{}
	buf := []byte(head + "\r\n\r\n")
	_, err := http1.ParseRequest(req, buf, &http1.Limits{})
	require.NoError(t, err)
	c := &plugin.Ctx{Req: req}
	c.Reset()
	c.Req = req
	return c
}

func TestPlugin(t *testing.T) {
	p, ok := plugin.Lookup("key-auth")
	require.True(t, ok)
	assert.Equal(t, "key-auth", p.Name())
	assert.Equal(t, 2500, p.Priority())
}

func TestRewrite(t *testing.T) {
	k := compile(t, `{}`)
	f := func(head string, status int, user string) {
		t.Helper()
		c := newCtx(t, head)
		res := k.Rewrite(c)
		assert.Equal(t, status, res.Status, head)
		assert.Equal(t, user, c.Consumer, head)
		if status == 0 {
			assert.Equal(t, identityOps(user), c.HeaderOps, head)
		} else {
			assert.Empty(t, c.HeaderOps, head)
		}
		assert.Nil(t, c.Query, head)
	}
	f("GET / HTTP/1.1\r\nHost: a\r\napikey: auth-one", 0, "jack")
	f("GET / HTTP/1.1\r\nHost: a\r\nAPIKEY: auth-two", 0, "rose")
	f("GET /?apikey=auth-two HTTP/1.1\r\nHost: a", 0, "rose")
	f("GET /?a=1&apikey=auth-one&b=2 HTTP/1.1\r\nHost: a", 0, "jack")
	// The header wins over the query, even when wrong.
	f("GET /?apikey=auth-one HTTP/1.1\r\nHost: a\r\napikey: nope", 401, "")
	f("GET / HTTP/1.1\r\nHost: a\r\napikey: nope", 401, "")
	f("GET / HTTP/1.1\r\nHost: a\r\napikey:", 401, "") // present but empty: invalid, not missing
	f("GET /?apikey HTTP/1.1\r\nHost: a", 401, "")
	f("GET / HTTP/1.1\r\nHost: a", 401, "")
	f("GET /?key=auth-one HTTP/1.1\r\nHost: a", 401, "")
	// a key two consumers share (another writer of a shared etcd stored
	// it: the Admin API refuses it) identifies neither
	f("GET / HTTP/1.1\r\nHost: a\r\napikey: auth-shared", 401, "")
	// a consumer that does not validate (Blocked) authenticates nobody,
	// and a key it shares with a valid consumer identifies neither
	f("GET / HTTP/1.1\r\nHost: a\r\napikey: auth-own", 401, "")
	f("GET / HTTP/1.1\r\nHost: a\r\napikey: auth-blocked", 401, "")
}

func TestResults(t *testing.T) {
	k := compile(t, `{}`)
	res := k.Rewrite(newCtx(t, "GET / HTTP/1.1\r\nHost: a"))
	assert.Equal(t, 401, res.Status)
	assert.Equal(t, `{"message":"Missing API key in request"}`+"\n", string(res.Body))
	assert.Equal(t, "Content-Type: application/json\r\nWWW-Authenticate: apikey realm=\"key\"\r\n", string(res.Headers))

	res = k.Rewrite(newCtx(t, "GET / HTTP/1.1\r\nHost: a\r\napikey: x"))
	assert.Equal(t, 401, res.Status)
	assert.Equal(t, `{"message":"Invalid API key in request"}`+"\n", string(res.Body))
	assert.Equal(t, "Content-Type: application/json\r\nWWW-Authenticate: apikey realm=\"key\"\r\n", string(res.Headers))

	k = compile(t, `{"realm":"api"}`)
	res = k.Rewrite(newCtx(t, "GET / HTTP/1.1\r\nHost: a"))
	assert.Equal(t, "Content-Type: application/json\r\nWWW-Authenticate: apikey realm=\"api\"\r\n", string(res.Headers))
}

func TestCustomNames(t *testing.T) {
	k := compile(t, `{"header":"X-API-Key","query":"token"}`)
	f := func(head string, status int, user string) {
		t.Helper()
		c := newCtx(t, head)
		assert.Equal(t, status, k.Rewrite(c).Status, head)
		assert.Equal(t, user, c.Consumer, head)
	}
	f("GET / HTTP/1.1\r\nHost: a\r\nx-api-key: auth-one", 0, "jack")
	f("GET /?token=auth-two HTTP/1.1\r\nHost: a", 0, "rose")
	f("GET /?apikey=auth-two HTTP/1.1\r\nHost: a", 401, "")
	f("GET / HTTP/1.1\r\nHost: a\r\napikey: auth-one", 401, "")

	// nginx's header lookup: '_' in the configured name matches '-'.
	k = compile(t, `{"header":"x_api_key"}`)
	f("GET / HTTP/1.1\r\nHost: a\r\nX-Api-Key: auth-one", 0, "jack")
}

func TestHideCredentials(t *testing.T) {
	k := compile(t, `{"hide_credentials":true}`)

	c := newCtx(t, "GET /p?apikey=zzz HTTP/1.1\r\nHost: a\r\nApiKey: auth-one")
	require.Zero(t, k.Rewrite(c).Status)
	require.Len(t, c.HeaderOps, 4) // who it is, then the key removed
	assert.Equal(t, identityOps("jack"), c.HeaderOps[:3])
	assert.Equal(t, plugin.HeaderRemove, c.HeaderOps[3].Kind)
	assert.Equal(t, "ApiKey", string(c.HeaderOps[3].Name))
	assert.Nil(t, c.Query, "the query is untouched when the header carried the key")

	f := func(target, want string) {
		t.Helper()
		c := newCtx(t, "GET "+target+" HTTP/1.1\r\nHost: a")
		require.Zero(t, k.Rewrite(c).Status, target)
		assert.Equal(t, identityOps("jack"), c.HeaderOps)
		require.NotNil(t, c.Query, target)
		assert.Equal(t, want, string(c.Query), target)
	}
	f("/p?apikey=auth-one", "")
	f("/p?a=1&apikey=auth-one&b=%20x", "a=1&b=%20x")
	f("/p?apikey=auth-one&apikey=other&c", "c")
	f("/p?apikeyx=1&apikey=auth-one", "apikeyx=1")
	f("/p?&a=1&&apikey=auth-one", "a=1")

	// Failures never strip anything.
	c = newCtx(t, "GET /p?apikey=bad HTTP/1.1\r\nHost: a")
	assert.Equal(t, 401, k.Rewrite(c).Status)
	assert.Nil(t, c.Query)

	// Without hide_credentials nothing is stripped.
	k = compile(t, `{"hide_credentials":false}`)
	c = newCtx(t, "GET /p?apikey=auth-one HTTP/1.1\r\nHost: a")
	require.Zero(t, k.Rewrite(c).Status)
	assert.Nil(t, c.Query)
	assert.Equal(t, identityOps("jack"), c.HeaderOps)
}

// identityOps are the header edits that tell the upstream the consumer
// (APISIX attach_consumer), replacing whatever the client sent.
func identityOps(user string) []plugin.HeaderOp {
	return []plugin.HeaderOp{
		{Kind: plugin.HeaderSet, Name: []byte("X-Consumer-Username"), Value: []byte(user)},
		{Kind: plugin.HeaderRemove, Name: []byte("X-Credential-Identifier")},
		{Kind: plugin.HeaderRemove, Name: []byte("X-Consumer-Custom-ID")},
	}
}

func TestHideQueryAfterOtherScratch(t *testing.T) {
	// Another plugin's scratch bytes before ours stay intact, and a later
	// append to Scratch cannot overwrite the query.
	k := compile(t, `{"hide_credentials":true}`)
	c := newCtx(t, "GET /p?x=1&apikey=auth-one HTTP/1.1\r\nHost: a")
	c.Scratch = append(c.Scratch, "/other"...)
	require.Zero(t, k.Rewrite(c).Status)
	c.Scratch = append(c.Scratch, "more"...)
	assert.Equal(t, "x=1", string(c.Query))
	assert.Equal(t, "/otherx=1more", string(c.Scratch))
}

func TestNoConsumers(t *testing.T) {
	p, _ := plugin.Lookup("key-auth")
	inst, err := p.Compile(json.RawMessage(`{}`), &plugin.Env{})
	require.NoError(t, err)
	c := newCtx(t, "GET / HTTP/1.1\r\nHost: a\r\napikey: auth-one")
	res := inst.(plugin.Rewriter).Rewrite(c)
	assert.Equal(t, 401, res.Status)
	assert.Equal(t, `{"message":"Invalid API key in request"}`+"\n", string(res.Body))
}

func TestCompileErrors(t *testing.T) {
	p, _ := plugin.Lookup("key-auth")
	f := func(conf, want string) {
		t.Helper()
		_, err := p.Compile(json.RawMessage(conf), &plugin.Env{})
		require.Error(t, err, conf)
		assert.Equal(t, "failed to check the configuration of plugin key-auth err: "+want, err.Error(), conf)
	}
	f(`[]`, "wrong type: expected object, got table")
	f(`{"header":1}`, `property "header" validation failed: wrong type: expected string, got number`)
	f(`{"query":true}`, `property "query" validation failed: wrong type: expected string, got boolean`)
	f(`{"hide_credentials":"yes"}`, `property "hide_credentials" validation failed: wrong type: expected boolean, got string`)
	f(`{"anonymous_consumer":"anon"}`, `property "anonymous_consumer" validation failed: not supported by sluice`)
	f(`{"realm":"a\"b"}`, `property "realm" validation failed: failed to match pattern "^[\\x20-\\x21\\x23-\\x5B\\]-\\x7E]+$" with "a\"b"`)
	f(`{"realm":""}`, `property "realm" validation failed: failed to match pattern "^[\\x20-\\x21\\x23-\\x5B\\]-\\x7E]+$" with ""`)

	// APISIX's schema allows other keys (e.g. _meta).
	_, err := p.Compile(json.RawMessage(`{"_meta":{"disable":false},"x":1}`), &plugin.Env{})
	assert.NoError(t, err)
}

// FuzzStripQuery: hide_credentials leaves every other non-empty argument,
// in order and byte for byte, and none named like the key's.
func FuzzStripQuery(f *testing.F) {
	for _, q := range []string{"apikey=a", "a=1&apikey=x&b", "&&apikey&=&apikey=", "apikeyx=1&x=apikey"} {
		f.Add(q)
	}
	k := compile(f, `{"hide_credentials":true}`)
	f.Fuzz(func(t *testing.T, q string) {
		c := &plugin.Ctx{Req: &http1.Request{Query: []byte(q)}}
		k.stripQuery(c)
		require.NotNil(t, c.Query)
		var want []string
		for _, a := range strings.Split(q, "&") {
			if n, _, _ := strings.Cut(a, "="); a != "" && n != "apikey" {
				want = append(want, a)
			}
		}
		assert.Equal(t, strings.Join(want, "&"), string(c.Query), q)
	})
}

// The key is the field named exactly "key" (as the Admin API reads it);
// "Key" or "KEY" are extra fields. A blocked consumer blocks that key.
func TestKeyFieldExact(t *testing.T) {
	p, _ := plugin.Lookup("key-auth")
	cs := []plugin.Consumer{
		{Username: "alice", Blocked: true, Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"k","KEY":"x"}`)}},
		{Username: "mallory", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"k"}`)}},
		{Username: "carol", Blocked: true, Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"k2","Key":5}`)}},
		{Username: "dave", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"k2"}`)}},
		{Username: "erin", Plugins: map[string]json.RawMessage{"key-auth": json.RawMessage(`{"key":"v","Key":"w"}`)}},
	}
	inst, err := p.Compile(json.RawMessage(`{}`), &plugin.Env{Consumers: cs, Loops: 1})
	require.NoError(t, err)
	k := inst.(*conf)
	for _, c := range []struct{ key, user string }{{"k", ""}, {"k2", ""}, {"v", "erin"}, {"w", ""}, {"x", ""}} {
		ctx := newCtx(t, "GET / HTTP/1.1\r\nHost: a\r\napikey: "+c.key)
		k.Rewrite(ctx)
		assert.Equal(t, c.user, ctx.Consumer, "key %s", c.key)
	}
}
