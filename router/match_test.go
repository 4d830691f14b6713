package router

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
)

func TestMatchPrefix(t *testing.T) {
	tbl := buildTable(t, route("r1", "/v1/*"), route("r2", "/v1/chat/completions"))
	f := func(path, wantID string) {
		t.Helper()
		rt := tbl.Match(newRequest(t, "POST", path))
		if wantID == "" {
			assert.Nil(t, rt, path)
			return
		}
		require.NotNil(t, rt, path)
		assert.Equal(t, wantID, rt.ID, path)
	}
	f("/v1/chat/completions", "r2")          // exact beats prefix
	f("/v1/chat/completions?stream=1", "r2") // the query is not part of the path
	f("/v1/models", "r1")
	f("/v1/", "r1")
	f("/v1", "")
	f("/v2/models", "")
}

func TestMatchLongestPrefix(t *testing.T) {
	// docs/en/latest/router-radixtree.md example.
	tbl := buildTable(t,
		route("foo", "/blog/foo/*"),
		route("a", "/blog/foo/a/*"),
		route("bar", "/blog/foo/bar"),
		route("bar*", "/blog/bar*"),
		route("root", "/*"),
	)
	f := func(path, wantID string) {
		t.Helper()
		assert.Equal(t, wantID, matchID(tbl, newRequest(t, "GET", path)), path)
	}
	f("/blog/foo/a/b/c", "a")
	f("/blog/foo/a/", "a")
	f("/blog/foo/a", "foo")
	f("/blog/foo/bar", "bar")
	f("/blog/foo/bar/x", "foo")
	f("/blog/foo/", "foo")
	f("/blog/bar", "bar*") // "/blog/bar*" also matches "/blog/bar"
	f("/blog/barn", "bar*")
	f("/blog/bar/1", "bar*")
	f("/blog/ba", "root")
	f("/", "root")
}

func TestMatchMatchedURI(t *testing.T) {
	tbl := buildTable(t, &model.Route{ID: "r1", URIs: []string{"/a/*", "/b"}}, route("r2", "/c*"))
	f := func(path, wantID, wantURI string) {
		t.Helper()
		rt := tbl.Match(newRequest(t, "GET", path))
		require.NotNil(t, rt, path)
		assert.Equal(t, wantID, rt.ID, path)
		assert.Equal(t, wantURI, rt.MatchedURI, path)
	}
	f("/a/x", "r1", "/a/*")
	f("/b", "r1", "/b")
	f("/c", "r2", "/c*")
	assert.Nil(t, tbl.Match(newRequest(t, "GET", "/b/x")))
}

func TestMatchPriority(t *testing.T) {
	tbl := buildTable(t,
		route("low", "/p"),
		route("high", "/p", withPriority(10)),
		route("tie1", "/t/*", withPriority(1)),
		route("tie2", "/t/*", withPriority(1)),
		route("neg", "/n*", withPriority(-1)),
		route("zero", "/n*"),
		route("long", "/q/*/x"), // prefix "/q/", longer configured uri first
		route("short", "/q/*"),
	)
	f := func(path, wantID string) {
		t.Helper()
		assert.Equal(t, wantID, matchID(tbl, newRequest(t, "GET", path)), path)
	}
	f("/p", "high")
	f("/t/1", "tie1") // same priority: configuration order
	f("/n", "zero")
	f("/q/1", "long")
}

func TestMatchFallThrough(t *testing.T) {
	tbl := buildTable(t,
		route("post", "/api/chat", withMethods("POST", "PUT"), withPriority(5)),
		route("canary", "/api/chat", withVars(`[["http_x_canary","==","1"]]`), withPriority(4)),
		route("host", "/api/*", withHosts("internal.example.com")),
		route("vars", "/api/c*", withVars(`[["arg_v","==","2"]]`)),
		route("any", "/api/*"),
	)
	f := func(r *Request, wantID string) {
		t.Helper()
		assert.Equal(t, wantID, matchID(tbl, r), string(r.Target))
	}
	f(newRequest(t, "POST", "/api/chat"), "post")
	f(newRequest(t, "GET", "/api/chat", "X-Canary: 1"), "canary")
	f(newRequest(t, "GET", "/api/chat"), "any")      // method and vars fail: falls to the prefixes
	f(newRequest(t, "GET", "/api/chat?v=2"), "vars") // longer prefix first
	f(newRequest(t, "GET", "/api/chat?v=3"), "any")  // vars fail: shorter prefix
	f(newRequest(t, "GET", "/api/chat", "Host: internal.example.com"), "host")
	f(newRequest(t, "GET", "/api/chat?v=2", "Host: internal.example.com"), "host") // host routes first
	f(newRequest(t, "GET", "/other", "Host: internal.example.com"), "")
}

func TestMatchHosts(t *testing.T) {
	tbl := buildTable(t,
		route("exact", "/*", withHosts("api.foo.com")),
		route("wild", "/*", withHosts("*.foo.com")),
		route("deep", "/*", withHosts("*.b.foo.com")),
		route("multi", "/m", func(r *model.Route) { r.Host = "One.example"; r.Hosts = []string{"two.example"} }),
		route("only-x", "/x", withHosts("x.foo.com")),
		route("nohost", "/*"),
	)
	f := func(host, path, wantID string) {
		t.Helper()
		assert.Equal(t, wantID, matchID(tbl, newRequest(t, "GET", path, "Host: "+host)), host+path)
	}
	f("api.foo.com", "/", "exact")
	f("API.Foo.COM:8080", "/", "exact") // case-insensitive, port stripped
	f("a.foo.com", "/", "wild")
	f("a.b.foo.com", "/", "deep") // longest wildcard first
	f("x.b.foo.com", "/", "deep")
	f("b.foo.com", "/", "wild")
	f("foo.com", "/", "nohost")  // "*.foo.com" does not match "foo.com"
	f("x.foo.com", "/y", "wild") // the exact host's routes fail: the wildcard is next
	f("x.foo.com", "/x", "only-x")
	f("one.example", "/m", "multi")
	f("two.example", "/m", "multi")
	f("two.example", "/n", "nohost")
	f("[::1]:9080", "/", "nohost")
}

func TestMatchServiceHosts(t *testing.T) {
	b := &Builder{Resolver: fakeResolver{}}
	tbl, err := b.Build(&model.Snapshot{
		Routes:   []*model.Route{route("r1", "/s", func(r *model.Route) { r.ServiceID = "s1" }), route("r2", "/s")},
		Services: map[string]*model.Service{"s1": {ID: "s1", Hosts: []string{"svc.example"}, EnableWebsocket: true}},
	})
	require.NoError(t, err)
	rt := tbl.Match(newRequest(t, "GET", "/s", "Host: svc.example"))
	require.NotNil(t, rt)
	assert.Equal(t, "r1", rt.ID)
	assert.True(t, rt.Websocket)
	assert.Equal(t, "r2", matchID(tbl, newRequest(t, "GET", "/s", "Host: other.example")))
}

func TestMatchMethods(t *testing.T) {
	tbl := buildTable(t, route("r1", "/m", withMethods("GET", "PURGE")))
	f := func(method, wantID string) {
		t.Helper()
		assert.Equal(t, wantID, matchID(tbl, newRequest(t, method, "/m")), method)
	}
	f("GET", "r1")
	f("PURGE", "r1")
	f("POST", "")
	f("FOO", "")
}

func TestMatchRemoteAddrs(t *testing.T) {
	tbl := buildTable(t,
		route("lan", "/r", withRemote("10.0.0.0/8", "192.168.1.7", "2001:db8::/32"), withPriority(1)),
		route("one", "/r", func(r *model.Route) { r.RemoteAddr = "172.16.0.1" }),
	)
	f := func(addr, wantID string) {
		t.Helper()
		assert.Equal(t, wantID, matchID(tbl, from(newRequest(t, "GET", "/r"), addr)), addr)
	}
	f("10.1.2.3", "lan")
	f("::ffff:10.1.2.3", "lan") // IPv4-mapped
	f("192.168.1.7", "lan")
	f("192.168.1.8", "")
	f("2001:db8::1", "lan")
	f("172.16.0.1", "one")
	f("127.0.0.1", "")
}

func TestMatchStatus(t *testing.T) {
	tbl := buildTable(t,
		route("off", "/s", func(r *model.Route) { r.Status = ptr(0) }, withPriority(9)),
		route("on", "/s", func(r *model.Route) { r.Status = ptr(1) }),
		route("off2", "/t", func(r *model.Route) { r.Status = ptr(0) }),
	)
	assert.Equal(t, "on", matchID(tbl, newRequest(t, "GET", "/s")))
	assert.Equal(t, "", matchID(tbl, newRequest(t, "GET", "/t")))
}

func TestMatchEmptyTable(t *testing.T) {
	tbl := buildTable(t)
	assert.Nil(t, tbl.Match(newRequest(t, "GET", "/")))
	var empty Table
	assert.Nil(t, empty.Match(newRequest(t, "GET", "/")))
}

func TestMatchWildcardEverywhere(t *testing.T) {
	tbl := buildTable(t, route("all", "*"), route("star", "/*", withHosts("*")))
	assert.Equal(t, "star", matchID(tbl, newRequest(t, "GET", "/x", "Host: any.example")))
	assert.Equal(t, "all", matchID(tbl, newRequest(t, "OPTIONS", "*")))
}

func TestRadixTree(t *testing.T) {
	// Inserting in any order gives the same deepest-prefix answers.
	keys := []string{"/a/b/c", "/a/", "/a/bc", "/", "/a/b", "/b", "/a/b/cd"}
	root := &rnode{}
	rts := map[string]*Route{}
	for _, k := range keys {
		rts[k] = &Route{ID: k}
		root.insert(k, rts[k])
	}
	f := func(path string, want ...string) {
		t.Helper()
		var got []string
		for n := root.deepest([]byte(path)); n != nil; n = n.parent {
			for _, r := range n.routes {
				got = append(got, r.ID)
			}
		}
		assert.Equal(t, want, got, path)
	}
	f("/a/b/cde", "/a/b/cd", "/a/b/c", "/a/b", "/a/", "/")
	f("/a/bc", "/a/bc", "/a/b", "/a/", "/")
	f("/a/bx", "/a/b", "/a/", "/")
	f("/a", "/")
	f("/b/x", "/b", "/")
	f("x")
}

// TestRadixTreeRandom checks the tree against a naive scan: for random keys
// inserted in random order, walking up from the deepest node visits exactly
// the keys that prefix the path, longest first.
func TestRadixTreeRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(max int) string {
		b := make([]byte, rnd.IntN(max+1))
		for i := range b {
			b[i] = "ab/"[rnd.IntN(3)]
		}
		return string(b)
	}
	for iter := 0; iter < 300; iter++ {
		root := &rnode{}
		keys := map[string]bool{}
		for range rnd.IntN(12) + 1 {
			k := word(6)
			if !keys[k] {
				keys[k] = true
				root.insert(k, &Route{ID: k})
			}
		}
		for range 20 {
			path := word(8)
			var want []string
			for k := range keys {
				if strings.HasPrefix(path, k) {
					want = append(want, k)
				}
			}
			slices.SortFunc(want, func(a, b string) int { return len(b) - len(a) })
			var got []string
			for n := root.deepest([]byte(path)); n != nil; n = n.parent {
				for _, r := range n.routes {
					got = append(got, r.ID)
				}
			}
			require.Equal(t, want, got, "keys %v path %q", keys, path)
		}
	}
}
