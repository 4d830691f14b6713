package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/router"
)

func routeBody(uri string, port int) string {
	return fmt.Sprintf(`{"uri":%q,"upstream":{"nodes":{"127.0.0.1:%d":1}}}`, uri, port)
}

func portOf(t testing.TB, tbl *router.Table, path string) int {
	t.Helper()
	rt := tbl.Match(newRequest(t, "GET", path))
	if rt == nil || rt.Upstream == nil {
		return 0
	}
	return int(rt.Upstream.Nodes[0].Addrs[0].Port())
}

// openEmbedded opens the embedded store in a temp dir.
func openEmbedded(t testing.TB, dir string) *store.Embedded {
	t.Helper()
	st, err := store.OpenEmbedded(dir, "/apisix")
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Every write is published before its response: 100 updates of one route
// in a row while another goroutine matches on pub.Load() all along; every
// Match succeeds, each response finds its own version published, and the
// store's echo events never bring an older version back.
func TestUpdatesWhileMatching(t *testing.T) {
	for _, kind := range []string{"mem", "embedded"} {
		t.Run(kind, func(t *testing.T) {
			o := envOpt{}
			if kind == "embedded" {
				o.store = openEmbedded(t, t.TempDir())
			}
			e := newEnv(t, o)
			e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/live", routeBody("/live", 1000))

			var stop atomic.Bool
			var matches, misses atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := newRequest(t, "POST", "/live")
				for !stop.Load() {
					if rt := e.pub.Load().Match(req); rt == nil || rt.ID != "live" || rt.Upstream == nil {
						misses.Add(1)
					}
					matches.Add(1)
				}
			}()
			for i := 1; i <= 100; i++ {
				e.must(http.StatusOK, "PUT", "/apisix/admin/routes/live", routeBody("/live", 1000+i))
				require.Equal(t, 1000+i, portOf(t, e.pub.Load(), "/live"), "update %d is published before its response", i)
				// other routes come and go meanwhile
				e.must(http.StatusCreated, "PUT", fmt.Sprintf("/apisix/admin/routes/o%d", i), routeBody(fmt.Sprintf("/o/%d", i), 2000+i))
				if i%2 == 0 {
					e.must(http.StatusOK, "DELETE", fmt.Sprintf("/apisix/admin/routes/o%d", i), "")
				}
			}
			time.Sleep(50 * time.Millisecond) // let every echo event arrive
			stop.Store(true)
			wg.Wait()
			assert.Zero(t, misses.Load(), "of %d matches", matches.Load())
			assert.Greater(t, matches.Load(), int64(100))
			assert.Equal(t, 1100, portOf(t, e.pub.Load(), "/live"), "echo events did not bring an older version back")
			got := e.must(http.StatusOK, "GET", "/apisix/admin/routes/live", "").json(t)
			assert.Greater(t, got["modifiedIndex"], float64(0), "the echo recorded the revision")
			assert.Equal(t, float64(51), e.must(http.StatusOK, "GET", "/apisix/admin/routes", "").json(t)["total"])
		})
	}
}

// TestWriteLatency measures admin write → data plane over real HTTP with
// the embedded store (fsync'd writes): the time from sending the PUT to the
// new path being routed by pub.Load().
func TestWriteLatency(t *testing.T) {
	st := openEmbedded(t, t.TempDir())
	e := newEnv(t, envOpt{store: st})
	srv := httptest.NewServer(e.s.Handler())
	defer srv.Close()
	client := srv.Client()

	var lat []time.Duration
	for i := range 100 {
		path := fmt.Sprintf("/lat/%d", i)
		req, _ := http.NewRequest("PUT", srv.URL+fmt.Sprintf("/apisix/admin/routes/lat%d", i), strings.NewReader(routeBody(path, 3000)))
		req.Header.Set("X-API-KEY", testAdminKey)
		done := make(chan int, 1)
		t0 := time.Now()
		go func() {
			resp, err := client.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		r := newRequest(t, "GET", path)
		for {
			if rt := e.pub.Load().Match(r); rt != nil {
				break
			}
			if time.Since(t0) > 2*time.Second {
				t.Fatalf("write %d not visible after 2 s", i)
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
		require.Equal(t, http.StatusCreated, <-done)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("admin write → data plane over %d writes (embedded store, fsync): median %v, p99 %v, max %v", len(lat), p50, p99, lat[len(lat)-1])
	assert.Less(t, p99, 100*time.Millisecond)
}

// A change made by another gateway (a store write that did not come
// through this server) reaches the table through Watch, debounced.
func TestForeignWrites(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := context.Background()
	_, err := e.mem.Put(ctx, "/apisix/upstreams/u1", []byte(`{"id":"u1","nodes":{"127.0.0.1:7001":1}}`))
	require.NoError(t, err)
	_, err = e.mem.Put(ctx, "/apisix/routes/f1", []byte(`{"id":"f1","uri":"/f1","upstream_id":"u1"}`))
	require.NoError(t, err)
	start := time.Now()
	waitFor(t, time.Second, "the foreign route", func() bool { return portOf(t, e.pub.Load(), "/f1") == 7001 })
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	assert.Equal(t, "/f1", e.must(http.StatusOK, "GET", "/apisix/admin/routes/f1", "").value(t)["uri"])

	// the local state knows the foreign upstream: a reference to it works,
	// deleting it is refused
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/l1", `{"uri":"/l1","upstream_id":"u1"}`)
	e.must(http.StatusBadRequest, "DELETE", "/apisix/admin/upstreams/u1", "")

	// a foreign route that does not validate is not served: it answers
	// 503 in its place
	_, err = e.mem.Put(ctx, "/apisix/routes/bad", []byte(`{"uri":"/bad","upstream":{"nodes":{"127.0.0.1:1":1}},"bogus":1}`))
	require.NoError(t, err)
	_, err = e.mem.Put(ctx, "/apisix/routes/f2", []byte(`{"uri":"/f2","upstream":{"nodes":{"127.0.0.1:7002":1}}}`))
	require.NoError(t, err)
	waitFor(t, time.Second, "f2", func() bool { return portOf(t, e.pub.Load(), "/f2") == 7002 })
	assert.Equal(t, "bad", e.match("GET", "/bad"))
	assert.True(t, e.pub.Load().Match(newRequest(t, "GET", "/bad")).Broken)
	assert.Contains(t, e.log.String(), "additional properties forbidden, found bogus")

	// a dangling reference another writer stored (APISIX tooling with
	// force, or a delete racing a put on another gateway) breaks only its
	// own route: that route keeps its place and answers 503, the rest of
	// the table is published, and local writes go on
	_, err = e.mem.Put(ctx, "/apisix/routes/dangling", []byte(`{"uri":"/d","upstream_id":"nope"}`))
	require.NoError(t, err)
	waitFor(t, time.Second, "the dangling route", func() bool { return e.match("GET", "/d") == "dangling" })
	rt := e.pub.Load().Match(newRequest(t, "GET", "/d"))
	assert.True(t, rt.Broken, "the dangling route answers 503")
	assert.Nil(t, rt.Upstream)
	assert.Equal(t, 7002, portOf(t, e.pub.Load(), "/f2"))
	assert.Contains(t, e.log.String(), `item=routes/dangling effect="its requests answer 503" err="router: route \"dangling\": upstream_id \"nope\" not found"`)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
	assert.Equal(t, "x", e.match("GET", "/x"))
	// a write that breaks it again (its own reference) is still refused
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/dangling", `{"uri":"/d","upstream_id":"nope"}`)
	assert.Contains(t, r.body, "nope")
	// the missing upstream arriving mends it
	_, err = e.mem.Put(ctx, "/apisix/upstreams/nope", []byte(`{"nodes":{"127.0.0.1:7003":1}}`))
	require.NoError(t, err)
	waitFor(t, time.Second, "the mended route", func() bool { return portOf(t, e.pub.Load(), "/d") == 7003 })
	assert.Contains(t, e.log.String(), "a stored item builds again")

	// a local write may not break what built: the first route of a
	// limit-count group (in id order) sets the group's configuration
	lc := func(uri string, count int) string {
		return fmt.Sprintf(`{"uri":%q,"plugins":{"limit-count":{"count":%d,"time_window":60,"group":"g"}},"upstream":{"nodes":{"127.0.0.1:1":1}}}`, uri, count)
	}
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/lb", lc("/lb", 1))
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/la", lc("/la", 2))
	assert.Contains(t, r.body, "this change would break routes/lb")
	assert.Equal(t, "", e.match("GET", "/la"))
	assert.False(t, e.pub.Load().Match(newRequest(t, "GET", "/lb")).Broken)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/la", lc("/la", 1))

	// a foreign global rule that does not build keeps the last table:
	// leaving it out could drop authentication from every route
	gen := e.pub.Load().Generation
	_, err = e.mem.Put(ctx, "/apisix/global_rules/g", []byte(`{"plugins":{"no-such-plugin":{}}}`))
	require.NoError(t, err)
	waitFor(t, time.Second, "the build error", func() bool {
		return strings.Contains(e.log.String(), "keeping the current routing table")
	})
	assert.Equal(t, gen, e.pub.Load().Generation)
	// and a local write names the problem rather than publishing without it
	r = e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/y", routeBody("/y", 1))
	assert.Contains(t, r.body, "unknown plugin [no-such-plugin]")
	// a global rule that does not even validate is held to the same rule
	_, err = e.mem.Put(ctx, "/apisix/global_rules/g", []byte(`{"plugins":{"key-auth":{}},"bogus":1}`))
	require.NoError(t, err)
	waitFor(t, time.Second, "the validation error", func() bool {
		return strings.Contains(e.log.String(), `stored global rule \"g\" does not validate`)
	})
	assert.Equal(t, gen, e.pub.Load().Generation)
	e.must(http.StatusOK, "DELETE", "/apisix/admin/global_rules/g", "")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/y", routeBody("/y", 1))

	// foreign deletes
	_, err = e.mem.Delete(ctx, "/apisix/routes/f2")
	require.NoError(t, err)
	waitFor(t, time.Second, "f2 gone", func() bool { return e.match("GET", "/f2") == "" })
}

func TestResync(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/a", routeBody("/a", 1))
	e.mem.putQuiet("/apisix/routes/b", `{"uri":"/b","upstream":{"nodes":{"127.0.0.1:2":1}}}`)
	e.mem.mu.Lock()
	delete(e.mem.items, "/apisix/routes/a")
	e.mem.mu.Unlock()
	e.mem.resync()
	waitFor(t, time.Second, "the resync", func() bool { return e.match("GET", "/b") == "b" && e.match("GET", "/a") == "" })
	e.must(http.StatusNotFound, "GET", "/apisix/admin/routes/a", "")
}

func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t, envOpt{})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/a", routeBody("/a", 1))
	gen := e.pub.Load().Generation
	e.mem.setFail(fmt.Errorf("%w: etcd: context deadline exceeded", store.ErrUnavailable))
	r := e.must(http.StatusServiceUnavailable, "PUT", "/apisix/admin/routes/b", routeBody("/b", 2))
	assert.Contains(t, r.json(t)["error_msg"], "store: unavailable")
	e.must(http.StatusServiceUnavailable, "DELETE", "/apisix/admin/routes/a", "")
	e.must(http.StatusServiceUnavailable, "PATCH", "/apisix/admin/routes/a", `{"uri":"/c"}`)
	// reads are served from memory; the data plane keeps its table
	e.must(http.StatusOK, "GET", "/apisix/admin/routes/a", "")
	e.must(http.StatusNotFound, "GET", "/apisix/admin/routes/b", "")
	assert.Equal(t, gen, e.pub.Load().Generation)
	assert.Equal(t, "a", e.match("GET", "/a"))
	assert.Equal(t, "", e.match("GET", "/b"))
	assert.Equal(t, "", e.match("GET", "/c"))
	e.mem.setFail(nil)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/b", routeBody("/b", 2))

	e.mem.setFail(fmt.Errorf("disk on fire"))
	e.must(http.StatusInternalServerError, "PUT", "/apisix/admin/routes/c", routeBody("/c", 2))
}

func TestDNS(t *testing.T) {
	e := newEnv(t, envOpt{opts: []Option{WithDNSRefresh(20 * time.Millisecond)}})
	e.dns.set("svc.example", "10.0.0.1")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/n", `{"uri":"/n","upstream":{"nodes":{"svc.example:80":1}}}`)
	addr := func() string {
		rt := e.pub.Load().Match(newRequest(t, "GET", "/n"))
		return rt.Upstream.Nodes[0].Addrs[0].Addr().String()
	}
	assert.Equal(t, "10.0.0.1", addr())

	// re-resolution picks up a new answer
	e.dns.set("svc.example", "10.0.0.2")
	waitFor(t, 2*time.Second, "the new address", func() bool { return addr() == "10.0.0.2" })

	// a failing lookup keeps the last answer, and writes still work
	e.dns.set("svc.example")
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/m", `{"uri":"/m","upstream":{"nodes":{"svc.example:80":1}}}`)
	time.Sleep(60 * time.Millisecond)
	assert.Equal(t, "10.0.0.2", addr())
	assert.Contains(t, e.log.String(), "keeping the last answer")

	// a name that never resolved is refused at write time, naming it
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/z", `{"uri":"/z","upstream":{"nodes":{"nowhere.invalid:80":1}}}`)
	assert.Contains(t, r.body, `resolve host \"nowhere.invalid\"`)

	// the cache spares lookups between refreshes
	e2 := newEnv(t, envOpt{opts: []Option{WithDNSRefresh(0)}})
	for i := range 20 {
		e2.must(http.StatusCreated, "PUT", fmt.Sprintf("/apisix/admin/routes/r%d", i), `{"uri":"/r`+fmt.Sprint(i)+`","upstream":{"nodes":{"api.aimlapi.com:443":1}}}`)
	}
	e2.dns.mu.Lock()
	assert.Equal(t, 1, e2.dns.calls)
	e2.dns.mu.Unlock()
}

func TestLoad(t *testing.T) {
	newServer := func(st store.Store) (*Server, *router.Publisher) {
		pub := &router.Publisher{}
		s, err := New(testConfig(), st, pub, &router.Builder{Resolver: newFakeResolver()}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
		return s, pub
	}
	ctx := context.Background()

	// a stored configuration is loaded and published
	mem := newMemStore()
	mem.putQuiet("/apisix/upstreams/u", `{"id":"u","nodes":{"127.0.0.1:9":1}}`)
	mem.putQuiet("/apisix/routes/r", `{"id":"r","uri":"/r","upstream_id":"u"}`)
	mem.putQuiet("/apisix/consumers/jack", `{"username":"jack","plugins":{"key-auth":{"key":"k"}}}`)
	mem.putQuiet("/apisix/plugin_metadata/x", `{"anything":1}`) // not served: ignored
	s, pub := newServer(mem)
	require.NoError(t, s.Load(ctx))
	assert.Equal(t, 9, portOf(t, pub.Load(), "/r"))

	// a route that does not validate (another writer's: a plugin sluice
	// does not know): the gateway starts, the route keeps its place and
	// answers 503 instead of falling through to the catch-all, and the
	// log names it
	mem = newMemStore()
	mem.putQuiet("/apisix/routes/all", `{"uri":"/*","upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	mem.putQuiet("/apisix/routes/r", `{"uri":"/r","plugins":{"ai-proxy":{}},"upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	mem.putQuiet("/apisix/routes/notjson", `{"uri":`)
	s, pub = newServer(mem)
	require.NoError(t, s.Load(ctx))
	rt := pub.Load().Match(newRequest(t, "GET", "/r"))
	require.NotNil(t, rt)
	assert.Equal(t, "r", rt.ID)
	assert.True(t, rt.Broken)
	assert.Nil(t, rt.Upstream)
	assert.Equal(t, 9, portOf(t, pub.Load(), "/other"))
	assert.Contains(t, s.broken["routes/r"].Error(), "unknown plugin [ai-proxy]")

	// a route that does not build (a dangling reference): the gateway
	// starts, that route answers 503, the others work
	mem = newMemStore()
	mem.putQuiet("/apisix/routes/r", `{"uri":"/r","upstream_id":"gone"}`)
	mem.putQuiet("/apisix/routes/ok", `{"uri":"/ok","upstream":{"nodes":{"127.0.0.1:8":1}}}`)
	s, pub = newServer(mem)
	require.NoError(t, s.Load(ctx))
	assert.True(t, pub.Load().Match(newRequest(t, "GET", "/r")).Broken)
	assert.Equal(t, 8, portOf(t, pub.Load(), "/ok"))

	// a global rule that does not build: refuse to start, naming it
	mem = newMemStore()
	mem.putQuiet("/apisix/global_rules/1", `{"plugins":{"no-such-plugin":{}}}`)
	s, _ = newServer(mem)
	err := s.Load(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the stored configuration does not build")

	// an upstream that is not JSON at all: the routes using it answer 503
	mem = newMemStore()
	mem.putQuiet("/apisix/upstreams/u", `{"nodes":`)
	mem.putQuiet("/apisix/routes/r", `{"uri":"/r","upstream_id":"u"}`)
	s, pub = newServer(mem)
	require.NoError(t, s.Load(ctx))
	assert.True(t, pub.Load().Match(newRequest(t, "GET", "/r")).Broken)

	// the store cannot be read
	mem = newMemStore()
	mem.failRead = fmt.Errorf("%w: no etcd", store.ErrUnavailable)
	s, _ = newServer(mem)
	require.ErrorIs(t, s.Load(ctx), store.ErrUnavailable)
}

// Writes survive a restart of the server on the same embedded store.
func TestRestartKeepsWrites(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenEmbedded(dir, "/apisix")
	require.NoError(t, err)
	e := newEnv(t, envOpt{store: st})
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/test-v1", guideV1)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/test-v2", guideV2)
	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/aimlapi-split", guideSplit)
	created := e.must(http.StatusOK, "GET", "/apisix/admin/routes/test-v1", "").value(t)["create_time"]
	require.NoError(t, e.s.Shutdown(context.Background()))
	require.NoError(t, st.Close())

	st2 := openEmbedded(t, dir)
	e2 := newEnv(t, envOpt{store: st2})
	assert.Equal(t, "aimlapi-split", e2.match("POST", "/chat/completions"))
	assert.Equal(t, "test-v2", e2.match("GET", "/test/v2"))
	assert.Equal(t, created, e2.must(http.StatusOK, "GET", "/apisix/admin/routes/test-v1", "").value(t)["create_time"])
	assert.Equal(t, float64(3), e2.must(http.StatusOK, "GET", "/apisix/admin/routes", "").json(t)["total"])
}

func TestStartAndShutdown(t *testing.T) {
	pub := &router.Publisher{}
	s, err := New(testConfig(), newMemStore(), pub, &router.Builder{Resolver: newFakeResolver()}, nil, WithVersion("1.2.3"))
	require.NoError(t, err)
	require.NoError(t, s.Start())
	url := "http://" + s.Addr()

	req, _ := http.NewRequest("PUT", url+"/apisix/admin/routes/1", strings.NewReader(routeBody("/one", 1)))
	req.Header.Set("X-API-KEY", testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "sluice/1.2.3", resp.Header.Get("Server"))
	assert.Equal(t, "1", matchTable(t, pub.Load(), "GET", "/one"))

	head, err := http.Head(url + "/apisix/admin")
	require.NoError(t, err)
	head.Body.Close()
	assert.Equal(t, http.StatusOK, head.StatusCode)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	_, err = http.Head(url + "/apisix/admin")
	assert.Error(t, err, "no longer listening")
	assert.Equal(t, "1", matchTable(t, pub.Load(), "GET", "/one"), "the table stays published")

	// a taken port is an error from Start
	ln := httptest.NewServer(http.NotFoundHandler())
	defer ln.Close()
	cfg := testConfig()
	host, port := splitHostPort(t, ln.Listener.Addr().String())
	cfg.Deployment.Admin.AdminListen.IP, cfg.Deployment.Admin.AdminListen.Port = host, port
	s2, err := New(cfg, newMemStore(), &router.Publisher{}, &router.Builder{}, nil)
	require.NoError(t, err)
	assert.ErrorContains(t, s2.Start(), "admin: listen on")
}

// TestUnresolvableHostDoesNotBlock: a stored upstream whose host name does
// not resolve (DNS down at boot, a name gone) neither keeps the gateway
// from starting nor blocks writes of other items: its nodes are left out
// (502 for its routes) until the name resolves, which the DNS refresh
// picks up. A write that brings a name that does not resolve is still
// refused, naming it.
func TestUnresolvableHostDoesNotBlock(t *testing.T) {
	mem := newMemStore()
	mem.putQuiet("/apisix/routes/r", `{"id":"r","uri":"/r","upstream":{"nodes":{"svc.example:80":1}}}`)
	e := newEnv(t, envOpt{store: mem, opts: []Option{WithDNSRefresh(50 * time.Millisecond)}})
	nodes := func() int {
		rt := e.pub.Load().Match(newRequest(t, "GET", "/r"))
		require.NotNil(t, rt)
		return len(rt.Upstream.Nodes)
	}
	assert.Equal(t, 0, nodes(), "started, with the node left out")
	assert.Contains(t, e.log.String(), "host names do not resolve")

	e.must(http.StatusCreated, "PUT", "/apisix/admin/routes/other", `{"uri":"/o","upstream":{"nodes":{"127.0.0.1:9":1}}}`)
	e.must(http.StatusOK, "DELETE", "/apisix/admin/routes/other", "")
	r := e.must(http.StatusBadRequest, "PUT", "/apisix/admin/routes/z", `{"uri":"/z","upstream":{"nodes":{"nowhere.invalid:80":1}}}`)
	assert.Contains(t, r.body, `resolve host \"nowhere.invalid\"`)

	e.dns.set("svc.example", "10.0.0.7")
	waitFor(t, 2*time.Second, "the node once its name resolves", func() bool { return nodes() == 1 })
}
