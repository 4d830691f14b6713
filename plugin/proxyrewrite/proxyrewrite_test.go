package proxyrewrite

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/plugin"
)

func compile(t testing.TB, js string) *conf {
	t.Helper()
	p, ok := plugin.Lookup("proxy-rewrite")
	require.True(t, ok)
	inst, err := p.Compile(json.RawMessage(js), &plugin.Env{Loops: 1})
	require.NoError(t, err, js)
	return inst.(*conf)
}

// newCtx parses head (without the final CRLF pair) into a fresh Ctx.
func newCtx(t testing.TB, head string) *plugin.Ctx {
	t.Helper()
	req := &http1.Request{}
	_, err := http1.ParseRequest(req, []byte(head+"\r\n\r\n"), &http1.Limits{})
	require.NoError(t, err)
	c := &plugin.Ctx{}
	c.Reset()
	c.Req = req
	c.RemoteAddr = netip.MustParseAddr("::ffff:10.0.0.7")
	return c
}

// upstreamTarget is what the engine sends upstream: c.URI (or the
// request path) and c.Query (or the request's query).
func upstreamTarget(c *plugin.Ctx) string {
	p, q := c.URI, c.Query
	if p == nil {
		p = c.Req.Path
	}
	if q == nil {
		q = c.Req.Query
	}
	if len(q) == 0 {
		return string(p)
	}
	return string(p) + "?" + string(q)
}

func rewrite(t testing.TB, js, head string) *plugin.Ctx {
	t.Helper()
	k := compile(t, js)
	c := newCtx(t, head)
	require.Zero(t, k.Rewrite(c).Status)
	return c
}

func TestPlugin(t *testing.T) {
	p, ok := plugin.Lookup("proxy-rewrite")
	require.True(t, ok)
	assert.Equal(t, "proxy-rewrite", p.Name())
	assert.Equal(t, 1008, p.Priority())
}

func TestURI(t *testing.T) {
	f := func(uri, target, want string) {
		t.Helper()
		js, _ := json.Marshal(map[string]string{"uri": uri})
		c := rewrite(t, string(js), "GET "+target+" HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Ver: v2\r\nX-Sp: a b\r\nCookie: s=abc; t=1")
		assert.Equal(t, want, upstreamTarget(c), "uri %q target %q", uri, target)
	}
	// Literal; the client's query is kept.
	f("/get", "/anything", "/get")
	f("/get", "/anything?a=1&b=2", "/get?a=1&b=2")
	// The uri's own query goes first, the client's after '&' (APISIX).
	f("/get?x=1", "/anything", "/get?x=1")
	f("/get?x=1", "/anything?a=1", "/get?x=1&a=1")
	// APISIX's uri_safe_encode: space, '#', '%' encoded in the path.
	f("/a b#c%", "/", "/a%20b%23c%25")
	f("/p?q=a b", "/", "/p?q=a%20b")
	f("/p?q=#x", "/", "/p?q=%23x") // sluice: a raw # would end the target
	// Variables.
	f("/v1$uri", "/chat/completions?x=1", "/v1/chat/completions?x=1")
	f("/v1${uri}.json", "/x", "/v1/x.json")
	f("/u/$arg_user/$arg_id", "/anything?user=jo%20e&ID=7", "/u/jo%20e/7?user=jo%20e&ID=7")
	// a '%' that starts no escape is encoded (uri_safe_encode), not sent raw
	f("/m/$arg_model", "/a?model=50%", "/m/50%25?model=50%")
	f("/m/$arg_model", "/a?model=5%4", "/m/5%254?model=5%4")
	f("/$http_x_ver/x", "/a", "/v2/x")
	f("/$http_x_sp", "/a", "/a%20b")
	f("/h/$host", "/a", "/h/example.com")
	f("/m/$request_method/$remote_addr", "/a", "/m/GET/10.0.0.7")
	f("/c/$cookie_t", "/a", "/c/1")
	f("/r$request_uri", "/a/b?q=1", "/r/a/b%3Fq=1?q=1")
	f("/q/$args$is_args", "/a?z=1", "/q/z=1%3F?z=1")
	// Absent variables are "" (or their default).
	f("/x/$arg_none/y", "/a", "/x//y")
	f("/x/${arg_none ?? dflt}/y", "/a", "/x/dflt/y")
	f("/x/${http_x_ver??dflt}", "/a", "/x/v2")
	// A '?' in a value never splits the path from the query.
	f("/x/$arg_q", "/a?q=%3F", "/x/%3F?q=%3F")
	// \$ is no variable (the backslash stays, as in APISIX).
	f(`/a\$uri`, "/b", `/a\$uri`)
	f("/a$", "/b", "/a$")
}

func TestRegexURI(t *testing.T) {
	f := func(js, target, want string) {
		t.Helper()
		c := rewrite(t, js, "GET "+target+" HTTP/1.1\r\nHost: a")
		assert.Equal(t, want, upstreamTarget(c), "%s %s", js, target)
	}
	f(`{"regex_uri":["^/iresty/(.*)/(.*)/(.*)","/$1-$2-$3"]}`, "/iresty/a/b/c?k=v", "/a-b-c?k=v")
	f(`{"regex_uri":["^/api/(.*)","/v1/${1}x"]}`, "/api/users", "/v1/usersx")
	// a capture ending inside an escape keeps its '%' (the path was checked)
	f(`{"regex_uri":["^/v1/(.{3})(.*)","/$1$2"]}`, "/v1/a%C3%A9", "/a%C3%A9")
	// Only the first match is replaced; the rest of the path stays.
	f(`{"regex_uri":["o","0"]}`, "/foo/boo", "/f0o/boo")
	// No match: the path is unchanged.
	f(`{"regex_uri":["^/nomatch","/x"]}`, "/a/b?c=1", "/a/b?c=1")
	// Several pairs: the first that matches wins.
	f(`{"regex_uri":["^/a/(.*)","/first/$1","^/b/(.*)","/second/$1"]}`, "/b/z", "/second/z")
	// A template with its own query.
	f(`{"regex_uri":["^/s/(\\w+)","/search?q=$1"]}`, "/s/go?page=2", "/search?q=go&page=2")
	// $$ is a '$'; a group that did not take part is "".
	f(`{"regex_uri":["^/(a)?(b)","/$$$1-$2"]}`, "/b", "/$-b")
	// Already-encoded captures are not encoded twice.
	f(`{"regex_uri":["^/(.*)","/x/$1"]}`, "/a%20b", "/x/a%20b")
	// uri wins over regex_uri.
	f(`{"uri":"/u","regex_uri":["^/(.*)","/r/$1"]}`, "/a", "/u")
}

func TestHostMethod(t *testing.T) {
	c := rewrite(t, `{"host":"iresty.com:8080","method":"POST"}`, "GET /a?b=1 HTTP/1.1\r\nHost: a")
	assert.Equal(t, "iresty.com:8080", string(c.Host))
	assert.Equal(t, "POST", string(c.Method))
	assert.Nil(t, c.URI, "the path is untouched without uri or regex_uri")
	assert.Nil(t, c.Query)
}

type op struct{ kind, name, value string }

func ops(c *plugin.Ctx) []op {
	var out []op
	for _, h := range c.HeaderOps {
		k := map[uint8]string{plugin.HeaderSet: "set", plugin.HeaderAdd: "add", plugin.HeaderRemove: "remove"}[h.Kind]
		out = append(out, op{k, string(h.Name), string(h.Value)})
	}
	return out
}

func TestHeaders(t *testing.T) {
	f := func(js, head string, want ...op) {
		t.Helper()
		c := rewrite(t, js, head)
		assert.Equal(t, want, ops(c), js)
	}
	const get = "GET /api/v2/x?user=jo HTTP/1.1\r\nHost: a\r\nX-In: in-value"
	// add, then set, then remove; names sorted within a group.
	f(`{"headers":{"remove":["X-Drop"],"set":{"X-B":"2","X-A":"1"},"add":{"X-Add":"a"}}}`, get,
		op{"add", "X-Add", "a"}, op{"set", "X-A", "1"}, op{"set", "X-B", "2"}, op{"remove", "X-Drop", ""})
	// Legacy flat form: set. Numbers are written as Lua's tostring.
	f(`{"headers":{"X-Api-Version":"v2","X-N":10,"X-F":1.5}}`, get,
		op{"set", "X-Api-Version", "v2"}, op{"set", "X-F", "1.5"}, op{"set", "X-N", "10"})
	// A header literally named "add" with a string is the legacy form.
	f(`{"headers":{"add":"x"}}`, get, op{"set", "add", "x"})
	// Arrays: add each; set the first, add the rest.
	f(`{"headers":{"add":{"X-M":["1","2"]},"set":{"X-S":["a","b"]}}}`, get,
		op{"add", "X-M", "1"}, op{"add", "X-M", "2"}, op{"set", "X-S", "a"}, op{"add", "X-S", "b"})
	// nginx: an empty set removes; an empty add is not sent.
	f(`{"headers":{"set":{"X-E":""},"add":{"X-E2":""}}}`, get, op{"remove", "X-E", ""})
	// Variables and regex_uri captures.
	f(`{"regex_uri":["^/api/(v\\d)/(.*)","/$2"],"headers":{"set":{"X-Ver":"$1","X-User":"$arg_user","X-In2":"<$http_x_in>","X-Def":"${http_none ?? d}"}}}`, get,
		op{"set", "X-Def", "d"}, op{"set", "X-In2", "<in-value>"}, op{"set", "X-User", "jo"}, op{"set", "X-Ver", "v2"})
	// A capture without a regex_uri match is "": an empty set removes.
	f(`{"headers":{"set":{"X-Ver":"$1"}}}`, get, op{"remove", "X-Ver", ""})
	f(`{"headers":{"set":{"X-Host":"$host","X-Ip":"$remote_addr"}}}`, get,
		op{"set", "X-Host", "a"}, op{"set", "X-Ip", "10.0.0.7"})
}

func TestScratchSharing(t *testing.T) {
	// Bytes other plugins put in Scratch before stay intact and a later
	// append cannot overwrite what this plugin built.
	k := compile(t, `{"uri":"/v/$arg_a/$host?z=$remote_addr","headers":{"set":{"X-H":"$host-$arg_a"}}}`)
	c := newCtx(t, "GET /p?a=1 HTTP/1.1\r\nHost: WWW.X")
	c.Scratch = append(c.Scratch, "before"...)
	require.Zero(t, k.Rewrite(c).Status)
	c.Scratch = append(c.Scratch, "after"...)
	assert.Equal(t, "/v/1/www.x", string(c.URI))
	assert.Equal(t, "z=10.0.0.7&a=1", string(c.Query))
	assert.Equal(t, []op{{"set", "X-H", "www.x-1"}}, ops(c))
	assert.Equal(t, "before", string(c.Scratch[:6]))
}

func TestQueryAfterKeyAuth(t *testing.T) {
	// key-auth (priority 2500) may have replaced the query already: the
	// rewritten uri keeps that one.
	k := compile(t, `{"uri":"/new?x=1"}`)
	c := newCtx(t, "GET /p?apikey=k&a=1 HTTP/1.1\r\nHost: a")
	c.Query = []byte("a=1")
	require.Zero(t, k.Rewrite(c).Status)
	assert.Equal(t, "/new?x=1&a=1", upstreamTarget(c))

	c = newCtx(t, "GET /p?apikey=k HTTP/1.1\r\nHost: a")
	c.Query = []byte{}
	require.Zero(t, compile(t, `{"uri":"/new"}`).Rewrite(c).Status)
	assert.Equal(t, "/new", upstreamTarget(c))
}

func TestCompileErrors(t *testing.T) {
	p, _ := plugin.Lookup("proxy-rewrite")
	f := func(js, want string) {
		t.Helper()
		_, err := p.Compile(json.RawMessage(js), &plugin.Env{})
		require.Error(t, err, js)
		assert.Equal(t, "failed to check the configuration of plugin proxy-rewrite err: "+want, err.Error(), js)
	}
	f(`{}`, "expect object to have at least 1 properties")
	f(`"x"`, "wrong type: expected object, got string")
	f(`{"uri":"abc"}`, `property "uri" validation failed: failed to match pattern "^\\/.*" with "abc"`)
	f(`{"uri":""}`, `property "uri" validation failed: string too short, expected at least 1, got 0`)
	f(`{"uri":"/a/./b"}`, `property "uri" validation failed: "/a/./b" has a "." or ".." segment (write the path it means)`)
	_, err := p.Compile(json.RawMessage(`{"uri":"/a?next=/../x"}`), &plugin.Env{})
	assert.NoError(t, err, "a query may hold dot segments")
	_, err = p.Compile(json.RawMessage(`{"uri":"/a/%2e%2e/b%"}`), &plugin.Env{})
	assert.NoError(t, err, "checked as sent: %2e%2e goes as %252e%252e (uri_safe_encode), no dot segment")
	f(`{"uri":1}`, `property "uri" validation failed: wrong type: expected string, got number`)
	f(`{"uri":"/$foo"}`, `property "uri" validation failed: variable $foo is not supported by sluice (supported: `+supportedVars+`; write ${name} when text follows a variable)`)
	f(`{"uri":"/$uri.json"}`, `property "uri" validation failed: variable $uri.json is not supported by sluice (supported: `+supportedVars+`; write ${name} when text follows a variable)`)
	f(`{"uri":"/$arg_id.json"}`, `property "uri" validation failed: variable $arg_id.json is not supported by sluice (supported: `+supportedVars+`; write ${name} when text follows a variable)`)
	f(`{"uri":"/$1"}`, `property "uri" validation failed: variable $1 is not supported by sluice here (regex_uri captures are available in header values)`)
	f(`{"regex_uri":["^/a"]}`, `property "regex_uri" validation failed: expect array to have at least 2 items`)
	f(`{"regex_uri":"^/a"}`, `property "regex_uri" validation failed: wrong type: expected array, got string`)
	f(`{"regex_uri":["^/a",1]}`, `property "regex_uri" validation failed: failed to validate item 2: wrong type: expected string, got number`)
	f(`{"regex_uri":["^/a","/b","^/c"]}`, "The length of regex_uri should be an even number")
	f(`{"regex_uri":["a(?=b)","/x"]}`, "invalid regex_uri(a(?=b), /x): error parsing regexp: invalid or unsupported Perl syntax: `(?=`")
	f(`{"regex_uri":["^/(.*)","/$x"]}`, "invalid regex_uri(^/(.*), /$x): failed to compile the replacement template: invalid capturing variable name")
	f(`{"regex_uri":["^/(.*)","/${1"]}`, "invalid regex_uri(^/(.*), /${1): failed to compile the replacement template: invalid capturing variable name")
	f(`{"host":"bad host"}`, `property "host" validation failed: failed to match pattern "^[0-9a-zA-Z-.]+(:\\d{1,5})?$" with "bad host"`)
	f(`{"host":"a:123456"}`, `property "host" validation failed: failed to match pattern "^[0-9a-zA-Z-.]+(:\\d{1,5})?$" with "a:123456"`)
	f(`{"method":"get"}`, `property "method" validation failed: matches none of the enum values`)
	f(`{"use_real_request_uri_unsafe":true}`, `property "use_real_request_uri_unsafe" validation failed: not supported by sluice (sluice already rewrites the path as the client sent it)`)
	none := `property "headers" validation failed: object matches none of the required`
	f(`{"headers":{}}`, none)
	f(`{"headers":[]}`, none)
	f(`{"headers":{"set":{"X":"1"},"X-Other":"2"}}`, none)
	f(`{"headers":{"X":{"a":1}}}`, none)
	f(`{"headers":{"X":true}}`, none)
	f(`{"headers":{"set":{}}}`, none)
	f(`{"headers":{"remove":[]}}`, none)
	f(`{"headers":{"remove":[1]}}`, none)
	f(`{"headers":{"X Y":"1"}}`, `property "headers" validation failed: invalid field character in header`)
	f(`{"headers":{"set":{"X:Y":"1"}}}`, `property "headers" validation failed: invalid field character in header`)
	f(`{"headers":{"X":"a\r\nb"}}`, `property "headers" validation failed: header "X": invalid value character in header`)
	f(`{"headers":{"add":{"X":[]}}}`, `property "headers" validation failed: header "X": expect array to have at least 1 items`)
	f(`{"headers":{"add":{"X":[true]}}}`, `property "headers" validation failed: header "X": invalid type as header value`)
	f(`{"headers":{"X":"$nope"}}`, `property "headers" validation failed: header "X": variable $nope is not supported by sluice (supported: `+supportedVars+`; write ${name} when text follows a variable)`)
	f(`{"headers":{"set":{"Host":"x"}}}`, `property "headers" validation failed: header "Host" cannot be changed here (use proxy-rewrite's "host")`)
	f(`{"headers":{"remove":["Content-Length"]}}`, `property "headers" validation failed: header "Content-Length" cannot be changed by sluice (it frames the request)`)

	// APISIX's schema allows other keys.
	_, err = p.Compile(json.RawMessage(`{"_meta":{"disable":false},"uri":"/a","scheme":"https"}`), &plugin.Env{})
	assert.NoError(t, err)
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/a", "/v1$uri", "/${uri}.json", "/${arg_x ?? d}", `\$uri`, "$", "${", "$1${2}", "/$http_x_y?q=$arg_q", "${ ?? }"} {
		f.Add(s, "/p/a%20b", "a=1&b=%3F")
	}
	f.Fuzz(func(t *testing.T, tpl, path, query string) {
		for _, captures := range []bool{false, true} {
			tm, err := parseTemplate(tpl, captures)
			if err != nil {
				continue
			}
			// Expanding never panics and never writes a raw space,
			// control byte or '#' into the URI, nor a '?' into its path.
			c := &plugin.Ctx{Req: &http1.Request{Path: []byte(path), Query: []byte(query), Target: []byte(path + "?" + query), Host: []byte("h:1")}}
			b := uriBuilder{split: -1}
			for i := range tm {
				if tm[i].kind == vLit {
					b.put(tm[i].lit, srcText)
					continue
				}
				v, _ := tm[i].value(c, c.Req.Path, []int{0, len(path)}, nil)
				b.put(v, srcValue)
			}
			for i, ch := range b.dst {
				if ch <= ' ' || ch >= 0x7f || ch == '#' || (ch == '?' && (b.split < 0 || i < b.split)) {
					t.Fatalf("%q → %q: raw byte %q at %d", tpl, b.dst, ch, i)
				}
			}
		}
	})
}

func FuzzSubst(f *testing.F) {
	for _, s := range []string{"/$1", "/${1}x", "$$", "/$", "${x}", "/$0/$99/$100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := compileSubst(s)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p.group < -1 || p.group > 99 {
				t.Fatalf("%q: group %d", s, p.group)
			}
		}
	})
}
