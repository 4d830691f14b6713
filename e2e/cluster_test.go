package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/admin/store/etcdtest"
)

// newProbeClient is a keep-alive client of the test's own (its idle
// connections are closed at cleanup).
func newProbeClient(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8, DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// routedTo GETs url and returns the status and the upstream that answered.
// Safe from any goroutine.
func routedTo(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Upstream-Name"), nil
}

// adminPutRaw PUTs body at path on g's Admin API. Safe from any goroutine.
func adminPutRaw(g *adminGateway, path, body string) (int, error) {
	req, err := http.NewRequest("PUT", g.adminURL(path), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-KEY", e2eAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// timeToVisible sends put on its own goroutine and, from the same instant,
// polls visible tightly; it returns the time from sending to the first
// true (-1 if none within limit) and put's outcome.
func timeToVisible(put func() (int, error), visible func() bool, limit time.Duration) (time.Duration, int, error) {
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	t0 := time.Now()
	go func() {
		code, err := put()
		done <- result{code, err}
	}()
	d := time.Duration(-1)
	for time.Since(t0) < limit {
		if visible() {
			d = time.Since(t0)
			break
		}
	}
	r := <-done
	return d, r.code, r.err
}

// percentiles returns the median, p99 (nearest rank) and max of d.
func percentiles(d []time.Duration) (median, p99, mx time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (99*len(s) + 99) / 100 // ceil(0.99 n)
	return s[len(s)/2], s[rank-1], s[len(s)-1]
}

func routeBody(uri, upstreamID string) string {
	return fmt.Sprintf(`{"uri":%q,"upstream_id":%q}`, uri, upstreamID)
}

func upstreamBody(addr string) string {
	return fmt.Sprintf(`{"type":"roundrobin","nodes":{%q:1}}`, addr)
}

// TestClusterPropagation: a PUT on gateway A is served by gateway B's
// data plane (both on one etcd) within 1 s.
func TestClusterPropagation(t *testing.T) {
	etcd := etcdtest.StartServer(t)
	u1 := startUpstream(t, "u1", nil)
	a := startEtcdGateway(t, etcd.Endpoint(), 5)
	b := startEtcdGateway(t, etcd.Endpoint(), 5)
	code, r := adminDo(t, a, "PUT", "/apisix/admin/upstreams/up-u1", e2eAdminKey, upstreamBody(u1.addr()))
	require.Equal(t, 201, code, r)

	pc := newProbeClient(t, true)
	var lat []time.Duration
	for i := range 20 {
		path := "/prop/" + itoa(i)
		code, _, err := routedTo(pc, b.url(path))
		require.NoError(t, err)
		require.Equal(t, 404, code, "B serves %s before the PUT", path)
		d, code, err := timeToVisible(
			func() (int, error) {
				return adminPutRaw(a, "/apisix/admin/routes/prop-"+itoa(i), routeBody(path, "up-u1"))
			},
			func() bool {
				code, name, _ := routedTo(pc, b.url(path))
				return code == 200 && name == "u1"
			}, 3*time.Second)
		require.NoError(t, err)
		require.Equal(t, 201, code, "PUT %d on A", i)
		require.GreaterOrEqual(t, d, time.Duration(0), "B did not serve %s within 3 s of the PUT on A", path)
		lat = append(lat, d)
		// and A serves it too
		code, name, err := routedTo(pc, a.url(path))
		require.NoError(t, err)
		assert.Equal(t, 200, code)
		assert.Equal(t, "u1", name)
	}
	med, p99, mx := percentiles(lat)
	t.Logf("PUT on A → first request served by B, over %d writes: first %v, median %v, p99 %v, max %v", len(lat), lat[0], med, p99, mx)
	assert.Less(t, mx, time.Second, "every write on A is served by B within 1 s")

	// a DELETE on A reaches B too
	t0 := time.Now()
	code, r = adminDo(t, a, "DELETE", "/apisix/admin/routes/prop-0", e2eAdminKey, "")
	require.Equal(t, 200, code, r)
	waitFor(t, time.Second, "B to drop the deleted route", func() bool {
		code, _, err := routedTo(pc, b.url("/prop/0"))
		return err == nil && code == 404
	})
	t.Logf("DELETE on A → B answers 404 after %v", time.Since(t0).Round(time.Microsecond))

	// a gateway started later loads the shared table from etcd
	c := startEtcdGateway(t, etcd.Endpoint(), 5)
	waitFor(t, 5*time.Second, "a new gateway to load the table", func() bool {
		code, _, err := routedTo(pc, c.url("/prop/19"))
		return err == nil && code == 200
	})
	for i := range 20 {
		want := 200
		if i == 0 {
			want = 404
		}
		code, _, err := routedTo(pc, c.url("/prop/"+itoa(i)))
		require.NoError(t, err)
		assert.Equal(t, want, code, "/prop/%d on the gateway started later", i)
	}
}

// dpStats counts one gateway's requests during TestClusterUpdatesUnderLoad.
type dpStats struct {
	name           string
	total, failed  atomic.Int64
	seenU1, seenU2 atomic.Int64
	mu             sync.Mutex
	firstFailures  []string
}

func (s *dpStats) record(code int, name string, err error) {
	s.total.Add(1)
	switch {
	case err == nil && code == 200 && name == "u1":
		s.seenU1.Add(1)
		return
	case err == nil && code == 200 && name == "u2":
		s.seenU2.Add(1)
		return
	}
	s.failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.firstFailures) < 10 {
		s.firstFailures = append(s.firstFailures, fmt.Sprintf("status %d upstream %q err %v at %s", code, name, err, time.Now().Format("15:04:05.000")))
	}
}

// TestClusterUpdatesUnderLoad: 100 updates of a route through A's Admin
// API, alternating its upstream, while clients send requests through B
// and A without pause: not one request fails.
func TestClusterUpdatesUnderLoad(t *testing.T) {
	etcd := etcdtest.StartServer(t)
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)
	a := startEtcdGateway(t, etcd.Endpoint(), 5)
	b := startEtcdGateway(t, etcd.Endpoint(), 5)
	for name, addr := range map[string]string{"up-u1": u1.addr(), "up-u2": u2.addr()} {
		code, r := adminDo(t, a, "PUT", "/apisix/admin/upstreams/"+name, e2eAdminKey, upstreamBody(addr))
		require.Equal(t, 201, code, r)
	}
	code, r := adminDo(t, a, "PUT", "/apisix/admin/routes/flip", e2eAdminKey, routeBody("/flip/*", "up-u1"))
	require.Equal(t, 201, code, r)
	pc := newProbeClient(t, true)
	for _, g := range []*adminGateway{a, b} {
		waitFor(t, 5*time.Second, "the route on "+g.addr(), func() bool {
			code, name, _ := routedTo(pc, g.url("/flip/x"))
			return code == 200 && name == "u1"
		})
	}

	stats := map[*adminGateway]*dpStats{a: {name: "A"}, b: {name: "B"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g, s := range stats {
		for _, keepAlive := range []bool{true, false} {
			c := newProbeClient(t, keepAlive)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					code, name, err := routedTo(c, g.url("/flip/"+itoa(i)))
					s.record(code, name, err)
				}
			}()
		}
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopClients)

	t0 := time.Now()
	for i := 1; i <= 100; i++ {
		target := "up-u2"
		if i%2 == 0 {
			target = "up-u1"
		}
		code, r := adminDo(t, a, "PUT", "/apisix/admin/routes/flip", e2eAdminKey, routeBody("/flip/*", target))
		require.Equal(t, 200, code, "update %d: %v", i, r)
		time.Sleep(5 * time.Millisecond)
	}
	updates := time.Since(t0)
	// the last update (100, even) points at u1: both data planes settle there
	for _, g := range []*adminGateway{a, b} {
		waitFor(t, 5*time.Second, "the last update on "+g.addr(), func() bool {
			for range 5 {
				code, name, _ := routedTo(pc, g.url("/flip/last"))
				if code != 200 || name != "u1" {
					return false
				}
			}
			return true
		})
	}
	time.Sleep(200 * time.Millisecond)
	stopClients()

	for _, g := range []*adminGateway{b, a} {
		s := stats[g]
		t.Logf("gateway %s: %d requests during 100 updates in %v (u1 %d, u2 %d), %d failed",
			s.name, s.total.Load(), updates.Round(time.Millisecond), s.seenU1.Load(), s.seenU2.Load(), s.failed.Load())
		assert.Zero(t, s.failed.Load(), "gateway %s: failed requests, the first: %v", s.name, s.firstFailures)
		assert.Greater(t, s.total.Load(), int64(100), "gateway %s: the clients kept sending", s.name)
		assert.Positive(t, s.seenU1.Load(), "gateway %s served u1", s.name)
		assert.Positive(t, s.seenU2.Load(), "gateway %s served u2 (the updates reached it)", s.name)
	}
}

// TestClusterEtcdOutage: with etcd stopped both data planes keep serving
// the last table and an admin write answers 503 with a JSON error_msg;
// once etcd is back a write on A succeeds and B serves it.
func TestClusterEtcdOutage(t *testing.T) {
	etcd := etcdtest.StartServer(t)
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)
	a := startEtcdGateway(t, etcd.Endpoint(), 2)
	b := startEtcdGateway(t, etcd.Endpoint(), 2)
	for name, addr := range map[string]string{"up-u1": u1.addr(), "up-u2": u2.addr()} {
		code, r := adminDo(t, a, "PUT", "/apisix/admin/upstreams/"+name, e2eAdminKey, upstreamBody(addr))
		require.Equal(t, 201, code, r)
	}
	code, r := adminDo(t, a, "PUT", "/apisix/admin/routes/keep", e2eAdminKey, routeBody("/keep", "up-u1"))
	require.Equal(t, 201, code, r)
	pc := newProbeClient(t, true)
	fresh := newProbeClient(t, false)
	both := []*adminGateway{a, b}
	for _, g := range both {
		waitFor(t, 5*time.Second, "/keep on "+g.addr(), func() bool {
			code, name, _ := routedTo(pc, g.url("/keep"))
			return code == 200 && name == "u1"
		})
	}
	// servesLastTable checks, for d, that both gateways keep answering
	// from the table they had
	servesLastTable := func(what string, d time.Duration) {
		t.Helper()
		n := 0
		for end := time.Now().Add(d); time.Now().Before(end); {
			for _, g := range both {
				for _, c := range []*http.Client{pc, fresh} {
					code, name, err := routedTo(c, g.url("/keep"))
					require.NoError(t, err, "%s: %s", what, g.addr())
					require.Equal(t, 200, code, "%s: %s", what, g.addr())
					require.Equal(t, "u1", name, "%s: %s", what, g.addr())
					n++
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: %d requests, all served from the last table", what, n)
	}

	etcd.Stop()
	servesLastTable("etcd stopped", time.Second)

	for _, g := range both {
		t0 := time.Now()
		code, r := adminDo(t, g, "PUT", "/apisix/admin/routes/during", e2eAdminKey, routeBody("/during", "up-u2"))
		took := time.Since(t0)
		require.Equal(t, 503, code, "write on %s with etcd down: %v", g.addr(), r)
		msg, _ := r["error_msg"].(string)
		assert.NotEmpty(t, msg, "a JSON error_msg: %v", r)
		t.Logf("write on %s with etcd down: 503 after %v: %q", g.addr(), took.Round(time.Millisecond), msg)
		assert.Less(t, took, 10*time.Second, "bounded by deployment.etcd.timeout (2 s)")
		code, _, err := routedTo(pc, g.url("/during"))
		require.NoError(t, err)
		assert.Equal(t, 404, code, "a failed write is not served")
	}
	// the watchers retry in the background: the table stays
	servesLastTable("etcd still stopped", 3*time.Second)

	etcd.Restart()
	var took time.Duration
	waitFor(t, 30*time.Second, "a write on A to succeed after etcd restarted", func() bool {
		t0 := time.Now()
		code, _ := adminDo(t, a, "PUT", "/apisix/admin/routes/after", e2eAdminKey, routeBody("/after", "up-u2"))
		took = time.Since(t0)
		if code != 503 {
			require.Equal(t, 201, code)
			return true
		}
		return false
	})
	t0 := time.Now()
	waitFor(t, 5*time.Second, "B to serve the write made after the restart", func() bool {
		code, name, _ := routedTo(pc, b.url("/after"))
		return code == 200 && name == "u2"
	})
	t.Logf("after etcd restart: the write on A took %v, B served it %v later", took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	for _, g := range both {
		code, name, err := routedTo(pc, g.url("/after"))
		require.NoError(t, err)
		assert.Equal(t, 200, code)
		assert.Equal(t, "u2", name)
		code, name, err = routedTo(pc, g.url("/keep"))
		require.NoError(t, err)
		assert.Equal(t, 200, code)
		assert.Equal(t, "u1", name)
		code, _, err = routedTo(pc, g.url("/during"))
		require.NoError(t, err)
		assert.Equal(t, 404, code, "the write refused during the outage never appears")
	}
}

// TestClusterEmbeddedWriteLatency: on one embedded-mode gateway, the time
// from sending an admin PUT to the first request routed by it, over 50
// writes.
func TestClusterEmbeddedWriteLatency(t *testing.T) {
	u1 := startUpstream(t, "u1", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)
	pc := newProbeClient(t, true)
	var lat []time.Duration
	for i := range 50 {
		path := "/lat/" + itoa(i)
		d, code, err := timeToVisible(
			func() (int, error) {
				return adminPutRaw(g, "/apisix/admin/routes/lat-"+itoa(i),
					fmt.Sprintf(`{"uri":%q,"upstream":{"type":"roundrobin","nodes":{%q:1}}}`, path, u1.addr()))
			},
			func() bool {
				code, name, _ := routedTo(pc, g.url(path))
				return code == 200 && name == "u1"
			}, 3*time.Second)
		require.NoError(t, err)
		require.Equal(t, 201, code, "PUT %d", i)
		require.GreaterOrEqual(t, d, time.Duration(0), "write %d not served within 3 s", i)
		lat = append(lat, d)
	}
	med, p99, mx := percentiles(lat)
	t.Logf("embedded: PUT sent → first request routed by it, over %d writes: median %v, p99 %v, max %v", len(lat), med, p99, mx)
	assert.Less(t, p99, 100*time.Millisecond, "p99 admin write → data plane")
}

// A dangling reference another writer stored in the shared etcd (APISIX
// tooling with force=true, or a DELETE on one gateway racing a PUT on
// another) breaks only its own route: that route answers 503 rather than
// falling through to a catch-all, the rest keeps working, writes through
// the Admin API go on, and a gateway started afterwards starts.
func TestClusterForeignDanglingReference(t *testing.T) {
	etcd := etcdtest.StartServer(t)
	u1 := startUpstream(t, "u1", nil)
	a := startEtcdGateway(t, etcd.Endpoint(), 5)
	code, r := adminDo(t, a, "PUT", "/apisix/admin/upstreams/up-u1", e2eAdminKey, upstreamBody(u1.addr()))
	require.Equal(t, 201, code, r)
	code, r = adminDo(t, a, "PUT", "/apisix/admin/routes/all", e2eAdminKey, routeBody("/*", "up-u1"))
	require.Equal(t, 201, code, r)

	st, err := store.OpenEtcd(t.Context(), []string{etcd.Endpoint()}, "/apisix", 5*time.Second)
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Put(t.Context(), "/apisix/routes/admin", []byte(`{"uri":"/admin/*","upstream_id":"gone"}`))
	require.NoError(t, err)

	pc := newProbeClient(t, true)
	waitFor(t, 3*time.Second, "the dangling route to answer 503", func() bool {
		code, _, err := routedTo(pc, a.url("/admin/secret"))
		return err == nil && code == 503
	})
	code, name, err := routedTo(pc, a.url("/public"))
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "u1", name)

	code, r = adminDo(t, a, "PUT", "/apisix/admin/routes/new", e2eAdminKey, routeBody("/new", "up-u1"))
	assert.Equal(t, 201, code, "a write is not blocked by another writer's dangling reference: %v", r)

	b := startEtcdGateway(t, etcd.Endpoint(), 5)
	waitFor(t, 5*time.Second, "the gateway started later to serve /new", func() bool {
		code, name, err := routedTo(pc, b.url("/new"))
		return err == nil && code == 200 && name == "u1"
	})
	code, _, err = routedTo(pc, b.url("/admin/secret"))
	require.NoError(t, err)
	assert.Equal(t, 503, code)
	assert.Contains(t, a.log.String(), `item=routes/admin`)
}
