package admin

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/admin/store"
	"github.com/sluice-gw/sluice/admin/store/etcdtest"
)

// Two gateways share one etcd: a write made through one reaches the
// other's routing table through its Watch; with etcd down, writes answer
// 503, reads come from memory and the data plane keeps its table.
func TestEtcdTwoGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	etcd := etcdtest.StartServer(t)
	open := func() *store.Etcd {
		st, err := store.OpenEtcd(context.Background(), []string{etcd.Endpoint()}, "/apisix", 2*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	a := newEnv(t, envOpt{store: open()})
	b := newEnv(t, envOpt{store: open()})

	a.must(http.StatusCreated, "PUT", "/apisix/admin/routes/test-v1", guideV1)
	start := time.Now()
	waitFor(t, time.Second, "gateway b to route /test/v1", func() bool { return b.match("GET", "/test/v1") == "test-v1" })
	t.Logf("write on a → routed on b: %v", time.Since(start))
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	b.must(http.StatusOK, "GET", "/apisix/admin/routes/test-v1", "")

	b.must(http.StatusCreated, "PUT", "/apisix/admin/upstreams/u", `{"nodes":{"127.0.0.1:9":1}}`)
	waitFor(t, time.Second, "a to know upstream u", func() bool { return a.do("GET", "/apisix/admin/upstreams/u", "").code == http.StatusOK })
	a.must(http.StatusCreated, "PUT", "/apisix/admin/routes/r", `{"uri":"/r","upstream_id":"u"}`)
	waitFor(t, time.Second, "b to route /r", func() bool { return b.match("GET", "/r") == "r" })
	b.must(http.StatusBadRequest, "DELETE", "/apisix/admin/upstreams/u", "")
	a.must(http.StatusOK, "DELETE", "/apisix/admin/routes/test-v1", "")
	waitFor(t, time.Second, "b to drop /test/v1", func() bool { return b.match("GET", "/test/v1") == "" })

	// etcd down
	etcd.Stop()
	gen := a.pub.Load().Generation
	r := a.must(http.StatusServiceUnavailable, "PUT", "/apisix/admin/routes/x", routeBody("/x", 1))
	assert.Contains(t, r.json(t)["error_msg"], "store: unavailable")
	a.must(http.StatusOK, "GET", "/apisix/admin/routes/r", "")
	assert.Equal(t, "r", a.match("GET", "/r"))
	assert.Equal(t, gen, a.pub.Load().Generation)

	// back: writes work again, and both gateways converge
	etcd.Restart()
	waitFor(t, 15*time.Second, "etcd back", func() bool {
		return a.do("PUT", "/apisix/admin/routes/x", routeBody("/x", 1)).code/100 == 2
	})
	waitFor(t, 5*time.Second, "b to route /x", func() bool { return b.match("GET", "/x") == "x" })
}
