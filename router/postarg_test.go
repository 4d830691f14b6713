package router

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPostArg(t *testing.T) {
	body := []byte(` {"model": "gpt-4o", "stream":true, "n": 2, "x": null,
		"messages":[{"role":"user","content":"a,}\"b"}], "metadata": {"tier": "gold", "deep": {"k": [1,{"a":2}]}}}`)
	f := func(name, want string, ok bool) {
		t.Helper()
		got := postArg(body, []byte(name))
		if !ok {
			assert.Nil(t, got, name)
			return
		}
		assert.Equal(t, want, string(got), name)
	}
	f("model", "gpt-4o", true)
	f("stream", "true", true)
	f("n", "2", true)
	f("x", "", false)
	f("metadata.tier", "gold", true)
	f("metadata.deep.k", `[1,{"a":2}]`, true)
	f("metadata.nope", "", false)
	f("messages", `[{"role":"user","content":"a,}\"b"}]`, true)
	f("model.x", "", false)
	f("missing", "", false)

	form := []byte("model=gpt-4o&stream=1&empty=&flag")
	assert.Equal(t, "gpt-4o", string(postArg(form, []byte("model"))))
	assert.Equal(t, "", string(postArg(form, []byte("empty"))))
	assert.NotNil(t, postArg(form, []byte("flag")))
	assert.Nil(t, postArg(form, []byte("nope")))
	assert.Nil(t, postArg(nil, []byte("model")))
	assert.Nil(t, postArg([]byte(`{"model":`), []byte("model")), "truncated JSON")
}

func TestPostArgInVars(t *testing.T) {
	e, err := CompileVars(json.RawMessage(`[["post_arg.model","==","gpt-4o"]]`))
	assert.NoError(t, err)
	assert.True(t, e.NeedsBody())
	r := newRequest(t, "POST", "/chat/completions")
	assert.False(t, e.Eval(r), "no body: nil")
	r.Body = []byte(`{"model":"gpt-4o"}`)
	assert.True(t, e.Eval(r))
	r.Body = []byte(`{"model":"gpt-3.5"}`)
	assert.False(t, e.Eval(r))
	e2, _ := CompileVars(json.RawMessage(`[["arg_x","==","1"]]`))
	assert.False(t, e2.NeedsBody())
}

// With BodyPending, Match stops at the first candidate whose vars read the
// body (a lower-priority route must not win meanwhile); requests that
// reach no such route match at once.
func TestMatchBodyPending(t *testing.T) {
	tbl := buildTable(t,
		route("by-model", "/chat", withPriority(10), withMethods("POST"), withVars(`[["post_arg.model","==","gpt-4o"]]`)),
		route("chat", "/chat"),
		route("other", "/other"),
	)
	r := newRequest(t, "POST", "/chat")
	r.BodyPending = true
	assert.Nil(t, tbl.Match(r))
	assert.True(t, r.NeedBody)

	r.BodyPending, r.Body = false, []byte(`{"model":"gpt-4o"}`)
	assert.Equal(t, "by-model", matchID(tbl, r))
	assert.False(t, r.NeedBody)
	r.Body = []byte(`{"model":"gpt-3.5"}`)
	assert.Equal(t, "chat", matchID(tbl, r))

	// the same stop under an exact host, a wildcard host and a prefix: a
	// lower-precedence route must not win while the body is on its way
	hosted := buildTable(t,
		route("exact", "/chat", withHosts("a.com"), withVars(`[["post_arg.model","==","gpt-4o"]]`)),
		route("wild", "/chat", withHosts("*.b.com"), withVars(`[["post_arg.model","==","gpt-4o"]]`)),
		route("prefix", "/p/*", withHosts("a.com"), withVars(`[["post_arg.model","==","gpt-4o"]]`)),
		route("any", "/chat"),
		route("any-p", "/p/*"),
	)
	for _, c := range []struct{ host, path, want string }{
		{"a.com", "/chat", "exact"}, {"x.b.com", "/chat", "wild"}, {"a.com", "/p/x", "prefix"},
	} {
		r := newRequest(t, "POST", c.path, "Host: "+c.host)
		r.BodyPending = true
		assert.Nil(t, hosted.Match(r), c.want)
		assert.True(t, r.NeedBody, c.want)
		r.BodyPending, r.Body = false, []byte(`{"model":"gpt-4o"}`)
		assert.Equal(t, c.want, matchID(hosted, r))
		r.Body = []byte(`{"model":"other"}`)
		assert.Equal(t, map[string]string{"exact": "any", "wild": "any", "prefix": "any-p"}[c.want], matchID(hosted, r))
	}

	for _, c := range []struct{ method, path, want string }{
		{"POST", "/other", "other"},
		{"PUT", "/chat", "chat"}, // by-model is POST only
	} {
		r := newRequest(t, c.method, c.path)
		r.BodyPending = true
		assert.Equal(t, c.want, matchID(tbl, r), c.path)
		assert.False(t, r.NeedBody, c.path)
	}
}

func FuzzPostArg(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","a":{"b":[1,2,{"c":"d"}]}}`), "a.b")
	f.Add([]byte(`model=x&y=z`), "y")
	f.Add([]byte(`{"a":"\\\"","b":`), "b")
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		v := postArg(body, []byte(name))
		if v != nil && len(v) > len(body) {
			t.Fatalf("value longer than body")
		}
	})
}

func TestMatchWithBody(t *testing.T) {
	tbl := buildTable(t, route("a", "/a", withVars(`[["post_arg.model","==","gpt-4o"]]`)), route("b", "/a"))
	r := newRequest(t, "POST", "/a")
	assert.Equal(t, "b", matchID(tbl, r), "no body: the vars are false")
	r.Body = []byte(`{"model":"gpt-4o"}`)
	assert.Equal(t, "a", matchID(tbl, r))
}

func TestBodyVarsFromTheExpression(t *testing.T) {
	e, err := CompileVars(json.RawMessage(`[["OR",["arg_x","==","1"],["post_arg.tier","==","gold"]]]`))
	assert.NoError(t, err)
	assert.True(t, e.NeedsBody(), "post_arg nested in logic groups")
	e, err = CompileVars(json.RawMessage(`[["uri","==","/post_arg"],["http_x","~~","post_arg"]]`))
	assert.NoError(t, err)
	assert.False(t, e.NeedsBody(), "the text post_arg in a value does not read the body")
}
