package admin

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/router"
)

// What another writer of a shared etcd stores broken must break only
// itself, fail closed (its requests answer 503, never falling through to a
// route without its plugins), and never lock the Admin API.

// foreign stores key=value as another writer would, and waits for the
// debounced rebuild.
func (e *env) foreign(t *testing.T, key, value string) {
	t.Helper()
	gen := e.pub.Load().Generation
	kept := strings.Count(e.log.String(), "keeping the current routing table")
	_, err := e.mem.Put(context.Background(), key, []byte(value))
	require.NoError(t, err)
	waitFor(t, time.Second, "the rebuild after "+key, func() bool {
		return e.pub.Load().Generation != gen || strings.Count(e.log.String(), "keeping the current routing table") > kept
	})
}

func (e *env) brokenAt(t *testing.T, path string, headers ...string) string {
	t.Helper()
	rt := e.pub.Load().Match(newRequest(t, "GET", path, headers...))
	if rt == nil {
		return ""
	}
	if !rt.Broken {
		return "healthy " + rt.ID
	}
	return rt.ID
}

// A service stored in a form sluice does not validate still lends its
// hosts to its routes: they answer 503 there, and not elsewhere.
func TestForeignInvalidServiceKeepsHosts(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s", `{"hosts":["a.com"],"plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:7":1}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r", `{"uri":"/api/*","service_id":"s"}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/z", `{"uri":"/*","host":"a.com","upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/any", `{"uri":"/*","upstream":{"nodes":{"127.0.0.1:11":1}}}`)
	e.foreign(t, "/apisix/services/s", `{"hosts":["a.com"],"plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:7":1}},"bogus":1}`)
	assert.Equal(t, "r", e.brokenAt(t, "/api/x", "Host: a.com"), "not a.com's catch-all, which lacks key-auth")
	assert.Equal(t, "healthy any", e.brokenAt(t, "/api/x", "Host: c.com"))
}

// A foreign route that does not validate keeps its place with whatever of
// its match reads; what does not read is dropped (it matches more).
func TestForeignInvalidRouteMatchesMore(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/all", routeBody("/*", 9))
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/local", `{"uri":"/*","host":"localhost","upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	for id, body := range map[string]string{
		"p": `{"uri":"/p/*","priority":"5","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
		"s": `{"uri":"/s/*","status":true,"plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
		"m": `{"uri":"/m/*","methods":["GET","get"],"plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
		// APISIX's PCRE takes lookaheads; Go's RE2 does not
		"v": `{"uri":"/v/*","vars":[["remote_addr","~~","^(?!10\\.)"]],"plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
		"h": `{"uri":"/h/*","hosts":["localhost",""],"plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
		"t": `{"uri":"/t/*","hosts":"localhost","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`,
	} {
		e.foreign(t, "/apisix/routes/"+id, body)
	}
	for _, p := range []string{"/p/x", "/s/x", "/m/x", "/v/x", "/t/x"} {
		assert.Equal(t, p[1:2], e.brokenAt(t, p, "Host: c.com"), p)
	}
	// a route naming localhost (h: its "" entry dropped), or whose hosts
	// do not read (t), answers there, ahead of localhost's catch-all; a
	// route without hosts loses to it, broken or not (radixtree_host_uri)
	assert.Equal(t, "h", e.brokenAt(t, "/h/x", "Host: localhost"))
	assert.Equal(t, "healthy all", e.brokenAt(t, "/h/x", "Host: c.com"))
	assert.Equal(t, "t", e.brokenAt(t, "/t/x", "Host: localhost"))
	assert.Equal(t, "healthy local", e.brokenAt(t, "/p/x", "Host: localhost"))
}

// A global rule another writer left broken keeps the last table and
// refuses writes, but the Admin API can still delete or mend it, even with
// other foreign breakage around.
func TestForeignBrokenGlobalRuleCanBeMended(t *testing.T) {
	for _, mend := range []struct{ method, body string }{{"DELETE", ""}, {"PUT", `{"plugins":{}}`}} {
		t.Run(mend.method, func(t *testing.T) {
			e := newEnv(t, envOpt{})
			e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/ok", routeBody("/ok", 1))
			gen := e.pub.Load().Generation
			e.foreign(t, "/apisix/global_rules/g", `{"plugins":{"no-such-plugin":{}}}`)
			e.foreign(t, "/apisix/routes/d", `{"uri":"/d","upstream_id":"nope"}`)
			assert.Equal(t, gen, e.pub.Load().Generation, "the last table is kept")
			r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
			assert.Contains(t, r.body, "no-such-plugin")
			e.must(http.StatusOK, mend.method, "/apisix/admin/global_rules/g", mend.body)
			assert.Equal(t, "d", e.brokenAt(t, "/d"))
			assert.Equal(t, "healthy ok", e.brokenAt(t, "/ok"))
			e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
			e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/d", "")
		})
	}
}

// What a broken route registered for others (a limit-count group's
// settings) is taken back: it does not break a healthy route of the group.
func TestForeignBrokenRouteDoesNotClaimGroup(t *testing.T) {
	e := newEnv(t, envOpt{})
	b := `{"uri":"/b","plugins":{"limit-count":{"count":2,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/b", b)
	e.foreign(t, "/apisix/routes/a", `{"uri":"/a","plugins":{"limit-count":{"count":1,"time_window":60,"group":"g"},"proxy-rewrite":{"uri":5}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Equal(t, "a", e.brokenAt(t, "/a"))
	assert.Equal(t, "healthy b", e.brokenAt(t, "/b"))
	e.must(http.StatusOK, "PUT", "/apisix/admin/routes/b", b)
}

// A stored key with an id sluice does not accept is an item that does not
// validate, at start as through the watch: for a global rule, the start is
// refused and a running gateway keeps its table (never serving without it).
func TestInvalidIDGlobalRule(t *testing.T) {
	mem := newMemStore()
	mem.putQuiet("/apisix/global_rules/g:1", `{"plugins":{"key-auth":{}}}`)
	mem.putQuiet("/apisix/routes/r", `{"uri":"/r","upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	s, err := New(testConfig(), mem, &router.Publisher{}, &router.Builder{Resolver: newFakeResolver()}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	require.ErrorContains(t, s.Load(context.Background()), `invalid global rule id "g:1"`)

	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r", routeBody("/r", 9))
	gen := e.pub.Load().Generation
	e.foreign(t, "/apisix/global_rules/g:1", `{"plugins":{"key-auth":{}}}`)
	assert.Equal(t, gen, e.pub.Load().Generation)
	assert.Contains(t, e.log.String(), "keeping the current routing table")
}

// Consumers another writer stored with a shared key: a gateway still
// starts (logging it), and the key identifies neither.
func TestForeignSharedConsumerKey(t *testing.T) {
	mem := newMemStore()
	mem.putQuiet("/apisix/consumers/alice", `{"username":"alice","plugins":{"key-auth":{"key":"secret-k"}}}`)
	mem.putQuiet("/apisix/consumers/mallory", `{"username":"mallory","plugins":{"key-auth":{"key":"secret-k"}}}`)
	mem.putQuiet("/apisix/routes/r", `{"uri":"/r","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	s, err := New(testConfig(), mem, &router.Publisher{}, &router.Builder{Resolver: newFakeResolver()}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	require.NoError(t, s.Load(context.Background()))
}

// Deleting a broken route whose cause is its service (another writer's)
// is not refused because the service is now reported on its own.
func TestDeleteRouteOfBrokenService(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.foreign(t, "/apisix/services/s", `{"plugins":{"proxy-rewrite":{"uri":5}},"upstream":{"nodes":{"127.0.0.1:7":1}}}`)
	e.foreign(t, "/apisix/routes/r", `{"uri":"/r","service_id":"s"}`)
	assert.Equal(t, "r", e.brokenAt(t, "/r"))
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/r", "")
}

// A write right behind a foreign change (before its debounced rebuild) is
// judged against the state as it is.
func TestWriteRightAfterForeignChange(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u", `{"nodes":{"127.0.0.1:1":1}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/d", `{"uri":"/d","upstream_id":"u"}`)
	// the upstream vanishes under the route (a delete racing on another gateway)
	_, err := e.mem.Delete(context.Background(), "/apisix/upstreams/u")
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		r := e.do("PUT", "/apisix/admin/routes/x"+strings.Repeat("x", i), routeBody("/x", 1))
		assert.Contains(t, []int{200, 201}, r.code, "write %d: %s", i, r.body)
	}
}

// A placeholder keeps the route's place in its bucket: a priority that
// does not read makes it the highest, not 0.
func TestForeignInvalidPriorityWinsBucket(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/open", `{"uri":"/p/*","priority":1,"upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	e.foreign(t, "/apisix/routes/p", `{"uri":"/p/*","priority":"5","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Equal(t, "p", e.brokenAt(t, "/p/x"), "not open (priority 1), which lacks key-auth")
}

// Paths that do not read all make the placeholder's path "/*": one bad
// uris entry, or a uri beside readable uris, loses nothing.
func TestForeignUnreadablePaths(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/all", routeBody("/*", 9))
	e.foreign(t, "/apisix/routes/a", `{"uris":["/admin/*",5],"host":"a.com","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	e.foreign(t, "/apisix/routes/b", `{"uri":["/private/*"],"uris":["/other"],"host":"b.com","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Equal(t, "a", e.brokenAt(t, "/admin/x", "Host: a.com"))
	assert.Equal(t, "b", e.brokenAt(t, "/private/x", "Host: b.com"))
	assert.Equal(t, "healthy all", e.brokenAt(t, "/admin/x", "Host: c.com"), "its hosts still hold")
}

// With two global rules broken, each can be mended in turn; the table is
// published once neither is broken.
func TestTwoBrokenGlobalRules(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/ok", routeBody("/ok", 1))
	gen := e.pub.Load().Generation
	e.foreign(t, "/apisix/global_rules/g1", `{"plugins":{"no-such-plugin":{}}}`)
	e.foreign(t, "/apisix/global_rules/g2", `{"plugins":{"other-plugin":{}}}`)
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
	assert.Contains(t, r.body, "plugin")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/global_rules/g1", "")
	assert.Equal(t, gen, e.pub.Load().Generation, "g2 is still broken: the table is kept")
	e.must(http.StatusOK, "PUT", "/apisix/admin/global_rules/g2", `{"plugins":{}}`)
	assert.NotEqual(t, gen, e.pub.Load().Generation, "published once every global rule builds")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
}

// What a broken global rule registered (a limit-count group's settings)
// is taken back: healthy routes of the group are not reported broken, so
// a "mending" write that would break them is still refused.
func TestBrokenGlobalRuleDoesNotClaimGroup(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r", `{"uri":"/r","plugins":{"limit-count":{"count":2,"time_window":60,"group":"x"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	g := `{"plugins":{"limit-count":{"count":1,"time_window":60,"group":"x"}}}`
	e.must(http.StatusBadRequest, "PUT", "/apisix/admin/global_rules/g", g)
	e.foreign(t, "/apisix/global_rules/g", `{"plugins":{"limit-count":{"count":1,"time_window":60,"group":"x"},"zzz-unknown":{}}}`)
	assert.NotContains(t, e.log.String(), "item=routes/r")
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/global_rules/g", g)
	assert.Contains(t, r.body, "routes/r")
	assert.Equal(t, "healthy r", e.brokenAt(t, "/r"))
}

// A service only a route that does not validate uses cannot be deleted:
// the route's references hold.
func TestDeleteServiceOfInvalidRouteRefused(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s", `{"hosts":["a.com"],"upstream":{"nodes":{"127.0.0.1:7":1}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/h", `{"uri":"/*","host":"b.com","upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	e.foreign(t, "/apisix/routes/r", `{"uri":"/api/*","service_id":"s","plugins":{"key-auth":{}},"bogus":1}`)
	assert.Equal(t, "r", e.brokenAt(t, "/api/x", "Host: a.com"))
	r := e.must(http.StatusBadRequest, "DELETE", "/apisix/admin/services/s", "")
	assert.Contains(t, r.body, "route [r] is still using it")
	assert.Equal(t, "healthy h", e.brokenAt(t, "/api/x", "Host: b.com"))
}

// A consumer's key id is its username (up to 100 characters), as the
// Admin API takes it; one written by a peer is served.
func TestForeignLongUsername(t *testing.T) {
	e := newEnv(t, envOpt{})
	name := strings.Repeat("u", 80)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers", `{"username":"`+name+`","plugins":{"key-auth":{"key":"k-long"}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r", `{"uri":"/r","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	e.foreign(t, "/apisix/consumers/"+name, `{"username":"`+name+`","plugins":{"key-auth":{"key":"k-long2"}}}`)
	assert.NotContains(t, e.log.String(), "invalid consumer id")
	e.s.mu.RLock()
	it := e.s.state.get("consumers", name)
	e.s.mu.RUnlock()
	require.NotNil(t, it)
	assert.NoError(t, it.err)
	assert.NotNil(t, it.obj)
}

// A consumer another writer stored in a form sluice does not validate
// (say with a per-consumer plugin sluice refuses) is in the table's
// consumers as blocked, so the key it holds authenticates nobody, even
// when another writer gives a valid consumer the same key (the Admin API
// refuses that).
func TestForeignInvalidConsumerBlocksItsKey(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.foreign(t, "/apisix/consumers/alice", `{"username":"alice","plugins":{"key-auth":{"key":"secret-k"},"limit-count":{"count":1,"time_window":60}}}`)
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/consumers", `{"username":"mallory","plugins":{"key-auth":{"key":"secret-k"}}}`)
	assert.Contains(t, r.body, "duplicate key found with consumer: alice", "its keys still count")
	e.foreign(t, "/apisix/consumers/mallory", `{"username":"mallory","plugins":{"key-auth":{"key":"secret-k"}}}`)
	assert.Contains(t, e.log.String(), "item=consumers/mallory")
	e.s.mu.RLock()
	snap := e.s.state.snapshot(nil)
	e.s.mu.RUnlock()
	require.NotNil(t, snap.Consumers["alice"])
	assert.Error(t, snap.Consumers["alice"].Invalid)
	assert.JSONEq(t, `{"key":"secret-k"}`, string(snap.Consumers["alice"].Plugins["key-auth"]))
	assert.NoError(t, snap.Consumers["mallory"].Invalid)
}

// A write that breaks an unused service (its limit-count group given
// other settings) is refused like one that breaks a route.
func TestWriteBreakingUnusedServiceRefused(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s", `{"plugins":{"limit-count":{"count":1,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:7":1}}}`)
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/b", `{"uri":"/b","plugins":{"limit-count":{"count":2,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Contains(t, r.body, "this change would break services/s")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/c", `{"uri":"/c","service_id":"s"}`)
}

// A consumer that shares a key can be deleted (the natural fix), whichever
// of several sharing consumers is reported.
func TestDeleteOneOfSharedKeyConsumers(t *testing.T) {
	e := newEnv(t, envOpt{})
	for _, name := range []string{"b", "c", "d"} {
		e.foreign(t, "/apisix/consumers/"+name, `{"username":"`+name+`","plugins":{"key-auth":{"key":"same"}}}`)
	}
	e.must(http.StatusOK, "DELETE", "/apisix/admin/consumers/b", "")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/consumers/c", "")
	assert.Contains(t, e.log.String(), `msg="admin: a stored item builds again" item=consumers/`)
}

// A service is checked on its own once every route is in, whether or not
// a route uses it: deleting a route broken by its own plugin is not taken
// for breaking the service, and a write agreeing with the routes is not
// refused because of where it sorts.
func TestServiceCheckedAloneAfterRoutes(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.foreign(t, "/apisix/services/s", `{"plugins":{"limit-count":{"count":1,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:7":1}}}`)
	e.foreign(t, "/apisix/routes/a", `{"uri":"/a","service_id":"s","plugins":{"proxy-rewrite":{"uri":5}}}`)
	e.foreign(t, "/apisix/routes/b", `{"uri":"/b","plugins":{"limit-count":{"count":2,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Equal(t, "a", e.brokenAt(t, "/a"))
	assert.Equal(t, "healthy b", e.brokenAt(t, "/b"))
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/0", `{"uri":"/0","plugins":{"limit-count":{"count":2,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/a", "")
}

// A write giving a group other settings than a used service's is refused
// in every order, even when the route using the service overrides the
// service's limit-count.
func TestUsedServiceGroupConflictRefused(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s", `{"plugins":{"limit-count":{"count":1,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:7":1}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/a", `{"uri":"/a","service_id":"s","plugins":{"limit-count":{"count":5,"time_window":60}}}`)
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/b", `{"uri":"/b","plugins":{"limit-count":{"count":2,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Contains(t, r.body, "services/s")
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/a", "")
}

// key-auth and the Admin API read a consumer's key from the field named
// exactly "key": a case variant ("Key") is an extra field APISIX ignores.
func TestKeyFieldReadExactly(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers", `{"username":"bob","plugins":{"key-auth":{"key":"w"}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/consumers", `{"username":"erin","plugins":{"key-auth":{"key":"v","Key":"w"}}}`)
	assert.NotContains(t, e.log.String(), "item=consumers/", "no key is shared")
	// another writer's invalid consumer: its plugins are read by exact name
	e.foreign(t, "/apisix/consumers/alice", `{"username":"alice","plugins":{"key-auth":{"key":"secret-k"}},"PLUGINS":null}`)
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/consumers", `{"username":"mallory","plugins":{"key-auth":{"key":"secret-k"}}}`)
	assert.Contains(t, r.body, "duplicate key found with consumer: alice")
}

// A null path is an unreadable one: the placeholder takes "/*".
func TestForeignNullPaths(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/all", routeBody("/*", 9))
	e.foreign(t, "/apisix/routes/n", `{"uris":[null],"host":"n.com","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	e.foreign(t, "/apisix/routes/m", `{"uri":"/m","uris":["/mm",null],"host":"m.com","plugins":{"key-auth":{}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	assert.Equal(t, "n", e.brokenAt(t, "/x", "Host: n.com"))
	assert.Equal(t, "m", e.brokenAt(t, "/other", "Host: m.com"))
	assert.Equal(t, "healthy all", e.brokenAt(t, "/x", "Host: c.com"))
}

// The upstream of a traffic-split arm in a route that does not validate
// cannot be deleted either; and a global rule that does not build is
// named in the error that refuses writes.
func TestForeignReferencesHoldAndRuleNamed(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/arm", `{"nodes":{"127.0.0.1:7":1}}`)
	e.foreign(t, "/apisix/routes/r", `{"uri":"/r","bogus":1,"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"arm","weight":1}]}]}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`)
	r := e.must(http.StatusBadRequest, "DELETE", "/apisix/admin/upstreams/arm", "")
	assert.Contains(t, r.body, "route [r] is still using it")

	e.foreign(t, "/apisix/global_rules/g", `{"plugins":{"no-such-plugin":{}}}`)
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
	assert.Contains(t, r.body, `global rule \"g\"`)
}

// Checking every service alone (checkShared) accepts a service carrying
// every plugin sluice implements, used by a route: none of them needs the
// route to compile.
func TestServiceWithEveryPluginChecksAlone(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/canary", `{"nodes":{"127.0.0.1:8":1}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/services/s", `{"hosts":["a.com"],"upstream":{"nodes":{"127.0.0.1:7":1}},"plugins":{
		"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"canary","weight":1},{"weight":4}]}]},
		"limit-count":{"count":10,"time_window":60,"group":"svc"},
		"prometheus":{},
		"proxy-rewrite":{"uri":"/v1/chat"},
		"api-breaker":{"break_response_code":502},
		"key-auth":{}}}`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r", `{"uri":"/chat","service_id":"s"}`)
	assert.Equal(t, "healthy r", e.brokenAt(t, "/chat", "Host: a.com"))
	e.s.mu.RLock()
	assert.Empty(t, e.s.broken)
	e.s.mu.RUnlock()
}
